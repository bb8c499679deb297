"""Manifold MixUp (Verma et al. 2019; the paper's Eq. 4): MixUp of the hidden states at a mix point drawn per
batch from the model's `mix_points`."""

from __future__ import annotations

from synermix.method.mixers.mixup import MixUp


class ManifoldMixUp(MixUp):
    """MixUp's draws (partner permutation, lambda, mix point), the mix point uniform over the model's points."""

    def points(self, model_points):
        """Every mix point of the model (input and hidden stages)."""
        return tuple(model_points)
