"""CIFAR-100 (the python pickles): 50,000 + 10,000 32x32 images of 100 classes, held in memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synermix.data.registry import DatasetEntry
from synermix.data.sources import ArraySplit, Source, first_existing, not_found, unpickle
from synermix.errors import DatasetFormatError


def _verify_cifar100(base: Path) -> None:
    """Check the official CIFAR-100 files against torchvision's MD5 sums."""
    from torchvision.datasets import CIFAR100  # torchvision: ~2 s, only on use
    from torchvision.datasets.utils import calculate_md5  # torchvision: ~2 s, only on use

    for name, md5 in [*CIFAR100.train_list, *CIFAR100.test_list, (CIFAR100.meta["filename"], CIFAR100.meta["md5"])]:
        path = base / name
        if path.exists() and calculate_md5(str(path)) != md5:
            raise DatasetFormatError(
                f"{path} is not the official CIFAR-100 file (its MD5 is not torchvision's {md5}): it may be "
                "corrupt or tampered with. Re-download it (dataset.download=true), or set "
                "dataset.verify_md5=false for a copy you re-packed yourself."
            )


def read_cifar100(root: Path, verify_md5: bool = True, **_) -> Source:
    """`cifar-100-python/{train,test,meta}` as torchvision downloads it (fine labels, 100 classes), checked
    against the official MD5 sums unless `verify_md5` is false."""
    base = first_existing([root / "cifar-100-python", root], "train")
    if base is None:
        raise not_found(
            "CIFAR-100",
            root,
            [root / "cifar-100-python" / "train", root / "train"],
            "cifar-100-python/{train,test,meta} (the python pickles)",
            "Set dataset.download=true to fetch it with torchvision, or unpack cifar-100-python.tar.gz there.",
        )

    if verify_md5:
        _verify_cifar100(base)

    def split(name: str) -> ArraySplit:
        d = unpickle(base / name)
        try:
            images = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels = np.asarray(d["fine_labels"], dtype=np.int64)
        except (KeyError, ValueError) as exc:
            raise DatasetFormatError(
                f"{base / name} is not a CIFAR-100 pickle (no usable 'data'/'fine_labels': {exc})."
            ) from None
        return ArraySplit(images, labels)

    meta = unpickle(base / "meta") if (base / "meta").exists() else {}
    return Source(split("train"), split("test"), list(meta.get("fine_label_names", [])))


class Cifar100(DatasetEntry):
    """CIFAR-100 as torchvision downloads it."""

    in_memory = True
    downloads = True
    torchvision_download = ("CIFAR100", {"train": True})
    read = staticmethod(read_cifar100)
