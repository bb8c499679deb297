"""Dataset registry: `dataset.name` -> training data (two views) and evaluation data for a phase."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, List

import numpy as np
import torch

from synermix.config.checks import Check, is_bool, is_int, is_num, is_numbers
from synermix.data.in_memory import AugmentSpec, InMemoryTrainStream, InMemoryTwoViewData
from synermix.data.registry import DATASETS, DatasetEntry
from synermix.data.sources import ArraySplit, DatasetFormatError, DatasetNotFound, FileSplit, Source
from synermix.data.stream import Batch, EvalStream, TrainStream
from synermix.errors import ConfigError, RunError, value_errors_as_config_errors
from synermix.method.sampling import SupplementedBatchSampler
from synermix.seeding import RunSeeds

if TYPE_CHECKING:
    from synermix.data.files import FileEvalData

POLICIES = ("none", "trivialaugment", "randaugment", "autoaugment")  # dataset.augment.policy (torchvision v2)


ENTRY = "a synermix.data.registry.DatasetEntry subclass"


def dataset_entry(group) -> type[DatasetEntry]:
    """The registry entry of the `dataset` group: by `dataset.name`, or `dataset._target_` (ConfigError if neither)."""
    return DATASETS.entry_of(group, ENTRY)


def _known_entry(group):
    """The entry of `group`, or None for a name no entry has (the name's check reports it)."""
    return DATASETS.known(group, ENTRY)


def held_in_memory(dataset) -> bool:
    """Whether the `dataset` group's images are held in memory as one tensor (augmented batch by batch) rather
    than decoded from files per sample: the entry says so (an image folder by its recipe)."""
    entry = _known_entry(dataset)
    return entry is not None and entry.held_in_memory(dataset)


def dataset_checks(group) -> tuple:
    """The checks of the `dataset` config group (some depend on its name and image size)."""
    name, size, entry = group.get("name"), group.get("image_size"), _known_entry(group)
    in_memory = entry is not None and entry.held_in_memory(group)
    return (
        *DATASETS.group_checks(group, ENTRY),
        Check(
            "root",
            lambda v: (entry is not None and not entry.needs_root) or (isinstance(v, str) and v.strip() != ""),
            f"the folder holding the data set (dataset.root=/path/to/{name})",
        ),
        Check(
            "num_classes",
            lambda v: (v is None and entry is not None and entry.counts_classes) or (is_int(v) and v >= 2),
            "an integer >= 2 (null for image_folder: the number of class folders)",
        ),
        *(entry.checks if entry is not None else ()),
        Check("image_size", lambda v: is_int(v) and v >= 1, "an integer >= 1"),
        Check("download", is_bool, "true or false"),
        Check("max_per_class", lambda v: v is None or (is_int(v) and v >= 2), "null or an integer >= 2", optional=True),
        Check("train_per_class", lambda v: is_int(v) and v >= 1, "an integer >= 1", optional=True),
        Check("test_per_class", lambda v: is_int(v) and v >= 1, "an integer >= 1", optional=True),
        Check("verify_md5", is_bool, "true or false", optional=True),
        Check("mean", is_numbers, "a list of numbers (one per image channel)"),
        Check("std", lambda v: is_numbers(v, lambda x: x > 0), "a list of numbers > 0 (one per image channel)"),
        *_augment_checks(name, size, in_memory),
    )


def _augment_checks(name: str, size, in_memory: bool) -> tuple:
    """The checks of dataset.augment.* and dataset.eval_resize (bounded by the image size)."""
    bound = size if is_int(size) else None
    return (
        Check("augment.crop_padding", lambda v: is_int(v) and v >= 0, "an integer >= 0 (0: no padded crop)"),
        Check("augment.hflip", lambda v: is_num(v) and 0 <= v <= 1, "a probability in [0, 1]"),
        Check(
            "augment.policy",
            lambda v: v in POLICIES and (v == "none" or not in_memory),
            f"one of {list(POLICIES)}"
            + (
                f"; and none for {name}: it is held in memory and augmented batch by "
                "batch, where torchvision's per-image policies have no batched form "
                "(an image folder with dataset.recipe=imagenet takes them)"
                if in_memory
                else ""
            ),
            optional=True,
        ),
        Check(
            "augment.random_erasing",
            lambda v: is_num(v) and 0 <= v <= 1,
            "a probability in [0, 1] (0: off)",
            optional=True,
        ),
        Check(
            "augment.cutout",
            lambda v: is_int(v) and 0 <= v <= (bound if bound is not None else v),
            f"an integer in [0, dataset.image_size={size}] (0: no cutout)",
        ),
        Check(
            "eval_resize",
            lambda v: is_int(v) and v >= (bound if bound is not None else v),
            f"an integer >= dataset.image_size={size}",
            optional=True,
        ),
    )


@dataclass
class DataBundle:
    """The training stream (two views), the evaluation stream and the shape facts a model needs."""

    train: TrainStream
    eval: EvalStream
    num_classes: int
    in_channels: int
    image_size: int
    classes: List[str] = field(default_factory=list)


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
    name, entry = cfg_dataset.name, dataset_entry(cfg_dataset)
    if not entry.needs_root:
        return entry.read(None, **_reader_options(cfg_dataset))
    if cfg_dataset.root in (None, ""):
        raise DatasetNotFound(f"dataset.root is not set for dataset={name}; pass dataset.root=/path/to/{name}.")
    root = Path(str(cfg_dataset.root)).expanduser()
    if cfg_dataset.get("download") and entry.downloads:
        try:
            entry.read(root, **_reader_options(cfg_dataset))
        except DatasetNotFound:
            entry.download(root)
    return entry.read(root, **_reader_options(cfg_dataset))


def _reader_options(cfg_dataset) -> dict:
    keys = ("image_size", "train_per_class", "test_per_class", "split_seed")
    options: dict[str, Any] = {k: int(cfg_dataset[k]) for k in keys if cfg_dataset.get(k) is not None}
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


def _check_classes(source: Source, cfg_dataset, num_classes: int) -> None:
    """Refuse a classifier that would mean nothing: fewer than two classes, or a head of another size than the data's
    classes (dataset.num_classes disagreeing with the class names the data set lists)."""
    root = cfg_dataset.get("root")
    where = f"dataset={cfg_dataset.name}" + (f" at {root}" if root else "")
    present = np.unique(source.train.labels).size if source.train.labels.size else 0
    if (source.classes and len(source.classes) < 2) or present == 1:
        found = (
            f"{len(source.classes)} class(es) ({', '.join(map(str, source.classes[:3]))})"
            if source.classes
            else "one class in its training labels"
        )
        raise DatasetFormatError(
            f"{where} has {found}: a classifier needs at least 2 classes, so the run would "
            "report a meaningless 100% accuracy. Give the data set a folder per class (at least two)."
        )
    if (
        dataset_entry(cfg_dataset).counts_classes
        and source.classes
        and cfg_dataset.num_classes is not None
        and len(source.classes) != num_classes
    ):  # a named data set's fixed count: _check_labels
        raise ConfigError(
            f"Invalid configuration: dataset.num_classes={num_classes} but {where} has "
            f"{len(source.classes)} classes ({', '.join(map(str, source.classes[:5]))}"
            f"{', ...' if len(source.classes) > 5 else ''}); set dataset.num_classes={len(source.classes)} "
            "or null (the number of class folders)."
        )


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
    classes: List[str] = field(default_factory=list)  # class names by index ("0", "1", ... where none are known)


def load_splits(cfg_dataset, phase: str, val_ratio: float, val_seed: int) -> Splits:
    """Read `cfg_dataset.name`; phase=test evaluates on the test split, phase=val on a held-out stratified
    split of the training set; `dataset.max_per_class` then trims both."""
    name = cfg_dataset.name
    source = load_source(cfg_dataset)
    # image_folder: null counts the class folders
    num_classes = len(source.classes) if cfg_dataset.num_classes is None else int(cfg_dataset.num_classes)
    _check_classes(source, cfg_dataset, num_classes)
    _check_labels(source, num_classes, name)
    train, test = source.train, source.test
    if phase == "val":
        tr, va = split_train_val(train.labels, val_ratio, val_seed)
        train, test = train.subset(tr), train.subset(va)
    limit = cfg_dataset.get("max_per_class")
    if limit is not None:
        train = train.subset(first_per_class(train.labels, int(limit)))
        test = test.subset(first_per_class(test.labels, int(limit)))
    names = list(source.classes) if len(source.classes) == num_classes else [str(i) for i in range(num_classes)]
    return Splits(train, test, num_classes, names)


@dataclass(frozen=True)
class Loading:
    """How a run reads its data set, beyond the dataset group: the phase and its validation split, batch sizes,
    loader workers, memory format, and this process's part under torchrun."""

    phase: str = "test"
    val_ratio: float = 0.1
    val_seed: int = 42
    batch_size: int = 32
    supplement: bool = True
    eval_batch_size: int = 256
    num_workers: int = 0
    channels_last: bool = False
    world_size: int = 1
    rank: int = 0


def build_sampler(labels: np.ndarray, name: str, loading: Loading, seeds: RunSeeds) -> SupplementedBatchSampler:
    """The run's supplemented batch sampler over the training labels (a RunError when batches cannot be made)."""
    try:
        return SupplementedBatchSampler(
            labels,
            loading.batch_size,
            seed=seeds.sampler(),
            supplement=loading.supplement,
            num_replicas=loading.world_size,
            rank=loading.rank,
        )
    except ValueError as exc:  # a class with one training image, or a batch larger than the data
        raise RunError(f"Cannot build training batches for {name} ({loading.phase} phase): {exc}") from None


def build_data(dataset, loading: Loading, device, seeds: RunSeeds, with_original: bool = True) -> DataBundle:
    """The run's training stream (sampler, views, seeds, memory format fixed here) and evaluation stream, from the
    `dataset` config group."""
    with value_errors_as_config_errors("Invalid configuration: "):  # a value the readers or transforms cannot use
        return _build_data(dataset, loading, device, seeds, with_original)


def _check_channels(dataset, channels: int) -> None:
    mean, std = list(dataset.mean), list(dataset.std)
    if len(mean) != channels or len(std) != channels:
        raise ConfigError(
            f"Invalid configuration: dataset.mean={mean} / dataset.std={std} must each have one value per image "
            f"channel, and {dataset.name} images have {channels}."
        )


def _build_data(dataset, loading: Loading, device, seeds: RunSeeds, with_original: bool) -> DataBundle:
    splits = load_splits(dataset, loading.phase, loading.val_ratio, loading.val_seed)
    train, name = splits.train, dataset.name
    sampler = build_sampler(train.labels, name, loading, seeds)
    aug, channels_last = dataset.augment, loading.channels_last
    mean, std, size = list(dataset.mean), list(dataset.std), int(dataset.image_size)
    channels = _channels(dataset, train)
    evaluation = eval_stream(dataset, splits.eval, loading, device)
    policy, erasing = str(aug.get("policy", "none")), float(aug.get("random_erasing", 0.0))
    if isinstance(train, ArraySplit):
        spec = AugmentSpec(int(aug.crop_padding), float(aug.hflip), int(aug.cutout), erasing)
        train_data = InMemoryTwoViewData(
            torch.from_numpy(train.images), torch.from_numpy(train.labels), mean, std, spec, device
        )
        memory_stream = InMemoryTrainStream(train_data, sampler, seeds, with_original, channels_last)
        return DataBundle(memory_stream, evaluation, splits.num_classes, channels, size, splits.classes)

    if int(aug.crop_padding) or int(aug.cutout):
        raise ConfigError(
            f"Invalid configuration: dataset.augment.crop_padding={aug.crop_padding} / dataset.augment.cutout="
            f"{aug.cutout}: padded crops and cutout are implemented for the data sets held in memory; {name} is "
            "decoded from files with RandomResizedCrop + flip (Table 1), so set both to 0."
        )
    # torchvision: ~2 s, only for data decoded from files
    from synermix.data.files import FileTrainStream, FileTwoViewDataset, eval_transform, train_transform

    original = eval_transform(size, int(dataset.eval_resize), mean, std)
    augmented = train_transform(size, float(aug.hflip), mean, std, policy, erasing)
    views = FileTwoViewDataset(train, augmented, original, with_original)
    stream = FileTrainStream(views, sampler, seeds, loading.num_workers, device, channels_last)
    return DataBundle(stream, evaluation, splits.num_classes, 3, size, splits.classes)


def _channels(dataset, split) -> int:
    """The image channels of `split` (checked against dataset.mean/std, and its size against image_size)."""
    channels = int(split.images.shape[1]) if isinstance(split, ArraySplit) else 3
    _check_channels(dataset, channels)
    size = int(dataset.image_size)
    if isinstance(split, ArraySplit) and split.images.shape[-1] != size:
        raise ConfigError(
            f"Invalid configuration: dataset.image_size={size} but {dataset.name} images are "
            f"{split.images.shape[-1]}x{split.images.shape[-2]}; set dataset.image_size={split.images.shape[-1]}."
        )
    return channels


def eval_stream(dataset, split: ArraySplit | FileSplit, loading: Loading, device) -> EvalStream:
    """The evaluation stream of `split`: normalised images (files: Resize + CenterCrop first), in fixed order,
    this process's part under torchrun."""
    mean, std = list(dataset.mean), list(dataset.std)
    data: InMemoryTwoViewData | FileEvalData
    if isinstance(split, ArraySplit):
        data = InMemoryTwoViewData(
            torch.from_numpy(split.images), torch.from_numpy(split.labels), mean, std, AugmentSpec(), device
        )
    else:
        from synermix.data.files import FileEvalData, eval_transform  # noqa: F811  torchvision: ~2 s, on use

        transform = eval_transform(int(dataset.image_size), int(dataset.eval_resize), mean, std)
        data = FileEvalData(split, transform, loading.num_workers, device)
    return EvalStream(data, loading.eval_batch_size, loading.channels_last, loading.world_size, loading.rank)


def build_eval_data(dataset, loading: Loading, device) -> tuple:
    """(evaluation stream, Splits) of the phase's evaluation split, without a training stream (its images checked
    against dataset.mean/std and image_size)."""
    with value_errors_as_config_errors("Invalid configuration: "):
        splits = load_splits(dataset, loading.phase, loading.val_ratio, loading.val_seed)
        _channels(dataset, splits.eval)
        return eval_stream(dataset, splits.eval, loading, device), splits


__all__ = [
    "DATASETS",
    "Batch",
    "DataBundle",
    "DatasetFormatError",
    "DatasetNotFound",
    "EvalStream",
    "Loading",
    "Splits",
    "TrainStream",
    "build_data",
    "build_eval_data",
    "eval_stream",
    "held_in_memory",
    "load_splits",
    "split_train_val",
]
