"""The training stream and the evaluation data of a run: batches arrive on the device, in the run's memory format."""

from __future__ import annotations

import itertools
from typing import Iterator, NamedTuple, Optional, overload

import numpy as np
import torch
from torch import Tensor

from synermix.method.sampling import SupplementedBatchSampler, shard_bounds
from synermix.seeding import RunSeeds


class Batch(NamedTuple):
    """One training step's input: its index in the epoch, the original view (None unless needed), the
    augmented view, the labels, and under torchrun the size of the global batch this process has a part of."""

    step: int
    x_orig: Optional[Tensor]
    x_aug: Tensor
    y: Tensor
    global_size: Optional[int] = None


@overload
def to_memory_format(x: Tensor, channels_last: bool) -> Tensor: ...
@overload
def to_memory_format(x: None, channels_last: bool) -> None: ...
def to_memory_format(x: Optional[Tensor], channels_last: bool) -> Optional[Tensor]:
    """`x` as channels_last (NHWC) when asked; unchanged otherwise (None stays None)."""
    if x is None or not channels_last:
        return x
    return x.contiguous(memory_format=torch.channels_last)


class TrainStream:
    """Supplemented training batches of both views, seeded per epoch and step; subclasses make the views.

    Everything an epoch needs is fixed when the stream is built (sampler, whether the original view
    is made, seeds, memory format); `epoch(e, start_step)` yields `Batch`es from `start_step` on,
    exactly those an uninterrupted epoch would yield there.
    """

    def __init__(
        self, sampler: SupplementedBatchSampler, seeds: RunSeeds, with_original: bool, channels_last: bool = False
    ) -> None:
        self.sampler, self.seeds = sampler, seeds
        self.with_original, self.channels_last = with_original, channels_last

    def __len__(self) -> int:
        """Steps per epoch."""
        return len(self.sampler)

    @property
    def labels(self) -> np.ndarray:
        """The training samples' labels (CPU)."""
        return self.sampler.labels

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        """The batches of `epoch` from `start_step` on, on the device."""
        self.sampler.set_epoch(epoch)
        sizes: Iterator[int | None] = itertools.repeat(None)
        if self.sampler.num_replicas > 1:
            sizes = itertools.islice((len(b) for b in self.sampler.global_batches()), start_step, None)
        for (step, x_orig, x_aug, y), size in zip(self._views(self.seeds.augment(epoch), start_step), sizes):
            yield Batch(
                step, to_memory_format(x_orig, self.channels_last), to_memory_format(x_aug, self.channels_last), y, size
            )

    def _views(self, epoch_seed: int, start: int) -> Iterator[tuple]:
        """(step, x_orig or None, x_aug, y) of the sampler's batches from `start` on."""
        raise NotImplementedError


class EvalStream:
    """The evaluation split in fixed order: (image, label) batches on the device, in the run's memory format.

    Under torchrun each process iterates its contiguous part [start, stop) (`sampling.shard_bounds`)."""

    def __init__(
        self, data, batch_size: int, channels_last: bool = False, num_replicas: int = 1, rank: int = 0
    ) -> None:
        self.data, self.batch_size, self.channels_last = data, batch_size, channels_last
        self.start, self.stop = shard_bounds(len(data), num_replicas, rank)

    def __len__(self) -> int:
        """Number of evaluation samples (all processes' parts together)."""
        return len(self.data)

    def __iter__(self) -> Iterator[tuple]:
        for x, y in self.data.eval_batches(self.batch_size, self.start, self.stop):
            yield to_memory_format(x, self.channels_last), y
