"""Performance figures: the batched two-view pipeline and the lean step against per-sample references.

The references are what a straightforward implementation does: a torchvision/PIL two-view pipeline
applied image by image in a DataLoader, and an intra-class mixup that loops over the classes.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from benchmarks.accelerator import bench_accelerator
from benchmarks.files import bench_files
from benchmarks.timing import Row, drain, format_table, per_round, round_robin, sync, write_csv
from benchmarks.workloads import CIFAR_MEAN, CIFAR_STD, cifar_format_data, model_of
from synermix.config.presets import method_presets, preset_switches
from synermix.data import load_splits
from synermix.data.in_memory import AugmentSpec, InMemoryTrainStream, InMemoryTwoViewData
from synermix.data.sources import ArraySplit
from synermix.data.stream import Batch, EvalStream, to_memory_format
from synermix.method.intra import LocalIntra
from synermix.method.loss import SynerMixLoss
from synermix.method.sampling import SupplementedBatchSampler
from synermix.seeding import RunSeeds
from synermix.train.evaluation import evaluate
from synermix.train.trainer import Trainer, TrainOptions


class Cutout:
    """DeVries & Taylor's Cutout on one CHW tensor in [0, 1], before Normalize as in the authors' code."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.size <= 0:
            return x
        h, w = x.shape[-2:]
        cy, cx = np.random.randint(h), np.random.randint(w)
        y0, y1 = max(cy - self.size // 2, 0), min(cy - self.size // 2 + self.size, h)
        x0, x1 = max(cx - self.size // 2, 0), min(cx - self.size // 2 + self.size, w)
        x = x.clone()
        x[:, y0:y1, x0:x1] = 0
        return x


class PerSampleTwoView(Dataset):
    """(original view, augmented view, label) per image with torchvision's PIL transforms."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, mean, std, spec: AugmentSpec):
        self.images, self.labels = images, labels
        size = images.shape[-1]
        aug = [T.RandomCrop(size, padding=spec.crop_padding)] if spec.crop_padding else []
        aug += [T.RandomHorizontalFlip(spec.hflip)] if spec.hflip else []
        self.original = T.Compose([T.ToTensor(), T.Normalize(mean, std)])
        self.augment = T.Compose([T.ToTensor(), *aug, Cutout(spec.cutout), T.Normalize(mean, std)])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        chw = self.images[index]
        image = Image.fromarray(chw[0] if chw.shape[0] == 1 else chw.transpose(1, 2, 0))
        return self.original(image), self.augment(image), int(self.labels[index])


def per_sample_batches(dataset: PerSampleTwoView, sampler, workers: int) -> Iterable[Batch]:
    """The training stream's `Batch`es, made by the per-sample reference through a DataLoader."""
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=workers)
    for step, (orig, aug, y) in enumerate(loader):
        yield Batch(step, orig, aug, y)


def intra_class_loss_loop(head, features, labels, num_per_class, generator, num_classes=None):
    """Eq. 1-2 with a Python loop over the classes of the batch (the reference the fast path replaces)."""
    losses = []
    r = torch.rand((num_per_class, 1, labels.shape[0]), generator=generator)[:, 0].to(features.device)
    for c in torch.unique(labels).tolist():
        members = labels == c
        for p in range(num_per_class):
            w = r[p][members] / r[p][members].sum()
            f_syn = (w[:, None] * features[members]).sum(0, keepdim=True)
            losses.append(F.cross_entropy(head(f_syn).float(), torch.tensor([c], device=features.device)))
    return torch.stack(losses).mean()


class LoopIntra(LocalIntra):
    """L_intra by the per-class loop reference (`intra_class_loss_loop`), as the loss's intra strategy."""

    def __call__(self, head, features, labels, generator, part=None):
        """L_intra of one batch, class by class."""
        return intra_class_loss_loop(head, features, labels, self.num_per_class, generator, self.num_classes)


def loss_of(method: str, num_classes: int, loop_intra: bool = False) -> SynerMixLoss:
    """The preset `method`'s loss (its L_intra by the per-class loop with `loop_intra`)."""
    intra, inter, beta = preset_switches(method)
    return SynerMixLoss(
        intra, inter, beta, num_classes=num_classes, intra_term=LoopIntra(1, num_classes) if loop_intra else None
    )


def timed_trainer(model, loss: SynerMixLoss, optimizer, seed: int = 1, scheduler=None) -> Any:
    """A Trainer that also sums the seconds of its steps (forward to optimizer step, synchronised) in
    `model_seconds`."""

    class Timed(Trainer):
        model_seconds = 0.0

        def run_step(self, batch):
            sync(self.device)
            start = time.perf_counter()
            values = super().run_step(batch)
            sync(self.device)
            self.model_seconds += time.perf_counter() - start
            return values

    return Timed(model, loss, optimizer, scheduler, TrainOptions(RunSeeds(seed)))


def stream_of(data: InMemoryTwoViewData, sampler, seed: int = 1) -> InMemoryTrainStream:
    """Our batched two-view stream over `data` (both views made)."""
    return InMemoryTrainStream(data, sampler, RunSeeds(seed), with_original=True)


# ------------------------------------------------------------------ measurements
def bench_loader(images, labels, batch_size: int = 128, workers=(0, 2), reps: int = 3) -> List[Row]:
    """Images/s (both views) of the batched pipeline vs the per-sample one, per worker count; the ratio to the
    best per-sample worker count in each round."""
    spec = AugmentSpec(4, 0.5, 16)
    sampler = SupplementedBatchSampler(labels, batch_size, seed=0)
    data = InMemoryTwoViewData(torch.from_numpy(images), torch.from_numpy(labels), CIFAR_MEAN, CIFAR_STD, spec)
    dataset = PerSampleTwoView(images, labels, CIFAR_MEAN, CIFAR_STD, spec)
    n_images = sum(len(b) for b in sampler)
    jobs: Dict[str, Callable[[], Any]] = {"ours": lambda: [None for _ in stream_of(data, sampler).epoch(0)]}
    for w in workers:
        jobs[f"per-sample {w}"] = partial(drain, per_sample_batches, dataset, sampler, w)
    rates = {name: [n_images / s for s in seconds] for name, seconds in round_robin(jobs, reps, warmup=0).items()}
    best = [max(rates[f"per-sample {w}"][i] for w in workers) for i in range(reps)]
    rows = [
        Row.of("loader", "batched two-view (in-memory tensors)", rates["ours"], "img/s", per_round(rates["ours"], best))
    ]
    rows[0].check(">= 5x per-sample (best workers)", rows[0].ratio is not None and rows[0].ratio >= 5)
    rows += [
        Row.of("loader", f"per-sample torchvision/PIL, {w} workers", rates[f"per-sample {w}"], "img/s") for w in workers
    ]
    return rows


TARGET_BATCH = 128  # the batch size of the step-cost targets (Table 1's)


def bench_steps(
    model_name: str,
    batch_sizes=(16, 32, 128),
    reps: int = 3,
    device="cpu",
    amp=False,
    channels_last=False,
    methods=None,
    warmup: int = 1,
) -> List[Row]:
    """Milliseconds per training step of each preset (default: all) on a supplemented CIFAR-format batch, and its
    ratio to the baseline's step in the same round."""
    device = torch.device(device)
    images, labels = cifar_format_data(2048)
    data = InMemoryTwoViewData(
        torch.from_numpy(images), torch.from_numpy(labels), CIFAR_MEAN, CIFAR_STD, AugmentSpec(4, 0.5, 16), device
    )
    rows = []
    for bs in batch_sizes:
        idx = next(iter(SupplementedBatchSampler(labels, bs, seed=0)))
        x_orig, x_aug, y = data.batch(idx, torch.Generator(device=device).manual_seed(0))
        batch = Batch(0, to_memory_format(x_orig, channels_last), to_memory_format(x_aug, channels_last), y)
        jobs: Dict[str, Callable[[], Any]] = {}
        for method in methods or method_presets():
            model = model_of(model_name, 100, 3, 32, device)
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            trainer = Trainer(model, loss_of(method, 100), optimizer, None, TrainOptions(RunSeeds(0), amp=amp))
            jobs[method] = partial(trainer.run_step, batch)
        seconds = round_robin(jobs, reps, warmup, device=device)
        for method, times in seconds.items():
            row = Row.of(
                f"step {model_name}",
                f"{method} bs={bs} (+{len(idx) - bs} supplemented)",
                [t * 1e3 for t in times],
                "ms/step",
                per_round(times, seconds["baseline"]),
            )
            if bs == TARGET_BATCH and method in ("synermix", "synermix_mm"):
                row.check("<= 2.1x baseline", row.ratio is not None and row.ratio <= 2.1)
            rows.append(row)
    return rows


def _epoch_of(trainer: Any, batches, steps: int) -> float:
    """Train one epoch from its start; the seconds its steps took (forward to optimizer step)."""
    before = trainer.model_seconds
    trainer.step, trainer.sums = 0, torch.zeros(3)
    trainer.train_epoch(batches, steps, trainer.lr)
    return trainer.model_seconds - before


def _timed_epoch(trainer: Any, batches: Callable[[], Iterable[Batch]], steps: int, out: List[float]) -> None:
    """One epoch of `trainer` over batches(), its model seconds appended to `out`."""
    out.append(_epoch_of(trainer, batches(), steps))


def bench_epoch(
    n: int = 10_000, batch_size: int = 128, method: str = "synermix", workers=(0, 2), reps: int = 3
) -> List[Row]:
    """Wall time of one epoch and its ratio to the model's share of it (forward to optimiser step): our path vs
    the per-sample pipeline + per-class loop, `reps` epochs each, round-robin."""
    images, labels = cifar_format_data(n)
    spec = AugmentSpec(4, 0.5, 16)
    sampler = SupplementedBatchSampler(labels, batch_size, seed=0)
    data = InMemoryTwoViewData(torch.from_numpy(images), torch.from_numpy(labels), CIFAR_MEAN, CIFAR_STD, spec)
    dataset = PerSampleTwoView(images, labels, CIFAR_MEAN, CIFAR_STD, spec)
    paths: Dict[str, Tuple[bool, Callable[..., Any]]] = {"ours": (False, lambda: stream_of(data, sampler).epoch(0))}
    for w in workers:
        paths[f"per-sample {w}"] = (True, lambda w=w: per_sample_batches(dataset, sampler, w))
    jobs: Dict[str, Callable[[], Any]] = {}
    model_seconds: Dict[str, List[float]] = {}
    for name, (loop, batches) in paths.items():
        model = model_of("cifar_resnet", 100, 3, 32, "cpu")
        trainer = timed_trainer(
            model, loss_of(method, 100, loop), torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        )
        model_seconds[name] = []
        jobs[name] = partial(_timed_epoch, trainer, batches, len(sampler), model_seconds[name])
    wall = round_robin(jobs, reps, warmup=0)
    rows = [
        Row.of(
            "epoch",
            f"ours: batched views + vectorised intra ({method}, bs={batch_size}, {n} images)",
            wall["ours"],
            "s",
            per_round(wall["ours"], model_seconds["ours"]),
        )
    ]
    rows[0].check("wall <= 1.05x model step time", rows[0].ratio is not None and rows[0].ratio <= 1.05)
    rows += [
        Row.of(
            "epoch",
            f"per-sample pipeline ({w} workers) + per-class intra loop",
            wall[f"per-sample {w}"],
            "s",
            per_round(wall[f"per-sample {w}"], model_seconds[f"per-sample {w}"]),
        )
        for w in workers
    ]
    return rows


def bench_accuracy(seeds=(0, 1, 2), epochs: int = 10, max_per_class: Optional[int] = None) -> List[Row]:
    """Digits, synermix: final accuracy of our path vs the per-sample pipeline + per-class loop, over seeds."""
    cfg = OmegaConf.create(
        {
            "name": "digits",
            "root": None,
            "download": False,
            "num_classes": 10,
            "image_size": 8,
            "max_per_class": max_per_class,
            "mean": [0.3053],
            "std": [0.3760],
            "augment": {"crop_padding": 1, "hflip": 0.0, "cutout": 3},
        }
    )
    splits = load_splits(cfg, "test", 0.1, 0)
    assert isinstance(splits.train, ArraySplit) and isinstance(splits.eval, ArraySplit)  # digits: in memory
    images, labels = splits.train.images, splits.train.labels
    spec, mean, std = AugmentSpec(1, 0.0, 3), tuple(cfg.mean), tuple(cfg.std)
    train = InMemoryTwoViewData(torch.from_numpy(images), torch.from_numpy(labels), mean, std, spec)
    test = EvalStream(
        InMemoryTwoViewData(torch.from_numpy(splits.eval.images), torch.from_numpy(splits.eval.labels), mean, std), 256
    )
    results: Dict[str, List[float]] = {"ours": [], "reference": []}
    for path in results:
        for seed in seeds:
            torch.manual_seed(seed)
            np.random.seed(seed)
            model = model_of("cifar_resnet", 10, 1, 8, "cpu", seed)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 5, 0.5)
            trainer = timed_trainer(model, loss_of("synermix", 10, path == "reference"), optimizer, seed, scheduler)
            sampler = SupplementedBatchSampler(labels, 32, seed=seed)
            dataset = PerSampleTwoView(images, labels, mean, std, spec)
            stream = stream_of(train, sampler, seed)
            accs = []
            for epoch in range(epochs):
                sampler.set_epoch(epoch)
                batches = per_sample_batches(dataset, sampler, 0) if path == "reference" else stream.epoch(epoch)
                trainer.epoch = epoch
                _epoch_of(trainer, batches, len(sampler))
                accs.append(evaluate(model, test).accuracy)
                scheduler.step()
            results[path].append(float(np.mean(accs[-3:])))
    ours, ref = np.array(results["ours"]), np.array(results["reference"])

    def noise(a, b) -> float:  # standard error of the difference of two means
        return float(np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / len(seeds)))

    rows = [
        Row(
            "accuracy",
            f"digits synermix, {k}, {len(seeds)} seeds (std {np.std(v, ddof=1):.2f})",
            float(np.mean(v)),
            "%",
        )
        for k, v in results.items()
    ]
    diff, bound = float(ours.mean() - ref.mean()), 2 * max(noise(ours, ref), 0.1)
    rows.append(
        Row(
            "accuracy",
            "difference ours - reference",
            diff,
            "points",
            None,
            f"|diff| <= 2 std errors ({bound:.2f})",
            abs(diff) <= bound,
        )
    )
    return rows


def sections(quick: bool = False) -> Dict[str, Callable[[], List[Row]]]:
    """Every section by name, at the sizes that keep `make bench` within 10 minutes on 2 cores (tiny when
    `quick`: the smoke test checks they run, not the targets)."""
    q = quick
    return {
        "loader": lambda: bench_loader(
            *cifar_format_data(1024 if q else 5_000),
            batch_size=64 if q else 128,
            workers=(0,) if q else (0, 2),
            reps=1 if q else 3,
        ),
        # 9 rounds: a ratio of two ~0.1 s steps needs them on a noisy 2-core machine (its median moved 1.96-2.28 with 5)
        "step cifar_resnet": lambda: bench_steps("cifar_resnet", (16,) if q else (16, 32, 128), 1 if q else 9),
        # the network of the paper's CIFAR-100 runs: only the batch size the target is about, only the presets it
        # names, 3 rounds (a step is seconds long, and the per-round ratios cancel the machine's drift)
        "step resnet18": lambda: bench_steps(
            "resnet18",
            (4,) if q else (128,),
            1 if q else 3,
            methods=("baseline", "synermix", "synermix_mm"),
            warmup=0 if q else 1,
        ),
        "epoch": lambda: bench_epoch(
            256 if q else 1_280, 64 if q else 128, workers=(0,) if q else (0, 2), reps=1 if q else 2
        ),
        "files": lambda: bench_files(
            2 if q else 8, 6 if q else 30, 8 if q else 32, (0,) if q else (0, 2), 1 if q else 3
        ),
        "accuracy": lambda: bench_accuracy((0, 1) if q else (0, 1, 2), 1 if q else 6, 30 if q else None),
    }


def run_all(
    quick: bool = False,
    out_csv: Optional[Path] = None,
    log: Callable[[str], None] = print,
    only: Optional[List[str]] = None,
) -> List[Row]:
    """The sections named in `only` (default: all; CUDA's only with a GPU): prints the table, writes the CSV."""
    chosen = sections(quick)
    if torch.cuda.is_available():
        chosen["cuda"] = lambda: bench_accelerator("cuda")
    else:
        log(
            "No CUDA device: the accelerator section (AMP, channels_last, compile on CUDA) is skipped; "
            "tests run it on CPU at tiny sizes."
        )
    unknown = sorted(set(only or ()) - set(chosen))
    if unknown:
        raise SystemExit(f"error: unknown benchmark section(s) {unknown}; choose from {sorted(chosen)}.")
    rows: List[Row] = []
    start_all = time.perf_counter()
    for name, section in chosen.items():
        if only and name not in only:
            continue
        start = time.perf_counter()
        rows += section()
        log(f"[{name}] done in {time.perf_counter() - start:.1f}s")
    log(f"all sections: {time.perf_counter() - start_all:.1f}s")
    if out_csv is not None:
        write_csv(rows, out_csv)
    log(format_table(rows))
    return rows
