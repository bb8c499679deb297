"""Batched image augmentations on uint8/float tensors (N, C, H, W): crop, flip, cutout, normalise, random erasing.

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


def _uniform(n: int, generator: Optional[torch.Generator], device) -> Tensor:
    gdev = generator.device if generator is not None else device
    return torch.rand(n, generator=generator, device=gdev).to(device)


def random_erasing(
    x: Tensor, p: float, generator: Optional[torch.Generator] = None, scale=(0.02, 0.33), ratio=(0.3, 3.3)
) -> Tensor:
    """Random erasing (Zhong et al. 2020) on normalised images, batched: with probability p an image gets one
    rectangle of area share ~ U(scale) and aspect ratio log-uniform in `ratio` (sides clipped to the image) at a
    uniform position, set to 0 (the mean colour, torchvision's default value). Draws, in order: erase or not, area,
    log-ratio, top, left (one each per image)."""
    if p <= 0:
        return x
    n, _, h, w = x.shape
    erase = _uniform(n, generator, x.device) < p
    area = h * w * (scale[0] + (scale[1] - scale[0]) * _uniform(n, generator, x.device))
    log_lo, log_hi = torch.log(torch.tensor(ratio[0])), torch.log(torch.tensor(ratio[1]))
    aspect = torch.exp(log_lo + (log_hi - log_lo) * _uniform(n, generator, x.device))
    eh = torch.sqrt(area * aspect).round().clamp(1, h)
    ew = torch.sqrt(area / aspect).round().clamp(1, w)
    top = (_uniform(n, generator, x.device) * (h - eh + 1)).floor()
    left = (_uniform(n, generator, x.device) * (w - ew + 1)).floor()
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = (
        (ys >= top[:, None, None])
        & (ys < (top + eh)[:, None, None])
        & (xs >= left[:, None, None])
        & (xs < (left + ew)[:, None, None])
        & erase[:, None, None]
    )
    return x.masked_fill(inside[:, None], 0)


def normalize(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """uint8 [0, 255] -> float, then (x / 255 - mean) / std per channel."""
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    return x.to(torch.float32, copy=True).div_(255.0).sub_(mean_t).div_(std_t)  # (x / 255 - mean) / std in place
