"""scikit-learn's bundled `digits` (1,797 8x8 grey images, 10 classes): the offline default dataset."""

from __future__ import annotations

from typing import Tuple

import numpy as np

from synermix.data.registry import DatasetEntry
from synermix.data.sources import ArraySplit, Source

TEST_FRACTION = 0.2
SPLIT_SEED = 0


def load_digits_splits() -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_images, train_labels, test_images, test_labels), uint8 (N, 1, 8, 8); fixed stratified 80/20."""
    from sklearn.datasets import load_digits  # scikit-learn's import costs 1-2 s: only digits runs pay it
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    labels = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, labels, test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED
    )
    return x_tr, y_tr, x_te, y_te


class Digits(DatasetEntry):
    """scikit-learn's bundled digits (no root), its fixed stratified 80/20 split."""

    in_memory = True
    needs_root = False

    @staticmethod
    def read(root=None, **options) -> Source:
        """Both splits of the bundled data (`root` and options unused)."""
        x_tr, y_tr, x_te, y_te = load_digits_splits()
        return Source(ArraySplit(x_tr, y_tr), ArraySplit(x_te, y_te), [str(i) for i in range(10)])
