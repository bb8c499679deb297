"""Your own images in torchvision's ImageFolder layout: DIR/train/<class>/* + DIR/test (or val)/<class>/*, or
DIR/<class>/* split with a stratified test_ratio. Class indices are exactly torchvision's (sorted folder names)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from synermix.config.checks import Check, is_num, one_of, problems
from synermix.data.registry import DatasetEntry
from synermix.data.sources import ArraySplit, DatasetFormatError, DatasetNotFound, FileSplit, Source, open_rgb
from synermix.data.tree import BAD_IMAGE_ACTIONS, bad_images, scan_classes

log = logging.getLogger(__name__)

RECIPES = ("imagenet", "cifar")
# The image_folder reader's own keys of the `dataset` group
IMAGE_FOLDER_CHECKS = (
    Check("recipe", one_of(RECIPES), f"one of {list(RECIPES)}", optional=True),
    Check(
        "on_bad_image",
        one_of(BAD_IMAGE_ACTIONS),
        "error (refuse unreadable images, listing them) or skip (train without them, with a warning)",
        optional=True,
    ),
    Check("test_ratio", lambda v: is_num(v) and 0 < v < 1, "a number in (0, 1)", optional=True),
)
LAYOUT = (
    "DIR/train/<class>/<image> with DIR/test/<class>/<image> (or DIR/val/...), or DIR/<class>/<image> "
    "split by dataset.test_ratio; image files with one of torchvision's IMG_EXTENSIONS"
)


def _scan(folder: Path) -> Tuple[List[str], List[Tuple[str, int]]]:
    """Class names and (image, class) samples of `folder` (torchvision's order), its problems in one paragraph."""
    classes, samples = scan_classes(folder)
    if not classes:
        raise DatasetFormatError(f"{folder}: no class folder found. Expected layout: {LAYOUT}.")
    empty = sorted(set(classes) - {classes[c] for _, c in samples})
    if empty:
        raise DatasetFormatError(
            f"{folder}: no image file in the class folder(s) {empty[:5]}. Expected layout: {LAYOUT}."
        )
    return classes, samples


def _checked(split: FileSplit, on_bad_image: str, folder: Path) -> FileSplit:
    """`split` after every file's image header was checked: bad files refused in one message, or skipped."""
    bad = bad_images(split.paths)
    if not bad:
        return split
    listed = "; ".join(f"{p} ({why})" for p, why in bad[:10]) + (f"; and {len(bad) - 10} more" if len(bad) > 10 else "")
    if on_bad_image == "error":
        raise DatasetFormatError(
            f"{len(bad)} file(s) under {folder} are not readable images: {listed}. Remove or replace them, or set "
            "dataset.on_bad_image=skip to train without them."
        )
    log.warning("dataset.on_bad_image=skip: leaving out %d unreadable file(s) under %s: %s", len(bad), folder, listed)
    unreadable = {p for p, _ in bad}
    keep = np.array([p not in unreadable for p in split.paths])
    return split.subset(np.flatnonzero(keep))


def _split_of(samples: List[Tuple[str, int]]) -> FileSplit:
    return FileSplit([p for p, _ in samples], np.array([c for _, c in samples], dtype=np.int64))


def _layout(root: Path) -> Optional[Tuple[Path, Optional[Path]]]:
    """(train folder, test folder) of a split layout, (root, None) of a flat one, None if neither."""
    if (root / "train").is_dir():
        test = next((root / t for t in ("test", "val") if (root / t).is_dir()), None)
        if test is None:
            raise DatasetFormatError(
                f"dataset.root={root} has train/ but neither test/ nor val/. Expected layout: {LAYOUT}."
            )
        return root / "train", test
    if root.is_dir() and any(p.is_dir() for p in root.iterdir()):
        return root, None
    return None


def read_image_folder(
    root: Path,
    test_ratio: float = 0.2,
    recipe: str = "imagenet",
    image_size: int = 224,
    split_seed: int = 0,
    on_bad_image: str = "error",
    **_,
) -> Source:
    """The train and test splits of an ImageFolder tree (see the module docstring), every file's image header
    checked first (`on_bad_image`: error or skip); `recipe=cifar` decodes every image once, resized to
    image_size x image_size, into memory (for small images and the in-memory pipeline)."""
    found = problems(
        dict(recipe=recipe, on_bad_image=on_bad_image, test_ratio=test_ratio), IMAGE_FOLDER_CHECKS, "dataset."
    )
    if found:
        raise DatasetFormatError("; ".join(found) + ".")
    layout = _layout(Path(root))
    if layout is None:
        raise DatasetNotFound(f"dataset.root={root} holds no image folders. Expected layout: {LAYOUT}.")
    train_dir, test_dir = layout
    classes, samples = _scan(train_dir)
    if test_dir is not None:
        test_classes, test_samples = _scan(test_dir)
        if test_classes != classes:
            only_train = sorted(set(classes) - set(test_classes))
            only_test = sorted(set(test_classes) - set(classes))
            raise DatasetFormatError(
                f"The class folders of {train_dir} and {test_dir} differ (only in train: {only_train[:5]}, only in "
                f"{test_dir.name}: {only_test[:5]}); both splits need the same classes. Expected layout: {LAYOUT}."
            )
        train, test = (
            _checked(_split_of(samples), on_bad_image, train_dir),
            _checked(_split_of(test_samples), on_bad_image, test_dir),
        )
    else:
        train, test = _stratified(_checked(_split_of(samples), on_bad_image, train_dir), test_ratio, split_seed, root)
    if recipe == "cifar":
        return Source(decode_to_array(train, image_size), decode_to_array(test, image_size), classes)
    return Source(train, test, classes)


def _stratified(split: FileSplit, test_ratio: float, seed: int, root: Path) -> Tuple[FileSplit, FileSplit]:
    """A stratified train/test cut of a flat layout (scikit-learn's train_test_split)."""
    from sklearn.model_selection import train_test_split  # scikit-learn: 1-2 s, only where a split is cut

    idx = np.arange(split.labels.size)
    try:
        tr, te = train_test_split(idx, test_size=test_ratio, stratify=split.labels, random_state=seed)
    except ValueError as exc:
        raise DatasetFormatError(
            f"Cannot split dataset.root={root} into train and test with dataset.test_ratio="
            f"{test_ratio}: {exc} (every class needs at least two images)."
        ) from None
    return split.subset(np.sort(tr)), split.subset(np.sort(te))


def decode_to_array(split: FileSplit, size: int, channels: int = 3) -> ArraySplit:
    """Every image decoded (RGB, or grey for one channel), resized to size x size (bilinear), as one uint8
    (N, channels, size, size) array."""
    from PIL import Image  # Pillow: only where images are decoded

    images = np.empty((len(split.paths), channels, size, size), dtype=np.uint8)
    for i, path in enumerate(split.paths):
        image = open_rgb(path).convert("L" if channels == 1 else "RGB")
        pixels = np.asarray(image.resize((size, size), Image.Resampling.BILINEAR))
        images[i] = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
    return ArraySplit(images, split.labels)


class ImageFolder(DatasetEntry):
    """Your own ImageFolder tree; dataset.recipe=cifar decodes it into memory (in-memory augmentation), imagenet
    decodes per sample (RandomResizedCrop + flip, torchvision's policies)."""

    counts_classes = True
    checks = IMAGE_FOLDER_CHECKS

    @classmethod
    def held_in_memory(cls, group) -> bool:
        """recipe=cifar: decoded into memory once."""
        return group.get("recipe") == "cifar"

    read = staticmethod(read_image_folder)
