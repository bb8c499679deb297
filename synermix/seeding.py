"""One seed drives everything: every random stream's seed is derived here, from the run seed."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

# Stream identifiers, the second word of every derived seed.
MODEL_INIT, SAMPLER, TORCH, MIX, AUG = range(5)


def derive_seed(*words: int) -> int:
    """A 63-bit seed from integers (run seed, stream id, epoch, step, ...), via NumPy's SeedSequence."""
    return int(np.random.SeedSequence(list(words)).generate_state(1, dtype=np.uint64)[0] >> 1)


def sample_seeds(epoch_seed: int, step: int, count: int) -> List[int]:
    """One augmentation seed per sample of a step's batch (file datasets: independent of workers)."""
    return np.random.default_rng([epoch_seed, step]).integers(0, 2**62, count).tolist()


@dataclass(frozen=True)
class RunSeeds:
    """The seeds of one run's random streams; `rank` (under torchrun) gives each process its own inter-class
    mixing and torch draws. The sampler, the augmentation and L_intra's weights are drawn alike on every process
    (for the global batch, as one process draws them)."""

    seed: int
    rank: int = 0
    distributed: bool = False

    @property
    def _rank_words(self) -> Tuple[int, ...]:
        return (self.rank,) if self.distributed else ()  # none added when alone: single-process seeds unchanged

    def model_init(self) -> int:
        """torch's global seed while the model is built (its initial weights)."""
        return derive_seed(self.seed, MODEL_INIT)

    def sampler(self) -> int:
        """The supplemented batch sampler's seed (the same on every process: one global batch order)."""
        return derive_seed(self.seed, SAMPLER)

    def augment(self, epoch: int) -> int:
        """The augmentation seed of `epoch` (the same on every process); step and sample seeds are derived from it."""
        return derive_seed(self.seed, AUG, epoch)

    @functools.lru_cache(maxsize=2)  # noqa: B019  two small ints per RunSeeds, which lives as long as its run
    def _epoch_step_bases(self, epoch: int) -> Tuple[int, int]:
        return derive_seed(self.seed, MIX, epoch, *self._rank_words), derive_seed(
            self.seed, TORCH, epoch, *self._rank_words
        )

    def shared_mix(self, epoch: int, step: int) -> int:
        """The mixing seed a single process uses at this step: under torchrun, every process's L_intra generator."""
        return derive_seed(derive_seed(self.seed, MIX, epoch), step)

    def step(self, epoch: int, step: int) -> Tuple[int, int]:
        """(mixing generator seed, torch global seed) of one optimisation step: resumable at any step."""
        mix, torch_seed = self._epoch_step_bases(epoch)  # derived once per epoch, not per step
        return derive_seed(mix, step), derive_seed(torch_seed, step)
