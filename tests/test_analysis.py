"""Figure 1: probability that a shuffle pairs an image with its own class."""

import numpy as np
import pytest

from synermix.results.analysis import intra_class_pair_probability


def test_closed_form_hand_values_and_paper_numbers():
    assert intra_class_pair_probability(16, 32) == pytest.approx(1 / 32 + (31 / 32) / 16)
    assert intra_class_pair_probability(16, 32) == pytest.approx(0.0918, abs=1e-4)  # "approximately 9%"
    assert intra_class_pair_probability(128, 128) < 0.02  # "below 2%"
    assert intra_class_pair_probability(1, 7) == 1.0


@pytest.mark.parametrize("k,b", [(16, 32), (10, 8), (100, 128)])
def test_monte_carlo_agrees(k, b):
    rng = np.random.default_rng(k * b)
    trials = 20000
    labels = rng.integers(0, k, (trials, b))
    perm = np.argsort(rng.random((trials, b)), axis=1)
    same = (labels == np.take_along_axis(labels, perm, axis=1)).mean()
    assert same == pytest.approx(intra_class_pair_probability(k, b), abs=0.003)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_classes"):
        intra_class_pair_probability(0, 4)
    with pytest.raises(ValueError, match="batch_size"):
        intra_class_pair_probability(4, 1.5)
