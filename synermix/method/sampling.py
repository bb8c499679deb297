"""Supplemented mini-batches (Sec. 3.1.1): every class present in a batch has at least two samples."""

from __future__ import annotations

from typing import Iterator, List, Sequence

import numpy as np
from torch.utils.data import Sampler

from synermix.errors import SynerMixError


class SupplementationError(SynerMixError, ValueError):
    """A class has too few training samples for supplemented batches."""


def _check_arguments(labels: np.ndarray, batch_size, drop_last: bool, num_replicas: int, rank: int) -> None:
    """ValueError naming the first argument a sampler cannot work with."""
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D sequence, got shape {labels.shape}.")
    if labels.min() < 0:
        raise ValueError(f"labels must be non-negative class indices, found {labels.min()}.")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 2:
        raise ValueError(f"batch_size must be an integer >= 2, got {batch_size!r}.")
    if drop_last and batch_size > labels.size:
        raise ValueError(
            f"batch_size={batch_size} is larger than the training set ({labels.size} samples) "
            "and drop_last=True would yield no batch; use a smaller batch size."
        )
    if num_replicas < 1 or not 0 <= rank < num_replicas:
        raise ValueError(f"rank={rank} must lie in [0, num_replicas={num_replicas}).")
    if num_replicas > 1 and (batch_size < num_replicas or not drop_last):
        raise ValueError(
            f"batch_size={batch_size} must be at least the number of processes ({num_replicas}), with "
            "drop_last=True, so that every process gets a part of each batch."
        )


def _check_supplementable(sizes: np.ndarray) -> None:
    """SupplementationError when a class has a single training image (it cannot get a second one)."""
    lonely = np.flatnonzero(sizes == 1)
    if lonely.size:
        shown = ", ".join(str(c) for c in lonely[:10]) + (" ..." if lonely.size > 10 else "")
        raise SupplementationError(
            f"class {shown} has a single image in the training set ({lonely.size} such "
            "class(es)), so a batch holding it cannot be supplemented with a second image "
            "of its class (Sec. 3.1.1); add images of that class, remove it, or set "
            "train.supplement=false."
        )


class SupplementedBatchSampler(Sampler[List[int]]):
    """Yield random batches, each followed by one extra same-class index per singleton class.

    Each epoch a random permutation of the dataset is cut into batches of `batch_size`
    (floor(N / batch_size) of them with `drop_last`, the remainder as a last batch otherwise).
    For every class with exactly one member in a batch, one more index of that class is drawn
    uniformly among the class's training indices not already in the batch and appended (extras in
    ascending class order). With `supplement=False` the plain random batches are yielded, so
    presets can be compared on identical batches with and without supplementation.
    Deterministic for (seed, epoch); call `set_epoch` before iterating each epoch.

    Distributed (`num_replicas` > 1, one sampler per process): every process builds the same
    supplemented global batch a single process would, and yields its contiguous part
    (`shard_bounds`), so N processes see exactly the batches of one process between them.
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray,
        batch_size: int,
        *,
        seed: int = 0,
        drop_last: bool = True,
        supplement: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        self.labels: np.ndarray = np.asarray(labels, dtype=np.int64)
        labels = self.labels
        _check_arguments(labels, batch_size, drop_last, num_replicas, rank)
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.drop_last = drop_last
        self.supplement = supplement
        self.epoch = 0

        sizes = np.bincount(labels)
        if supplement:
            _check_supplementable(sizes)
        # Class-sorted view of the dataset: class c occupies order[starts[c] : starts[c] + sizes[c]].
        self._order = np.argsort(labels, kind="stable")
        self._starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        self._sizes = sizes
        self._pos_in_class = np.empty_like(labels)
        self._pos_in_class[self._order] = np.arange(labels.size) - self._starts[labels[self._order]]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches the next iteration yields."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = self.labels.size
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _extras(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One random same-class partner (not in the batch) for each singleton class of `batch`."""
        batch_labels = self.labels[batch]
        counts = np.bincount(batch_labels, minlength=self._sizes.size)
        singles = batch[counts[batch_labels] == 1]
        singles = singles[np.argsort(self.labels[singles], kind="stable")]
        cls = self.labels[singles]
        # Draw k uniformly from the class's other (size - 1) members, skipping the one in the batch.
        k = (rng.random(singles.size) * (self._sizes[cls] - 1)).astype(np.int64)
        k += k >= self._pos_in_class[singles]
        return self._order[self._starts[cls] + k]

    def global_batches(self) -> Iterator[np.ndarray]:
        """The supplemented batches of the whole run (all processes together), as a single process makes them."""
        rng = np.random.default_rng([self.seed, self.epoch])
        perm = rng.permutation(self.labels.size)
        for b in range(len(self)):
            batch = perm[b * self.batch_size : (b + 1) * self.batch_size]
            yield np.concatenate((batch, self._extras(batch, rng))) if self.supplement else batch

    def shard(self, size: int) -> slice:
        """This process's positions in a global batch of `size` indices."""
        return slice(*shard_bounds(size, self.num_replicas, self.rank))

    def __iter__(self) -> Iterator[List[int]]:
        for batch in self.global_batches():
            yield batch[self.shard(batch.size)].tolist()


def shard_bounds(size: int, num_replicas: int, rank: int) -> tuple:
    """[start, stop) of part `rank` of `size` items cut into `num_replicas` contiguous parts whose sizes differ
    by at most one (the first `size % num_replicas` parts are one longer), as `numpy.array_split` cuts."""
    base, extra = divmod(size, num_replicas)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)
