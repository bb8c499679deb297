"""The accelerator section: SynerMix training steps with and without AMP (bfloat16, float16 + GradScaler),
channels_last and torch.compile, as images/s and step-time ratios to the float32 step. Runs on CUDA in `make bench`
and `make gpu-check`; on CPU at tiny sizes in the tests, so none of these paths can rot."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, NamedTuple

import torch

from benchmarks.timing import Row, per_round, round_robin
from benchmarks.workloads import CIFAR_MEAN, CIFAR_STD, cifar_format_data, model_of
from synermix.config.presets import preset_switches
from synermix.data.in_memory import AugmentSpec, InMemoryTwoViewData
from synermix.data.stream import Batch, to_memory_format
from synermix.method.loss import SynerMixLoss
from synermix.method.sampling import SupplementedBatchSampler
from synermix.seeding import RunSeeds
from synermix.train.trainer import Trainer, TrainOptions


class Variant(NamedTuple):
    """One way of running the same step."""

    name: str
    amp: bool = False
    amp_dtype: str = "bfloat16"
    channels_last: bool = False
    compile: bool = False


VARIANTS = (
    Variant("float32"),
    Variant("bfloat16 autocast", amp=True),
    Variant("float16 autocast + GradScaler", amp=True, amp_dtype="float16"),
    Variant("float32 channels_last", channels_last=True),
    Variant("bfloat16 autocast + channels_last", amp=True, channels_last=True),
    Variant("float32 torch.compile", compile=True),
)


def _step_job(variant: Variant, model_name: str, method: str, batch, device: torch.device, num_classes: int):
    """A closure running one training step of `variant` (model built and seeded alike for every variant)."""
    x_orig, x_aug = tuple(to_memory_format(t, variant.channels_last) for t in batch[:2])
    model = model_of(model_name, num_classes, 3, batch[1].shape[-1], device)
    if variant.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if variant.compile:
        for stage in model.stages.values():
            stage.compile(dynamic=True)
    intra, inter, beta = preset_switches(method)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    trainer = Trainer(
        model,
        SynerMixLoss(intra, inter, beta, num_classes=num_classes),
        optimizer,
        None,
        TrainOptions(RunSeeds(0), variant.amp, variant.amp_dtype),
    )

    def job() -> None:
        total = trainer.run_step(Batch(0, x_orig, x_aug, batch[2]))[0]
        if not torch.isfinite(total):
            raise FloatingPointError(f"{variant.name}: the training loss is not finite.")

    return job


def bench_accelerator(
    device_name: str = "cuda",
    model_name: str = "resnet18",
    batch_size: int = 128,
    reps: int = 10,
    warmup: int = 2,
    method: str = "synermix",
    variants=VARIANTS,
) -> List[Row]:
    """Images/s of `method`'s training step in each variant, with its step time relative to float32 (per round)."""
    device = torch.device(device_name)
    images, labels = cifar_format_data(max(4 * batch_size, 256), num_classes=100)
    data = InMemoryTwoViewData(
        torch.from_numpy(images), torch.from_numpy(labels), CIFAR_MEAN, CIFAR_STD, AugmentSpec(4, 0.5, 16), device
    )
    idx = next(iter(SupplementedBatchSampler(labels, batch_size, seed=0)))
    batch = data.batch(idx, torch.Generator(device=device).manual_seed(0))
    jobs: Dict[str, Callable[[], Any]] = {
        v.name: _step_job(v, model_name, method, batch, device, 100) for v in variants
    }
    seconds = round_robin(jobs, reps, warmup, device=device)
    reference = seconds[variants[0].name]
    n = len(idx)
    return [
        Row.of(
            f"accelerator {device.type}",
            f"{model_name} {method} bs={batch_size} (+{n - batch_size}): {name}",
            [n / t for t in times],
            "img/s",
            per_round(times, reference),
        )
        for name, times in seconds.items()
    ]
