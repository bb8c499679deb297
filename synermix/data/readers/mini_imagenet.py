"""mini-ImageNet (the cache pickles or the Ravi-Larochelle CSVs + images): 100 classes at 84x84, held in memory."""

from __future__ import annotations

import random
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np

from synermix.config.checks import Check, one_of
from synermix.data.registry import DatasetEntry
from synermix.data.sources import ArraySplit, Source, decode_resized, not_found, resize_array, split_per_class, unpickle
from synermix.errors import DatasetFormatError

MINI_LAYOUT = (
    "either mini-imagenet-cache-{train,val,test}.pkl (dicts with 'image_data' (N,84,84,3) uint8 and "
    "'class_dict' {wnid: [indices]}) or the Ravi-Larochelle train.csv/val.csv/test.csv (filename,label) + images/"
)


MINI_SPLITS = ("table1", "authors")
AUTHORS_SHUFFLE_SEED = 100  # the authors' MLclf call: random.seed(100), then random.shuffle of all images
AUTHORS_TRAIN_RATIO = 0.8  # ... and the first 80% of the shuffled pool train, the rest test


def authors_mini_imagenet_split(n: int) -> Tuple[np.ndarray, np.ndarray]:
    """(train, test) indices into the pooled images as the authors' MLclf split makes them: Python's
    `random.seed(100); random.shuffle` of all `n` images, the first floor(0.8 n) train (not stratified)."""
    order = list(range(n))
    random.Random(AUTHORS_SHUFFLE_SEED).shuffle(order)  # = random.seed(100); random.shuffle(order)
    cut = int(np.floor(n * AUTHORS_TRAIN_RATIO))
    return np.asarray(order[:cut], dtype=np.int64), np.asarray(order[cut:], dtype=np.int64)


def _mini_from_pickles(pkls: Sequence[Path]) -> Tuple[np.ndarray, List[str]]:
    images, wnids = [], []
    for p in pkls:
        d = unpickle(p)
        try:
            data = np.asarray(d["image_data"], dtype=np.uint8)
            owner = np.full(len(data), None, dtype=object)
            for wnid, idx in d["class_dict"].items():
                owner[np.asarray(idx)] = wnid
        except (KeyError, TypeError, IndexError) as exc:
            raise DatasetFormatError(
                f"{p} is not a mini-ImageNet cache pickle ({type(exc).__name__}: {exc})."
            ) from None
        if any(w is None for w in owner):
            raise DatasetFormatError(f"{p}: some images of 'image_data' belong to no class of 'class_dict'.")
        images.append(data)
        wnids += list(owner)
    return np.concatenate(images), wnids


def _mini_from_csvs(root: Path, csvs: Sequence[Path], image_size: int) -> Tuple[np.ndarray, List[str]]:
    images, wnids = [], []
    for p in csvs:
        lines = [ln.strip() for ln in p.read_text().splitlines() if ln.strip()]
        if not lines or lines[0].replace(" ", "") != "filename,label":
            raise DatasetFormatError(f"{p} does not start with the header 'filename,label'.")
        for ln in lines[1:]:
            fname, wnid = ln.split(",")[:2]
            images.append(decode_resized(root / "images" / fname, image_size))
            wnids.append(wnid)
    return np.stack(images), wnids


def read_mini_imagenet(
    root: Path, image_size: int = 84, train_per_class: int = 500, test_per_class: int = 100, split: str = "table1", **_
) -> Source:
    """All 100 classes pooled in file order (train, val, test; classes sorted by WordNet id), then split:
    `table1` per class the first 500 train / next 100 test; `authors` the authors' shuffled 80/20 cut."""
    parts = ("train", "val", "test")
    pkls = [root / f"mini-imagenet-cache-{p}.pkl" for p in parts]
    csvs = [root / f"{p}.csv" for p in parts]
    if all(p.is_file() for p in pkls):
        data, wnids = _mini_from_pickles(pkls)
    elif all(p.is_file() for p in csvs) and (root / "images").is_dir():
        data, wnids = _mini_from_csvs(root, csvs, image_size)
    else:
        raise not_found(
            "mini-ImageNet",
            root,
            [*pkls, *csvs, root / "images"],
            MINI_LAYOUT,
            "torchvision cannot download it; obtain it from the few-shot-learning releases and unpack it there.",
        )
    data = data.transpose(0, 3, 1, 2)
    if data.shape[-1] != image_size:
        data = np.stack([resize_array(im, image_size) for im in data])
    classes = sorted(set(wnids))
    lookup = {w: i for i, w in enumerate(classes)}
    labels = np.array([lookup[w] for w in wnids], dtype=np.int64)
    if split == "authors":
        tr, te = authors_mini_imagenet_split(len(labels))
    else:
        tr, te = split_per_class(labels, train_per_class, test_per_class, classes, "mini-ImageNet")
    return Source(ArraySplit(data[tr], labels[tr]), ArraySplit(data[te], labels[te]), classes)


class MiniImagenet(DatasetEntry):
    """mini-ImageNet: all 100 classes pooled, then split (dataset.split)."""

    in_memory = True
    checks = (
        Check(
            "split",
            one_of(MINI_SPLITS),
            f"one of {list(MINI_SPLITS)} (table1: 500/100 per class as Table 1; authors: the released code's split)",
            optional=True,
        ),
    )
    read = staticmethod(read_mini_imagenet)
