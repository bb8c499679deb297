"""Dataset registry: `dataset.name` -> train (two views) and evaluation data for a phase."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from synermix.data.digits import load_digits_splits
from synermix.data.in_memory import AugmentSpec, InMemoryTwoViewData

DATASET_NAMES = ("digits",)


@dataclass
class DataBundle:
    """Training data (two views), evaluation data and the shape facts a model needs."""

    train: InMemoryTwoViewData
    eval: InMemoryTwoViewData
    num_classes: int
    in_channels: int
    image_size: int


def split_train_val(labels: np.ndarray, val_ratio: float, seed: int):
    """Stratified (train_idx, val_idx) carving `val_ratio` of the training set (Sec. 4.1.3)."""
    idx = np.arange(labels.size)
    tr, va = train_test_split(idx, test_size=val_ratio, stratify=labels, random_state=seed)
    return np.sort(tr), np.sort(va)


def first_per_class(labels: np.ndarray, n: int) -> np.ndarray:
    """Indices of the first `n` samples of every class, in their original order (for tiny subsets)."""
    keep = np.zeros(labels.size, dtype=bool)
    for c in np.unique(labels):
        keep[np.flatnonzero(labels == c)[:n]] = True
    return np.flatnonzero(keep)


def build_data(cfg_dataset, phase: str, val_ratio: float, val_seed: int, device) -> DataBundle:
    """Load `cfg_dataset.name`; phase=test evaluates on the test split, phase=val on a held-out split."""
    if cfg_dataset.name != "digits":
        raise ValueError(f"dataset.name={cfg_dataset.name!r} is unknown; choose one of {list(DATASET_NAMES)}.")
    x_tr, y_tr, x_te, y_te = load_digits_splits()
    if phase == "val":
        tr, va = split_train_val(y_tr, val_ratio, val_seed)
        x_tr, y_tr, x_te, y_te = x_tr[tr], y_tr[tr], x_tr[va], y_tr[va]
    limit = cfg_dataset.get("max_per_class")
    if limit is not None:
        tr, te = first_per_class(y_tr, int(limit)), first_per_class(y_te, int(limit))
        x_tr, y_tr, x_te, y_te = x_tr[tr], y_tr[tr], x_te[te], y_te[te]
    num_classes = int(cfg_dataset.num_classes)
    seen = int(max(y_tr.max(), y_te.max())) + 1
    if seen > num_classes:
        raise ValueError(f"dataset.num_classes={num_classes} but the labels of {cfg_dataset.name} go up to {seen - 1}.")
    if int(cfg_dataset.image_size) != x_tr.shape[-1]:
        raise ValueError(
            f"dataset.image_size={cfg_dataset.image_size} but {cfg_dataset.name} images are "
            f"{x_tr.shape[-1]}x{x_tr.shape[-2]}; set dataset.image_size={x_tr.shape[-1]}."
        )
    aug = cfg_dataset.augment
    spec = AugmentSpec(int(aug.crop_padding), float(aug.hflip), int(aug.cutout))
    mean, std = list(cfg_dataset.mean), list(cfg_dataset.std)

    def make(x, y, augment):
        return InMemoryTwoViewData(torch.from_numpy(x), torch.from_numpy(y), mean, std, augment, device)

    return DataBundle(
        train=make(x_tr, y_tr, spec),
        eval=make(x_te, y_te, AugmentSpec()),
        num_classes=num_classes,
        in_channels=int(x_tr.shape[1]),
        image_size=int(x_tr.shape[-1]),
    )
