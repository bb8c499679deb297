"""MixUp (Zhang et al. 2018; the paper's Eq. 3): images mixed with a permuted partner, lam ~ Beta(alpha, alpha)."""

from __future__ import annotations

import torch

from synermix.config.checks import require
from synermix.method.inter import mix, sample_lam
from synermix.method.mixers import MIXUP_CHECKS, Mix


class MixUp:
    """Draws, in order: the partner permutation, lambda (one per batch, or one per sample with lam_mode=elem),
    and the mix point (always "input": one draw from a list of one, kept so every mixer of the paper draws alike)."""

    def __init__(self, alpha: float = 1.0, lam_mode: str = "batch") -> None:
        require(dict(alpha=alpha, lam_mode=lam_mode), MIXUP_CHECKS)
        self.alpha, self.lam_mode = float(alpha), lam_mode

    def points(self, model_points):
        """Where this mixer may mix: the input."""
        return ("input",)

    def partners(self, labels, generator):
        """The partner permutation and lambda, drawn in that order."""
        perm = torch.randperm(labels.shape[0], generator=generator).to(labels.device, non_blocking=True)
        return perm, sample_lam(self.alpha, labels.shape[0], self.lam_mode, generator)

    def draw(self, labels, generator, batch_shape, mix_points) -> Mix:
        """Partner permutation, lambda, and a mix point drawn uniformly from `self.points(mix_points)`."""
        perm, lam = self.partners(labels, generator)
        points = tuple(self.points(mix_points))
        mix_at = points[int(torch.randint(len(points), (1,), generator=generator))]
        return Mix(mix_at, lambda h: mix(h, labels, lam, perm)[0], labels[perm], lam)
