"""Cohesion/separability metrics on hand-computed clusters."""

import numpy as np
import pytest

from synermix.train.cohesion import cohesion_metrics, fixed_subsample


def test_hand_computed_two_clusters():
    # Class 0 at (0, +-1), class 1 at (10, +-1): every point is 1 from its centroid, centroids 10 apart.
    f = np.array([[0, 1], [0, -1], [10, 1], [10, -1]], dtype=float)
    m = cohesion_metrics(f, np.array([0, 0, 1, 1]))
    assert m["intra_dist"] == pytest.approx(1.0) and m["centroid_dist"] == pytest.approx(10.0)
    assert m["cohesion_ratio"] == pytest.approx(0.1)
    # silhouette of each point: a = 2, b = mean(10, sqrt(104)); s = (b - a) / b
    b = (10 + np.sqrt(104)) / 2
    assert m["silhouette"] == pytest.approx((b - 2) / b)
    assert m["davies_bouldin"] == pytest.approx((1 + 1) / 10)
    assert m["calinski_harabasz"] == pytest.approx((4 * 25 / 1) / (4 / 2))  # B/(k-1) over W/(n-k)


def test_tighter_classes_score_better():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 8)) * 5
    labels = np.repeat(np.arange(5), 40)
    loose = cohesion_metrics(centres[labels] + rng.normal(size=(200, 8)) * 2.0, labels)
    tight = cohesion_metrics(centres[labels] + rng.normal(size=(200, 8)) * 0.5, labels)
    assert tight["intra_dist"] < loose["intra_dist"] and tight["cohesion_ratio"] < loose["cohesion_ratio"]
    assert tight["silhouette"] > loose["silhouette"] and tight["davies_bouldin"] < loose["davies_bouldin"]
    assert tight["calinski_harabasz"] > loose["calinski_harabasz"]


def test_fixed_subsample_is_stable_and_bounded():
    a, b = fixed_subsample(5000, 1000), fixed_subsample(5000, 1000)
    assert np.array_equal(a, b) and len(a) == 1000 and np.all(np.diff(a) > 0)
    assert np.array_equal(fixed_subsample(300, 1000), np.arange(300))
    assert np.isnan(cohesion_metrics(np.zeros((3, 2)), np.array([0, 0, 0]))["silhouette"])
