"""Dataset registry: `dataset.name` -> training data (two views) and evaluation data for a phase."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from synermix.data.digits import load_digits_splits
from synermix.data.in_memory import AugmentSpec, InMemoryTrainStream, InMemoryTwoViewData
from synermix.data.sources import (
    READERS,
    ArraySplit,
    DatasetFormatError,
    DatasetNotFound,
    FileSplit,
    Source,
    download,
)
from synermix.data.stream import Batch, EvalStream, TrainStream
from synermix.errors import ConfigError, RunError, value_errors_as_config_errors
from synermix.sampling import SupplementedBatchSampler
from synermix.seeding import RunSeeds



def _read_digits(root=None, **_) -> Source:
    """scikit-learn's bundled digits (no root), its fixed stratified 80/20 split."""
    x_tr, y_tr, x_te, y_te = load_digits_splits()
    return Source(ArraySplit(x_tr, y_tr), ArraySplit(x_te, y_te), [str(i) for i in range(10)])


def _read_image_folder(root: Path, **options) -> Source:
    """Your own ImageFolder tree (imported here: torchvision's folder scanning takes ~2 s to import)."""
    from synermix.data.image_folder import read_image_folder

    return read_image_folder(root, **options)


# The one registry of data sets: dataset.name -> reader(root, **options) -> Source
SOURCES = {"digits": _read_digits, **READERS, "image_folder": _read_image_folder}
DATASET_NAMES = tuple(SOURCES)
IN_MEMORY_NAMES = ("digits", "cifar100", "mini_imagenet", "fashion_mnist")


@dataclass
class DataBundle:
    """The training stream (two views), the evaluation stream and the shape facts a model needs."""

    train: TrainStream
    eval: EvalStream
    num_classes: int
    in_channels: int
    image_size: int


def split_train_val(labels: np.ndarray, val_ratio: float, seed: int):
    """Stratified (train_idx, val_idx) carving `val_ratio` of the training set (Sec. 4.1.3)."""
    from sklearn.model_selection import train_test_split  # only the val phase needs scikit-learn's 1-2 s import

    idx = np.arange(labels.size)
    try:
        tr, va = train_test_split(idx, test_size=val_ratio, stratify=labels, random_state=seed)
    except ValueError as exc:  # e.g. a class with a single image cannot be stratified
        raise DatasetFormatError(f"Cannot carve a stratified val_ratio={val_ratio} split: {exc}") from None
    return np.sort(tr), np.sort(va)


def first_per_class(labels: np.ndarray, n: int) -> np.ndarray:
    """Indices of the first `n` samples of every class, in their original order (for tiny subsets)."""
    keep = np.zeros(labels.size, dtype=bool)
    for c in np.unique(labels):
        keep[np.flatnonzero(labels == c)[:n]] = True
    return np.flatnonzero(keep)


def load_source(cfg_dataset) -> Source:
    """Read the dataset's official train/test splits from `dataset.root` (downloading only if asked)."""
    name = cfg_dataset.name
    if name == "digits":
        return _read_digits()
    if cfg_dataset.root in (None, ""):
        raise DatasetNotFound(f"dataset.root is not set for dataset={name}; pass dataset.root=/path/to/{name}.")
    root = Path(str(cfg_dataset.root)).expanduser()
    if cfg_dataset.download and name in READERS:
        try:
            READERS[name](root, **_reader_options(cfg_dataset))
        except DatasetNotFound:
            download(name, root)
    return SOURCES[name](root, **_reader_options(cfg_dataset))


def _reader_options(cfg_dataset) -> dict:
    keys = ("image_size", "train_per_class", "test_per_class", "split_seed")
    options = {k: int(cfg_dataset[k]) for k in keys if cfg_dataset.get(k) is not None}
    if cfg_dataset.get("test_ratio") is not None:
        options["test_ratio"] = float(cfg_dataset.test_ratio)
    if cfg_dataset.get("recipe") is not None:
        options["recipe"] = str(cfg_dataset.recipe)
    if cfg_dataset.get("on_bad_image") is not None:
        options["on_bad_image"] = str(cfg_dataset.on_bad_image)
    if cfg_dataset.get("split") is not None:
        options["split"] = str(cfg_dataset.split)
    if cfg_dataset.get("verify_md5") is not None:
        options["verify_md5"] = bool(cfg_dataset.verify_md5)
    return options


def _check_labels(source: Source, num_classes: int, name: str) -> None:
    for split_name, split in (("train", source.train), ("test", source.test)):
        labels = split.labels
        if labels.size == 0:
            raise DatasetFormatError(f"The {split_name} split of {name} is empty.")
        if labels.min() < 0 or labels.max() >= num_classes:
            raise DatasetFormatError(
                f"dataset.num_classes={num_classes} but the {split_name} labels of {name} span "
                f"{labels.min()}..{labels.max()}; set dataset.num_classes={labels.max() + 1} or check the data."
            )


@dataclass
class Splits:
    """The training and evaluation splits of one phase, before any view is made."""

    train: ArraySplit | FileSplit
    eval: ArraySplit | FileSplit
    num_classes: int


def load_splits(cfg_dataset, phase: str, val_ratio: float, val_seed: int) -> Splits:
    """Read `cfg_dataset.name`; phase=test evaluates on the test split, phase=val on a held-out stratified
    split of the training set; `dataset.max_per_class` then trims both."""
    name = cfg_dataset.name
    if name not in DATASET_NAMES:
        raise ConfigError(f"Invalid configuration: dataset.name={name!r} is unknown; choose one of {list(DATASET_NAMES)}.")
    source = load_source(cfg_dataset)
    # image_folder: null counts the class folders
    num_classes = len(source.classes) if cfg_dataset.num_classes is None else int(cfg_dataset.num_classes)
    _check_labels(source, num_classes, name)
    train, test = source.train, source.test
    if phase == "val":
        tr, va = split_train_val(train.labels, val_ratio, val_seed)
        train, test = train.subset(tr), train.subset(va)
    limit = cfg_dataset.get("max_per_class")
    if limit is not None:
        train = train.subset(first_per_class(train.labels, int(limit)))
        test = test.subset(first_per_class(test.labels, int(limit)))
    return Splits(train, test, num_classes)


def build_sampler(labels: np.ndarray, cfg, seeds: RunSeeds, world_size: int = 1, rank: int = 0):
    """The run's supplemented batch sampler over the training labels (a RunError when batches cannot be made)."""
    try:
        return SupplementedBatchSampler(labels, cfg.train.batch_size, seed=seeds.sampler(),
                                        supplement=cfg.train.supplement, num_replicas=world_size, rank=rank)
    except ValueError as exc:  # a class with one training image, or a batch larger than the data
        raise RunError(f"Cannot build training batches for {cfg.dataset.name} ({cfg.phase} phase): {exc}") from None


def build_data(cfg, device, seeds: RunSeeds, with_original: bool = True, world_size: int = 1,
               rank: int = 0) -> DataBundle:
    """The run's training stream (sampler, views, seeds, memory format fixed here) and evaluation stream."""
    with value_errors_as_config_errors("Invalid configuration: "):  # a value the readers or transforms cannot use
        return _build_data(cfg, device, seeds, with_original, world_size, rank)


def _build_data(cfg, device, seeds: RunSeeds, with_original: bool, world_size: int, rank: int) -> DataBundle:
    splits = load_splits(cfg.dataset, cfg.phase, cfg.val_ratio, cfg.val_seed)
    train, test, name = splits.train, splits.eval, cfg.dataset.name
    sampler = build_sampler(train.labels, cfg, seeds, world_size, rank)
    aug, channels_last = cfg.dataset.augment, bool(cfg.train.channels_last)
    mean, std, size = list(cfg.dataset.mean), list(cfg.dataset.std), int(cfg.dataset.image_size)
    channels = int(train.images.shape[1]) if isinstance(train, ArraySplit) else 3
    if len(mean) != channels or len(std) != channels:
        raise ConfigError(
            f"Invalid configuration: dataset.mean={mean} / dataset.std={std} must each have one value per image "
            f"channel, and {name} images have {channels}."
        )

    def evaluation(data) -> EvalStream:
        return EvalStream(data, int(cfg.train.eval_batch_size), channels_last, world_size, rank)

    if isinstance(train, ArraySplit):
        if train.images.shape[-1] != size:
            raise ConfigError(
                f"Invalid configuration: dataset.image_size={size} but {name} images are {train.images.shape[-1]}x"
                f"{train.images.shape[-2]}; set dataset.image_size={train.images.shape[-1]}."
            )
        spec = AugmentSpec(int(aug.crop_padding), float(aug.hflip), int(aug.cutout))
        train_data, eval_data = (
            InMemoryTwoViewData(torch.from_numpy(s.images), torch.from_numpy(s.labels), mean, std, a, device)
            for s, a in ((train, spec), (test, AugmentSpec()))
        )
        stream = InMemoryTrainStream(train_data, sampler, seeds, with_original, channels_last)
        return DataBundle(stream, evaluation(eval_data), splits.num_classes, channels, size)

    if int(aug.crop_padding) or int(aug.cutout):
        raise ConfigError(
            f"Invalid configuration: dataset.augment.crop_padding={aug.crop_padding} / dataset.augment.cutout="
            f"{aug.cutout}: padded crops and cutout are implemented for the in-memory datasets "
            f"{list(IN_MEMORY_NAMES)}; {name} uses RandomResizedCrop + flip (Table 1), so set both to 0."
        )
    from synermix.data.files import (  # torchvision: ~2 s
        FileEvalData, FileTrainStream, FileTwoViewDataset, eval_transform, train_transform)

    original = eval_transform(size, int(cfg.dataset.eval_resize), mean, std)
    augmented = train_transform(size, float(aug.hflip), mean, std)
    workers = int(cfg.train.num_workers)
    views = FileTwoViewDataset(train, augmented, original, with_original)
    stream = FileTrainStream(views, sampler, seeds, workers, device, channels_last)
    return DataBundle(stream, evaluation(FileEvalData(test, original, workers, device)), splits.num_classes, 3, size)


__all__ = [
    "DATASET_NAMES", "Batch", "DataBundle", "DatasetFormatError", "DatasetNotFound", "EvalStream", "Splits",
    "TrainStream", "build_data", "load_splits", "split_train_val",
]
