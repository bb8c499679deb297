"""A dataset held as one uint8 tensor; both views of a batch are made with batched tensor ops."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from synermix.data.augment import cutout, normalize, random_crop, random_erasing, random_hflip
from synermix.data.stream import TrainStream
from synermix.seeding import derive_seed


@dataclass(frozen=True)
class AugmentSpec:
    """Table 1's augmentations for small images: rc (crop padding), hf (flip prob.), co (cutout size), and random
    erasing's probability (after normalising)."""

    crop_padding: int = 0
    hflip: float = 0.0
    cutout: int = 0
    random_erasing: float = 0.0


class InMemoryTwoViewData:
    """uint8 images (N, C, H, W) + labels; `batch(idx)` returns (original view, augmented view, labels).

    The original view is the normalised image (the unaugmented input of SynerMix-Intra); the
    augmented view is crop -> flip -> cutout -> normalise of the same decoded pixels: as in the authors'
    code (ToTensor, RandomCrop, Flip, Cutout, Normalize), the cut square is black like the crop's padding.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        mean: Sequence[float],
        std: Sequence[float],
        augment: AugmentSpec = AugmentSpec(),
        device: torch.device | str = "cpu",
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be a uint8 (N, C, H, W) tensor, got {images.dtype} {tuple(images.shape)}.")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}.")
        self.images = images.to(device)
        self.labels = labels.to(device=device, dtype=torch.long)
        self.mean, self.std, self.augment = tuple(mean), tuple(std), augment

    def __len__(self) -> int:
        return self.images.shape[0]

    def original(self, idx: Tensor) -> Tensor:
        """Normalised, unaugmented images at `idx`."""
        return normalize(self.images[idx], self.mean, self.std)

    def augmented(self, idx: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """Augmented, normalised images at `idx`."""
        spec = self.augment
        x = random_crop(self.images[idx], spec.crop_padding, generator)
        x = random_hflip(x, spec.hflip, generator)
        x = cutout(x, spec.cutout, generator)
        return random_erasing(normalize(x, self.mean, self.std), spec.random_erasing, generator)

    def batch(
        self,
        idx: Sequence[int] | np.ndarray | Tensor,
        generator: Optional[torch.Generator] = None,
        with_original: bool = True,
    ) -> Tuple[Optional[Tensor], Tensor, Tensor]:
        """(original view or None, augmented view, labels) of the samples at `idx`."""
        idx = torch.as_tensor(idx, dtype=torch.long).to(self.images.device, non_blocking=True)
        x_orig = self.original(idx) if with_original else None
        return x_orig, self.augmented(idx, generator), self.labels[idx]

    def eval_batches(
        self, batch_size: int, start: int = 0, stop: Optional[int] = None
    ) -> Iterator[Tuple[Tensor, Tensor]]:
        """Sequential (normalised image, label) batches of samples [start, stop) for evaluation."""
        stop = len(self) if stop is None else stop
        for first in range(start, stop, batch_size):
            idx = torch.arange(first, min(first + batch_size, stop), device=self.images.device)
            yield self.original(idx), self.labels[idx]


class InMemoryTrainStream(TrainStream):
    """Training stream of an in-memory dataset: each step's views come from one generator on the images'
    device, seeded from (epoch seed, step), so any step can be reproduced without replaying the earlier ones."""

    def __init__(self, data: InMemoryTwoViewData, sampler, seeds, with_original: bool, channels_last: bool = False):
        super().__init__(sampler, seeds, with_original, channels_last)
        self.data = data

    def _views(self, epoch_seed: int, start: int) -> Iterator:
        generator = torch.Generator(device=self.data.images.device)
        for step, idx in enumerate(self.sampler.global_batches()):
            if step < start:
                continue
            generator.manual_seed(derive_seed(epoch_seed, step))
            # The whole global batch is augmented (cheap, on the device) and this process keeps its part, so
            # under torchrun every image gets the view one process would give it.
            part = self.sampler.shard(len(idx))
            views = self.data.batch(idx, generator, self.with_original)
            yield (step, *(None if v is None else v[part] for v in views))
