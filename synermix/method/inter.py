"""Inter-class MixUp / Manifold MixUp (Eq. 3-4) / CutMix."""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

LAM_MODES = ("batch", "elem")


def sample_lam(
    alpha: float,
    batch_size: int,
    lam_mode: str,
    generator: torch.Generator,
) -> Tensor:
    """Draw MixUp coefficients from Beta(alpha, alpha): shape () for `batch`, (batch_size,) for `elem`."""
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha!r}.")
    if lam_mode not in LAM_MODES:
        raise ValueError(f"lam_mode must be one of {LAM_MODES}, got {lam_mode!r}.")
    # torch's Beta sampler cannot take a Generator; a seed drawn from ours keeps one RNG in charge.
    seed = int(torch.randint(0, 2**63 - 1, (1,), generator=generator))
    size = None if lam_mode == "batch" else batch_size
    return torch.as_tensor(np.random.default_rng(seed).beta(alpha, alpha, size=size), dtype=torch.float32)


class _PermuteRows(torch.autograd.Function):
    """x[perm] for a permutation: its backward gathers with the inverse permutation instead of
    scatter-adding (about twice as fast on large hidden states)."""

    @staticmethod
    def forward(ctx, x: Tensor, perm: Tensor) -> Tensor:
        inverse = torch.empty_like(perm)
        inverse[perm] = torch.arange(perm.numel(), device=perm.device)
        ctx.save_for_backward(inverse)
        return x[perm]

    @staticmethod
    def backward(ctx, grad: Tensor):
        (inverse,) = ctx.saved_tensors
        return grad[inverse], None


def mix(x: Tensor, y: Tensor, lam: Tensor, perm: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Mix_lam(x, x[perm]) = lam * x + (1 - lam) * x[perm]; returns (mixed, y_a, y_b).

    `lam` is a scalar tensor (one coefficient per batch) or a (N,) tensor (one per pair),
    broadcast over the remaining dimensions of `x` (images or hidden states alike). `perm` must be
    a permutation of the batch.
    """
    lam = lam.to(device=x.device, dtype=x.dtype, non_blocking=True)
    if lam.dim() == 1:
        lam = lam.view(-1, *([1] * (x.dim() - 1)))
    mixed = torch.lerp(_PermuteRows.apply(x, perm), x, lam)  # = lam * x + (1 - lam) * x[perm]
    return mixed, y, y[perm]


def cutmix_box(height: int, width: int, lam: Tensor, cy: Tensor, cx: Tensor) -> Tuple[Tensor, Tensor]:
    """The CutMix boxes around centres (cy, cx): sides int(sqrt(1 - lambda) * side), clipped to the image (as
    timm's `rand_bbox`); returns (boxes (K, 4) as y0, y1, x0, x1; lambda = 1 - box area / image area, (K,))."""
    ratio = torch.sqrt(1 - lam.reshape(-1).double())
    cut_h, cut_w = (height * ratio).long(), (width * ratio).long()  # truncated, as the reference code's int()
    y0, y1 = (cy - cut_h // 2).clamp(0, height), (cy + (cut_h + 1) // 2).clamp(0, height)
    x0, x1 = (cx - cut_w // 2).clamp(0, width), (cx + (cut_w + 1) // 2).clamp(0, width)
    kept = 1 - ((y1 - y0) * (x1 - x0)).double() / (height * width)
    return torch.stack((y0, y1, x0, x1), dim=1), kept.to(torch.float32)


def cutmix_boxes(height: int, width: int, lam: Tensor, generator: Optional[torch.Generator]) -> Tuple[Tensor, Tensor]:
    """CutMix (Yun et al. 2019): for each lambda of `lam` (shape () for one box per batch, (N,) for one per
    sample) a box around a centre drawn uniformly from `generator` (rows, then columns); lambda recomputed
    from the clipped box. Returns (boxes (K, 4), lambda shaped as `lam`)."""
    k = lam.numel()
    cy = torch.randint(0, height, (k,), generator=generator)
    cx = torch.randint(0, width, (k,), generator=generator)
    boxes, kept = cutmix_box(height, width, lam, cy, cx)
    return boxes, kept.reshape(lam.shape)


def cutmix(x: Tensor, perm: Tensor, boxes: Tensor) -> Tensor:
    """x with each box (one for the batch, or one per row) pasted from x[perm]; boxes from `cutmix_boxes`."""
    boxes = boxes.to(x.device, non_blocking=True)
    rows = torch.arange(x.shape[-2], device=x.device).view(1, -1, 1)
    cols = torch.arange(x.shape[-1], device=x.device).view(1, 1, -1)
    y0, y1, x0, x1 = (boxes[:, i].view(-1, 1, 1) for i in range(4))
    inside = (rows >= y0) & (rows < y1) & (cols >= x0) & (cols < x1)  # (K, H, W)
    return torch.where(inside.unsqueeze(1), _PermuteRows.apply(x, perm), x)


def mixup_cross_entropy(logits: Tensor, y_a: Tensor, y_b: Tensor, lam: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Mean over the batch of lam_i * CE(logits_i, y_a_i) + (1 - lam_i) * CE(logits_i, y_b_i) (each CE with
    `label_smoothing`)."""
    lam = lam.to(device=logits.device, dtype=torch.float32, non_blocking=True)
    ce_a = F.cross_entropy(logits.float(), y_a, reduction="none", label_smoothing=label_smoothing)
    ce_b = F.cross_entropy(logits.float(), y_b, reduction="none", label_smoothing=label_smoothing)
    return (lam * ce_a + (1 - lam) * ce_b).mean()
