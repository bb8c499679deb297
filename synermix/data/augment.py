"""Batched image augmentations on uint8/float tensors (N, C, H, W): crop, flip, cutout, normalise.

Each draws its randomness from a torch Generator (on any device) so a whole batch is augmented
with a handful of tensor ops, no per-sample Python work.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor


def _randint(high: int, n: int, generator: Optional[torch.Generator], device) -> Tensor:
    gdev = generator.device if generator is not None else device
    return torch.randint(high, (n,), generator=generator, device=gdev).to(device)


def random_crop(x: Tensor, padding: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """RandomCrop(size=(H, W), padding) with zero padding, one offset per image."""
    if padding <= 0:
        return x
    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    oy = _randint(2 * padding + 1, n, generator, x.device)
    ox = _randint(2 * padding + 1, n, generator, x.device)
    # two gathers (rows, then columns): the same pixels as one 4-D advanced index, ~2x faster on CPU
    rows = (oy[:, None] + torch.arange(h, device=x.device)).view(n, 1, h, 1).expand(n, c, h, w + 2 * padding)
    cols = (ox[:, None] + torch.arange(w, device=x.device)).view(n, 1, 1, w).expand(n, c, h, w)
    return padded.gather(2, rows).gather(3, cols)


def random_hflip(x: Tensor, p: float = 0.5, generator: Optional[torch.Generator] = None) -> Tensor:
    """Flip each image left-right with probability p."""
    if p <= 0:
        return x
    gdev = generator.device if generator is not None else x.device
    flip = (torch.rand(x.shape[0], generator=generator, device=gdev) < p).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def cutout(x: Tensor, size: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """Cutout (DeVries & Taylor 2017): zero one size x size square per image, centre uniform, clipped."""
    if size <= 0:
        return x
    n, _, h, w = x.shape
    cy = _randint(h, n, generator, x.device)[:, None, None]
    cx = _randint(w, n, generator, x.device)[:, None, None]
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    lo = size // 2
    inside = (ys >= cy - lo) & (ys < cy - lo + size) & (xs >= cx - lo) & (xs < cx - lo + size)
    return x.masked_fill(inside[:, None], 0)


def normalize(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """uint8 [0, 255] -> float, then (x / 255 - mean) / std per channel."""
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    return x.to(torch.float32, copy=True).div_(255.0).sub_(mean_t).div_(std_t)  # (x / 255 - mean) / std in place
