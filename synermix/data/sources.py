"""What every data set reader returns (Source: train/test splits as arrays or file lists, and class names) and
the helpers the readers share (synermix/data/readers/: one file per data set).

torchvision's dataset classes read one fixed folder name under `root` (and CIFAR's checks file
hashes), and return one transformed PIL view per item; here the same files are read with the
same conventions, so `dataset.root` may be the dataset folder itself or its parent, one decode
can feed both views, and small test fixtures in the same layout load. torchvision's classes are
used to download (`dataset.download=true`) wherever torchvision can.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from synermix.errors import DatasetFormatError, DatasetNotFound, describe


@dataclass
class ArraySplit:
    """A split held in memory: uint8 images (N, C, H, W) and int64 labels."""

    images: np.ndarray
    labels: np.ndarray

    def subset(self, idx: np.ndarray) -> "ArraySplit":
        """The samples at `idx`."""
        return ArraySplit(self.images[idx], self.labels[idx])


@dataclass
class FileSplit:
    """A split of image files (decoded lazily) and int64 labels."""

    paths: List[str]
    labels: np.ndarray

    def subset(self, idx: np.ndarray) -> "FileSplit":
        """The samples at `idx`."""
        return FileSplit([self.paths[i] for i in idx], self.labels[idx])


@dataclass
class Source:
    """Both official splits of a dataset and its class names."""

    train: ArraySplit | FileSplit
    test: ArraySplit | FileSplit
    classes: List[str] = field(default_factory=list)


def not_found(name: str, root: Path, looked: Sequence[Path], layout: str, how: str) -> DatasetNotFound:
    """The one-paragraph error for a dataset that is not on disk."""
    where = ", ".join(str(p) for p in looked)
    return DatasetNotFound(
        f"{name} not found under dataset.root={root} (looked for {where}). Expected layout: {layout}. {how}"
    )


def first_existing(candidates: Sequence[Path], marker: str) -> Optional[Path]:
    """The first candidate folder containing `marker`."""
    for c in candidates:
        if (c / marker).exists():
            return c
    return None


# What a dataset pickle may ask to rebuild: numpy arrays, dtypes and scalars (plus builtin containers,
# which need no lookup), and bytes as Python 3 writes them at protocol 2 (`_codecs.encode(str, "latin1")`, which
# torch's weights_only loader allows too). Anything else (a shell call, a builtin, ...) is refused before it runs.
SAFE_PICKLE_GLOBALS = {
    (module, name)
    for core in ("numpy.core", "numpy._core")
    for module, name in (
        (f"{core}.multiarray", "_reconstruct"),
        (f"{core}.multiarray", "scalar"),
        (f"{core}.numeric", "_frombuffer"),
    )
} | {("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"), ("_codecs", "encode")}


class _DataUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays and builtin containers only."""

    def find_class(self, module: str, name: str):
        if (module, name) in SAFE_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it asks for {module}.{name}, which a dataset pickle never needs")


def unpickle(path: Path):
    """A dataset pickle, loaded with the restricted unpickler (no code from the file is executed)."""
    try:
        with open(path, "rb") as f:
            return _DataUnpickler(f, encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise DatasetFormatError(
            f"{path} was refused: {exc}. Only numpy arrays and builtin containers are loaded from dataset "
            "pickles; replace the file with an official copy."
        ) from None
    except Exception as exc:
        raise DatasetFormatError(
            f"{path} is not a readable pickle of the expected format ({type(exc).__name__}: {exc})."
        ) from None


# ---------------------------------------------------------------- per-class train/test cut
def split_per_class(
    labels: np.ndarray, train_per_class: int, test_per_class: int, class_names: Sequence[str], name: str
) -> Tuple[np.ndarray, np.ndarray]:
    """Per class, in the given order: the first `train_per_class` indices train, the next `test_per_class` test."""
    train, test = [], []
    for c in range(len(class_names)):
        idx = np.flatnonzero(labels == c)
        if idx.size < train_per_class + test_per_class:
            raise DatasetFormatError(
                f"{name}: class {class_names[c]!r} has {idx.size} images, fewer than the "
                f"{train_per_class} train + {test_per_class} test the split needs "
                "(dataset.train_per_class / dataset.test_per_class)."
            )
        train.append(idx[:train_per_class])
        test.append(idx[train_per_class : train_per_class + test_per_class])
    return np.concatenate(train), np.concatenate(test)


# ---------------------------------------------------------------- decoding
def to_rgb(image: Image.Image) -> Image.Image:
    """`image` in RGB; a 16-bit grey image (Pillow's modes I;16* and I) is scaled to 8 bits (65535 -> 255), where
    Pillow's own conversion would clip every value above 255 to white. A mode-I image whose values all fit in 8 bits
    is taken as 8-bit."""
    if image.mode.startswith("I;16") or image.mode == "I":
        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16") or values.max(initial=0) > 255:
            values = values / 257.0
        return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L").convert("RGB")
    return image.convert("RGB")


def open_rgb(path) -> Image.Image:
    """The image at `path` decoded to RGB with Pillow (16-bit grey scaled, see `to_rgb`); a corrupt or missing file
    names itself."""
    try:
        with Image.open(path) as image:
            return to_rgb(image)
    except (OSError, ValueError, UnidentifiedImageError) as exc:
        raise DatasetFormatError(f"Cannot decode image {path} ({describe(exc)}).") from None


def decode_resized(path: Path, size: int) -> np.ndarray:
    image = open_rgb(path)
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def resize_array(image_chw: np.ndarray, size: int) -> np.ndarray:
    im = Image.fromarray(image_chw.transpose(1, 2, 0)).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)
