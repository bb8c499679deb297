"""Caltech-256 (256_ObjectCategories/): 257 class folders, decoded from files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synermix.data.registry import DatasetEntry
from synermix.data.sources import FileSplit, Source, first_existing, not_found, split_per_class


def read_caltech256(root: Path, train_per_class: int = 60, test_per_class: int = 20, **_) -> Source:
    """`256_ObjectCategories/NNN.name/NNN_XXXX.jpg`; per class (sorted files) first 60 train, next 20 test."""
    base = first_existing([root / "caltech256", root], "256_ObjectCategories")
    if base is None:
        raise not_found(
            "Caltech-256",
            root,
            [root / "256_ObjectCategories", root / "caltech256" / "256_ObjectCategories"],
            "256_ObjectCategories/NNN.name/NNN_XXXX.jpg (257 class folders including 257.clutter)",
            "Set dataset.download=true to fetch it with torchvision, or unpack 256_ObjectCategories.tar there.",
        )
    folder = base / "256_ObjectCategories"
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
    paths: list[str] = []
    numbers: list[int] = []
    for i, c in enumerate(classes):
        files = sorted(p.name for p in (folder / c).iterdir() if p.suffix.lower() == ".jpg")
        paths += [str(folder / c / f) for f in files]
        numbers += [i] * len(files)
    labels = np.array(numbers, dtype=np.int64)
    tr, te = split_per_class(labels, train_per_class, test_per_class, classes, "Caltech-256")
    split = FileSplit(paths, labels)
    return Source(split.subset(tr), split.subset(te), classes)


class Caltech256(DatasetEntry):
    """Caltech-256, split per class (dataset.train_per_class / test_per_class)."""

    in_memory = False
    downloads = True
    torchvision_download = ("Caltech256", {})
    read = staticmethod(read_caltech256)
