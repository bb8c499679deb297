"""ResizeMix (Qin et al. 2020): the whole partner image shrunk into a box pasted at a random place; lambda is the
share of the image left (1 - box area / image area)."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from synermix.config.checks import Check, is_num, one_of, require
from synermix.method.inter import _PermuteRows
from synermix.method.mixers import Mix

RESIZEMIX_CHECKS = (
    Check(
        "scale",
        lambda v: len(v) == 2 and all(is_num(s) and 0 < s <= 1 for s in v) and v[0] <= v[1],
        "[low, high] with 0 < low <= high <= 1 (the box's side as a share of the image's)",
    ),
    Check("lam_mode", one_of(("batch",)), "batch (one box per batch, as the paper's code)"),
)


class ResizeMix:
    """Draws, in order: the partner permutation, the scale tau ~ U(scale) (one per batch), the box's top row and
    left column (uniform, the box inside the image). Box sides max(1, int(tau * side)); the partner batch is
    resized to it (bilinear, antialiased). `alpha` is accepted for the common mixer signature and not used: lambda
    comes from the box."""

    def __init__(self, alpha: float = 1.0, lam_mode: str = "batch", scale: Sequence[float] = (0.1, 0.8)) -> None:
        require(dict(scale=list(scale), lam_mode=lam_mode), RESIZEMIX_CHECKS)
        self.scale = (float(scale[0]), float(scale[1]))

    def draw(self, labels, generator, batch_shape, mix_points) -> Mix:
        """Partner permutation, scale and place of the box."""
        if len(batch_shape) != 4:
            raise ValueError(f"inter='resizemix' needs image batches (N, C, H, W); got shape {tuple(batch_shape)}.")
        perm = torch.randperm(labels.shape[0], generator=generator).to(labels.device, non_blocking=True)
        low, high = self.scale
        tau = low + (high - low) * float(torch.rand((), generator=generator))
        height, width = batch_shape[-2], batch_shape[-1]
        bh, bw = max(1, int(height * tau)), max(1, int(width * tau))
        top = int(torch.randint(0, height - bh + 1, (), generator=generator))
        left = int(torch.randint(0, width - bw + 1, (), generator=generator))

        def apply(x: Tensor) -> Tensor:
            small = F.interpolate(
                _PermuteRows.apply(x, perm), size=(bh, bw), mode="bilinear", align_corners=False, antialias=True
            )
            return F.pad(small, (left, width - left - bw, top, height - top - bh)) + x * _outside(x, top, left, bh, bw)

        lam = torch.tensor(1.0 - bh * bw / (height * width), dtype=torch.float32)
        return Mix("input", apply, labels[perm], lam)


def _outside(x: Tensor, top: int, left: int, bh: int, bw: int) -> Tensor:
    """1 outside the box, 0 inside, shaped (1, 1, H, W) for x."""
    mask = torch.ones(1, 1, x.shape[-2], x.shape[-1], dtype=x.dtype, device=x.device)
    mask[..., top : top + bh, left : left + bw] = 0
    return mask
