"""FMix (Harris et al. 2020), written from the paper: a binary mask from low-frequency Fourier noise (the spectrum
of Gaussian noise scaled by 1 / frequency^decay_power), its top-lambda share of pixels set to 1; the mixed image
is the sample where the mask is 1 and its partner elsewhere, so lambda is exactly the mask's share."""

from __future__ import annotations

import torch
from torch import Tensor

from synermix.config.checks import Check, is_num, one_of, require
from synermix.method.inter import _PermuteRows, sample_lam
from synermix.method.mixers import Mix

FMIX_CHECKS = (
    Check("alpha", lambda v: is_num(v) and v > 0, "a number > 0"),
    Check("lam_mode", one_of(("batch",)), "batch (one mask per batch, as the paper)"),
    Check("decay_power", lambda v: is_num(v) and v > 0, "a number > 0 (the paper's delta; 3 by default)"),
)


def fourier_noise(height: int, width: int, decay_power: float, generator) -> Tensor:
    """Low-frequency grey noise (height, width): Gaussian real and imaginary parts over the rfft frequencies, scaled
    by 1 / max(|f|, 1 / max(height, width))^decay_power, transformed back."""
    fy = torch.fft.fftfreq(height, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(width, dtype=torch.float64)[None, :]
    freqs = torch.sqrt(fy**2 + fx**2)
    scale = 1.0 / freqs.clamp_min(1.0 / max(height, width)) ** decay_power
    parts = torch.randn(2, height, width // 2 + 1, generator=generator, dtype=torch.float64)
    spectrum = torch.complex(parts[0], parts[1]) * scale
    return torch.fft.irfft2(spectrum, s=(height, width))


def binary_mask(noise: Tensor, lam: float) -> Tensor:
    """1 at the round(lam * pixels) largest values of `noise`, 0 elsewhere (bool, the noise's shape)."""
    flat = noise.flatten()
    ones = int(round(float(lam) * flat.numel()))
    mask = torch.zeros(flat.numel(), dtype=torch.bool)
    mask[torch.argsort(flat, descending=True, stable=True)[:ones]] = True
    return mask.view(noise.shape)


class FMix:
    """Draws, in order: the partner permutation, lambda ~ Beta(alpha, alpha) (one per batch), the Fourier noise.
    The batch keeps its own pixels where the mask is 1; `Mix.lam` is the mask's share (lambda to one pixel)."""

    def __init__(self, alpha: float = 1.0, lam_mode: str = "batch", decay_power: float = 3.0) -> None:
        require(dict(alpha=alpha, lam_mode=lam_mode, decay_power=decay_power), FMIX_CHECKS)
        self.alpha, self.decay_power = float(alpha), float(decay_power)

    def draw(self, labels, generator, batch_shape, mix_points) -> Mix:
        """Partner permutation, lambda and the mask."""
        if len(batch_shape) != 4:
            raise ValueError(f"inter='fmix' needs image batches (N, C, H, W); got shape {tuple(batch_shape)}.")
        perm = torch.randperm(labels.shape[0], generator=generator).to(labels.device, non_blocking=True)
        lam = sample_lam(self.alpha, labels.shape[0], "batch", generator)
        mask = binary_mask(fourier_noise(batch_shape[-2], batch_shape[-1], self.decay_power, generator), float(lam))
        share = mask.double().mean().to(torch.float32)

        def apply(x: Tensor) -> Tensor:
            return torch.where(mask.to(x.device, non_blocking=True), x, _PermuteRows.apply(x, perm))

        return Mix("input", apply, labels[perm], share)
