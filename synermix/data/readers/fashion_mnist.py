"""Fashion-MNIST (four IDX files): 60,000 + 10,000 28x28 grey images of 10 classes, held in memory."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from synermix.data.registry import DatasetEntry
from synermix.data.sources import ArraySplit, Source, not_found
from synermix.errors import DatasetFormatError


def read_idx(path: Path) -> np.ndarray:
    """An IDX (MNIST-format) file, gzip-compressed or not, as a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
        zero, dtype_code, ndim = data[0] * 256 + data[1], data[2], data[3]
        if zero != 0 or dtype_code != 0x08 or not 1 <= ndim <= 3:
            raise ValueError(f"magic bytes {data[:4].hex()} are not an unsigned-byte IDX header")
        shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
        return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape).copy()
    except (OSError, ValueError, EOFError) as exc:
        raise DatasetFormatError(f"{path} is not a readable IDX file ({type(exc).__name__}: {exc}).") from None


def read_fashion_mnist(root: Path, **_) -> Source:
    """The four IDX files, `.gz` or not, in `root` (Debian's package) or `root/FashionMNIST/raw` (torchvision)."""
    folders = [root, root / "FashionMNIST" / "raw"]

    def find(stem: str) -> Path:
        for folder in folders:
            for name in (stem + ".gz", stem):
                if (folder / name).is_file():
                    return folder / name
        raise not_found(
            "Fashion-MNIST",
            root,
            [f / (stem + "[.gz]") for f in folders],
            "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte "
            "(optionally .gz) directly in the root or in FashionMNIST/raw/",
            "Install Debian's package (apt-get install dataset-fashion-mnist; root /usr/share/datasets/fashion-mnist) "
            "or set dataset.download=true.",
        )

    def split(prefix: str) -> ArraySplit:
        images = read_idx(find(f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(find(f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
        if images.ndim != 3 or labels.shape != (images.shape[0],):
            raise DatasetFormatError(
                f"Fashion-MNIST {prefix} images {images.shape} and labels {labels.shape} do not match."
            )
        return ArraySplit(images[:, None], labels)

    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    return Source(split("train"), split("t10k"), classes)


class FashionMnist(DatasetEntry):
    """Fashion-MNIST, from Debian's package or torchvision's folder."""

    in_memory = True
    downloads = True
    torchvision_download = ("FashionMNIST", {"train": True})
    read = staticmethod(read_fashion_mnist)
