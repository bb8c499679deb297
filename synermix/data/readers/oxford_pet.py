"""Oxford-IIIT Pet (images/ + annotations/{trainval,test}.txt): 37 breeds, decoded from files."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import numpy as np

from synermix.data.registry import DatasetEntry
from synermix.data.sources import FileSplit, Source, first_existing, not_found
from synermix.errors import DatasetFormatError


def read_oxford_pet(root: Path, **_) -> Source:
    """`images/<Name>_<n>.jpg` + `annotations/{trainval,test}.txt` (name, class id 1-37, species, breed id)."""
    base = first_existing([root / "oxford-iiit-pet", root], "annotations/trainval.txt")
    if base is None:
        raise not_found(
            "Oxford-IIIT Pet",
            root,
            [root / "annotations" / "trainval.txt", root / "oxford-iiit-pet" / "annotations" / "trainval.txt"],
            "images/<Breed>_<n>.jpg and annotations/{trainval.txt,test.txt}",
            "Set dataset.download=true to fetch it with torchvision, or unpack images.tar.gz and annotations.tar.gz "
            "there.",
        )
    names: Dict[int, str] = {}

    def split(name: str) -> FileSplit:
        path = base / "annotations" / f"{name}.txt"
        paths, labels = [], []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split()
            try:
                image_id, class_id = fields[0], int(fields[1])
            except (IndexError, ValueError):
                raise DatasetFormatError(
                    f"{path}:{n}: expected '<image> <class id> <species> <breed id>', got {line!r}."
                ) from None
            names[class_id - 1] = image_id.rsplit("_", 1)[0].replace("_", " ")
            paths.append(str(base / "images" / f"{image_id}.jpg"))
            labels.append(class_id - 1)
        return FileSplit(paths, np.array(labels, dtype=np.int64))

    train, test = split("trainval"), split("test")
    return Source(train, test, [names[i] for i in sorted(names)])


class OxfordPet(DatasetEntry):
    """Oxford-IIIT Pet's official trainval/test split."""

    in_memory = False
    downloads = True
    torchvision_download = ("OxfordIIITPet", {"split": "trainval"})
    read = staticmethod(read_oxford_pet)
