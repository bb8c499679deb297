"""Draws from a step's generator, wherever it lives, onto the tensor's device and dtype."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor


def uniform(shape: Tuple[int, ...], like: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    """U(0,1) draws shaped `shape` on `like`'s device and dtype, from `generator` wherever it lives."""
    device = generator.device if generator is not None else like.device
    r = torch.rand(shape, generator=generator, device=device, dtype=torch.float32)
    return r.to(device=like.device, dtype=like.dtype, non_blocking=True)
