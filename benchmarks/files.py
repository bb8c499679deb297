"""File-dataset section: one epoch of a generated Food-101 folder at 224 px, our one-decode two-view loader vs the
authors' pattern (a dataset applying two torchvision transform pipelines to each sample, in a DataLoader)."""

from __future__ import annotations

import json
import tempfile
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence

import numpy as np
import torch
from omegaconf import OmegaConf
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from benchmarks.timing import Row, drain, per_round, round_robin
from synermix.data import load_splits
from synermix.data.files import FileTrainStream, FileTwoViewDataset, eval_transform, train_transform
from synermix.data.sources import FileSplit
from synermix.method.sampling import SupplementedBatchSampler
from synermix.seeding import RunSeeds

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def write_food101_fixture(root: Path, classes: int = 8, per_class: int = 40, seed: int = 0) -> Path:
    """root/food-101/images/<class>/<id>.jpg (512 x 384 JPEGs, Food-101's typical size) + meta/{train,test}.json."""
    rng = np.random.default_rng(seed)
    base = root / "food-101"
    names = [f"dish_{c:02d}" for c in range(classes)]
    yy, xx = np.mgrid[0:384, 0:512]
    for name in names:
        (base / "images" / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class + 1):  # the last one of each class is its test image
            phase = rng.uniform(0, 2 * np.pi, 3)
            smooth = [127 + 100 * np.sin(xx / rng.uniform(20, 80) + yy / rng.uniform(20, 80) + p) for p in phase]
            pixels = np.stack(smooth, -1) + rng.normal(0, 12, (384, 512, 3))
            Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(base / "images" / name / f"{i}.jpg", quality=90)
    (base / "meta").mkdir(parents=True, exist_ok=True)
    for split, ids in (("train", range(per_class)), ("test", [per_class])):
        (base / "meta" / f"{split}.json").write_text(json.dumps({n: [f"{n}/{i}" for i in ids] for n in names}))
    (base / "meta" / "classes.txt").write_text("\n".join(names) + "\n")
    return root


class AuthorsTwoView(Dataset):
    """The authors' pattern: per sample, open the image and apply two torchvision PIL pipelines to it."""

    def __init__(self, split: FileSplit, image_size: int = 224, resize: int = 256):
        self.split = split
        self.original = T.Compose([T.Resize(resize), T.CenterCrop(image_size), T.ToTensor(), T.Normalize(MEAN, STD)])
        self.augment = T.Compose(
            [T.RandomResizedCrop(image_size), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)]
        )

    def __len__(self) -> int:
        return len(self.split.paths)

    def __getitem__(self, index: int):
        with Image.open(self.split.paths[index]) as opened:
            image = opened.convert("RGB")
        return self.original(image), self.augment(image), int(self.split.labels[index])


def bench_files(
    classes: int = 8, per_class: int = 40, batch_size: int = 32, workers: Sequence[int] = (0, 2), reps: int = 3
) -> List[Row]:
    """Images/s (both views) of one epoch over a generated Food-101 folder: ours vs the authors' pattern, per
    worker count, and the ratio in each round."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = OmegaConf.load(Path(__file__).resolve().parents[1] / "configs" / "dataset" / "food101.yaml").dataset
        cfg.root = str(write_food101_fixture(Path(tmp), classes, per_class))
        train = load_splits(cfg, "test", 0.1, 0).train
        assert isinstance(train, FileSplit)  # Food-101 is decoded from files
        sampler = SupplementedBatchSampler(train.labels, batch_size, seed=0)
        n_images = sum(len(b) for b in sampler)
        jobs: Dict[str, Callable[[], Any]] = {}
        for w in workers:
            views = FileTwoViewDataset(
                train, train_transform(224, 0.5, MEAN, STD), eval_transform(224, 256, MEAN, STD), True
            )
            ours = FileTrainStream(views, sampler, RunSeeds(0), w, torch.device("cpu"))
            authors = DataLoader(AuthorsTwoView(train), batch_sampler=sampler, num_workers=w, persistent_workers=w > 0)
            jobs[f"ours {w}"] = partial(drain, ours.epoch, 0)
            jobs[f"authors {w}"] = partial(drain, iter, authors)
        seconds = round_robin(jobs, reps)
    rows = []
    for w in workers:
        ours_rate = [n_images / s for s in seconds[f"ours {w}"]]
        ref_rate = [n_images / s for s in seconds[f"authors {w}"]]
        rows.append(
            Row.of(
                "files",
                f"ours: one decode, both views (Food-101 layout, 224 px, {w} workers)",
                ours_rate,
                "img/s",
                per_round(ours_rate, ref_rate),
            )
        )
        rows.append(
            Row.of("files", f"authors' pattern: two torchvision pipelines per sample ({w} workers)", ref_rate, "img/s")
        )
    return rows
