"""One seed drives everything: every random stream's seed is derived from the run seed."""
from __future__ import annotations

import numpy as np

# Stream identifiers, the second word of every derived seed.
MODEL_INIT, SAMPLER, TORCH, MIX, AUG = range(5)


def derive_seed(*words: int) -> int:
    """A 63-bit seed from integers (run seed, stream id, epoch, step, ...), via NumPy's SeedSequence."""
    return int(np.random.SeedSequence(list(words)).generate_state(1, dtype=np.uint64)[0] >> 1)
