"""File-based datasets (Food-101, Caltech-256, Pets): one decode per image feeds both views."""

from __future__ import annotations

from typing import Iterator, List, Optional, Tuple

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler, Subset
from torchvision.transforms import v2
from torchvision.transforms.v2.functional import pil_to_tensor

from synermix.data.sources import DatasetFormatError, FileSplit, open_rgb
from synermix.data.stream import TrainStream
from synermix.seeding import sample_seeds


def decode_rgb(path: str) -> Tensor:
    """uint8 (3, H, W) tensor of the image at `path`; a corrupt or missing file names itself."""
    # Pillow (libjpeg-turbo) rather than torchvision.io, whose decoders are deprecated since 0.29.
    return pil_to_tensor(open_rgb(path))


def eval_transform(image_size: int, resize: int, mean, std) -> v2.Compose:
    """Resize(resize) + CenterCrop(image_size) + normalise: the original view and evaluation."""
    return v2.Compose(
        [
            v2.Resize(resize, antialias=True),
            v2.CenterCrop(image_size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean, std),
        ]
    )


def _policy(name: str) -> List[v2.Transform]:
    """torchvision's automatic augmentation policy `name` (on uint8 images), none for `none`."""
    return {
        "none": [],
        "trivialaugment": [v2.TrivialAugmentWide()],
        "randaugment": [v2.RandAugment()],
        "autoaugment": [v2.AutoAugment()],
    }[name]


def train_transform(
    image_size: int, hflip: float, mean, std, policy: str = "none", random_erasing: float = 0.0
) -> v2.Compose:
    """RandomResizedCrop(image_size) + horizontal flip [+ an augmentation policy] + normalise [+ random erasing]:
    the augmented view."""
    erasing = [v2.RandomErasing(random_erasing)] if random_erasing > 0 else []
    return v2.Compose(
        [
            v2.RandomResizedCrop(image_size, antialias=True),
            v2.RandomHorizontalFlip(hflip),
            *_policy(policy),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean, std),
            *erasing,
        ]
    )


class FileTwoViewDataset(Dataset):
    """Items (original view or empty, augmented view, label) from one decode; keys are (index, seed).

    The seed (drawn per sample from the run seed and the epoch) seeds the augmentation, so the
    views do not depend on the number of workers or on where a resumed run restarted.
    """

    def __init__(self, split: FileSplit, augment: v2.Compose, original: v2.Compose, with_original: bool):
        self.split, self.augment, self.original, self.with_original = split, augment, original, with_original

    def __len__(self) -> int:
        return len(self.split.paths)

    def __getitem__(self, key: Tuple[int, int]):
        index, seed = key
        image = decode_rgb(self.split.paths[index])
        torch.manual_seed(seed)
        orig = self.original(image) if self.with_original else torch.empty(0)
        return orig, self.augment(image), int(self.split.labels[index])


class FileEvalDataset(Dataset):
    """Items (evaluation view, label)."""

    def __init__(self, split: FileSplit, transform: v2.Compose):
        self.split, self.transform = split, transform

    def __len__(self) -> int:
        return len(self.split.paths)

    def __getitem__(self, index: int):
        return self.transform(decode_rgb(self.split.paths[index])), int(self.split.labels[index])


class SeededBatches(Sampler[List[Tuple[int, int]]]):
    """Wrap a supplemented batch sampler: from step `start` on, each index of this process's part carries an
    augmentation seed derived from (epoch_seed, step, position in the global batch), so views do not depend on
    workers, prefetching, resumption or the number of processes."""

    def __init__(self, batch_sampler):
        self.batch_sampler = batch_sampler
        self.epoch_seed, self.start = 0, 0

    def __len__(self) -> int:
        return max(len(self.batch_sampler) - self.start, 0)

    def __iter__(self):
        for step, batch in enumerate(self.batch_sampler.global_batches()):
            if step >= self.start:
                part = self.batch_sampler.shard(len(batch))
                yield list(zip(batch[part].tolist(), sample_seeds(self.epoch_seed, step, len(batch))[part]))


class FileTrainStream(TrainStream):
    """Training stream of a file dataset: one DataLoader (workers persist across epochs, pinned memory on
    CUDA) over seeded batches of the stream's sampler; every image is decoded once for both views."""

    def __init__(
        self, dataset: "FileTwoViewDataset", sampler, seeds, num_workers: int, device, channels_last: bool = False
    ):
        super().__init__(sampler, seeds, dataset.with_original, channels_last)
        self.dataset = dataset
        self.device = torch.device(device)
        self._seeded = SeededBatches(sampler)
        self._loader = DataLoader(
            self.dataset,
            batch_sampler=self._seeded,
            num_workers=num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=num_workers > 0,
        )

    def _views(self, epoch_seed: int, start: int) -> Iterator:
        self._seeded.epoch_seed, self._seeded.start = epoch_seed, start
        nb = self.device.type == "cuda"
        try:
            for step, (orig, aug, y) in enumerate(self._loader, start):
                x_orig = orig.to(self.device, non_blocking=nb) if self.with_original and orig.numel() else None
                yield step, x_orig, aug.to(self.device, non_blocking=nb), y.to(self.device, non_blocking=nb)
        except DatasetFormatError as exc:
            # A worker's error comes back wrapped with its traceback: keep only the message.
            lines = [ln for ln in str(exc).splitlines() if ln.strip()]
            raise DatasetFormatError(lines[-1].split("DatasetFormatError: ", 1)[-1]) from None


class FileEvalData:
    """Evaluation data read from files."""

    def __init__(self, split: FileSplit, transform, num_workers: int, device):
        self.dataset = FileEvalDataset(split, transform)
        self.labels = torch.as_tensor(split.labels)
        self.num_workers, self.device = num_workers, torch.device(device)
        self._loaders: dict = {}

    def __len__(self) -> int:
        return len(self.dataset)

    def eval_batches(
        self, batch_size: int, start: int = 0, stop: Optional[int] = None
    ) -> Iterator[Tuple[Tensor, Tensor]]:
        """Sequential (image, label) batches of samples [start, stop) on the device (workers persist across
        evaluations)."""
        key = (batch_size, start, len(self) if stop is None else stop)
        if key not in self._loaders:
            part = self.dataset if key[1:] == (0, len(self)) else Subset(self.dataset, range(*key[1:]))
            self._loaders[key] = DataLoader(
                part,
                batch_size=batch_size,
                num_workers=self.num_workers,
                pin_memory=self.device.type == "cuda",
                persistent_workers=self.num_workers > 0,
            )
        nb = self.device.type == "cuda"
        for x, y in self._loaders[key]:
            yield x.to(self.device, non_blocking=nb), y.to(self.device, non_blocking=nb)
