"""Food-101 (images + meta/{train,test}.json): 101 classes, decoded from files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from synermix.data.registry import DatasetEntry
from synermix.data.sources import FileSplit, Source, first_existing, not_found
from synermix.errors import DatasetFormatError


def read_food101(root: Path, **_) -> Source:
    """`food-101/images/<class>/<id>.jpg` + `meta/{train,test}.json`: the official split (classes sorted)."""
    base = first_existing([root / "food-101", root], "meta/train.json")
    if base is None:
        raise not_found(
            "Food-101",
            root,
            [root / "food-101" / "meta" / "train.json", root / "meta" / "train.json"],
            "food-101/images/<class>/<id>.jpg with food-101/meta/{train.json,test.json,classes.txt}",
            "Set dataset.download=true to fetch it with torchvision, or unpack food-101.tar.gz there.",
        )

    def split(name: str, classes: Optional[List[str]] = None) -> Tuple[FileSplit, List[str]]:
        path = base / "meta" / f"{name}.json"
        try:
            meta: Dict[str, List[str]] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DatasetFormatError(f"{path} is not a readable Food-101 split file ({exc}).") from None
        classes = classes or sorted(meta.keys())
        lookup = {c: i for i, c in enumerate(classes)}
        paths, labels = [], []
        for cls, items in meta.items():
            if cls not in lookup:
                raise DatasetFormatError(f"{path} lists class {cls!r} that train.json does not have.")
            paths += [str(base / "images" / f"{item}.jpg") for item in items]
            labels += [lookup[cls]] * len(items)
        return FileSplit(paths, np.array(labels, dtype=np.int64)), classes

    train, classes = split("train")
    test, _same_classes = split("test", classes)
    return Source(train, test, classes)


class Food101(DatasetEntry):
    """Food-101's official split."""

    in_memory = False
    downloads = True
    torchvision_download = ("Food101", {"split": "train"})
    read = staticmethod(read_food101)
