"""Intra-class cohesion and inter-class separability of penultimate features (the paper's central claim)."""

from __future__ import annotations

from typing import Dict

import numpy as np

from synermix.errors import RunError

COHESION_COLUMNS = (
    "intra_dist",
    "centroid_dist",
    "cohesion_ratio",
    "silhouette",
    "calinski_harabasz",
    "davies_bouldin",
)


def fixed_subsample(n: int, max_samples: int, seed: int = 0) -> np.ndarray:
    """The same sorted subset of range(n) every epoch (all of it when n <= max_samples)."""
    if n <= max_samples:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_samples, replace=False))


def cohesion_metrics(features: np.ndarray, labels: np.ndarray) -> Dict[str, float]:
    """Mean distance to the own class centroid (cohesion, lower is tighter), mean distance between class
    centroids (separability), their ratio, and scikit-learn's silhouette (higher is better),
    Calinski-Harabasz (higher) and Davies-Bouldin (lower) scores."""
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score  # 1-2 s to import

    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    if not np.isfinite(features).all():
        raise RunError(
            "The evaluation features hold NaN or infinite values, so no cohesion metric can be computed; "
            "the weights went non-finite. Lower train.lr, or check the data for NaN/inf values."
        )
    classes, inverse = np.unique(labels, return_inverse=True)
    if classes.size < 2 or classes.size >= labels.size:
        return {k: float("nan") for k in COHESION_COLUMNS}
    counts = np.bincount(inverse)
    centroids = np.zeros((classes.size, features.shape[1]))
    np.add.at(centroids, inverse, features)
    centroids /= counts[:, None]
    intra = float(np.linalg.norm(features - centroids[inverse], axis=1).mean())
    pairwise = np.linalg.norm(centroids[:, None] - centroids[None], axis=-1)
    inter = float(pairwise[np.triu_indices(classes.size, k=1)].mean())
    return {
        "intra_dist": intra,
        "centroid_dist": inter,
        "cohesion_ratio": intra / inter if inter > 0 else float("nan"),
        "silhouette": float(silhouette_score(features, labels)),
        "calinski_harabasz": float(calinski_harabasz_score(features, labels)),
        "davies_bouldin": float(davies_bouldin_score(features, labels)),
    }
