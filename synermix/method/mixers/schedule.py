"""The mixing schedule of the inter-class term, as timm's Mixup(prob, switch_prob) and mixup_off_epoch: a batch is
mixed with probability `mix_prob` (else L_inter is plain cross-entropy on the augmented view), by the second of two
mixers with probability `switch_prob` (DeiT's MixUp/CutMix alternation), and not at all from epoch `off_epoch`
(0-based) on. The intra-class term is never affected. Draws come first from the step's generator, in order: mix
or not (when mix_prob < 1), which mixer (with two), then the mixer's own draws; so a resumed run draws alike."""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from omegaconf import ListConfig

from synermix.config.checks import Check, is_int, is_num
from synermix.method.mixers import Mix, Mixer, build_mixer

# method.mix_prob, method.switch_prob, method.mix_off_epoch (method.inter's list form is checked by INTER_CHECK)
SCHEDULE_CHECKS = (
    Check(
        "mix_prob",
        lambda v: is_num(v) and 0 <= v <= 1,
        "a probability in [0, 1] (1: every batch is mixed)",
        optional=True,
    ),
    Check(
        "switch_prob",
        lambda v: v is None or (is_num(v) and 0 <= v <= 1),
        "null, or with method.inter=[first, second] the probability in [0, 1] of the second",
        optional=True,
    ),
    Check(
        "mix_off_epoch",
        lambda v: v is None or (is_int(v) and v >= 1),
        "null (never) or the 0-based epoch >= 1 from which batches are not mixed",
        optional=True,
    ),
)


def _uniform(generator: Optional[torch.Generator]) -> float:
    device = generator.device if generator is not None else None
    return float(torch.rand((), generator=generator, device=device))


class MixSchedule:
    """A mixer (see synermix.method.mixers) that mixes some batches with one of `mixers`, and not at all from epoch
    `off_epoch` on (`set_epoch`, called by the trainer's MixingEpoch hook); `draw` returns None for a batch left
    unmixed."""

    def __init__(
        self,
        mixers: Sequence[Mixer],
        mix_prob: float = 1.0,
        switch_prob: Optional[float] = None,
        off_epoch: Optional[int] = None,
    ) -> None:
        if len(mixers) not in (1, 2) or (len(mixers) == 2) != (switch_prob is not None):
            raise ValueError(
                "switch_prob chooses between exactly two mixers (inter=[first, second]); give both or neither."
            )
        self.mixers, self.mix_prob, self.switch_prob = list(mixers), float(mix_prob), switch_prob
        self.off_epoch, self.active = off_epoch, True

    def set_epoch(self, epoch: int) -> None:
        """Mix in `epoch` (0-based) unless it is past mix_off_epoch."""
        self.active = self.off_epoch is None or epoch < self.off_epoch

    def draw(self, labels, generator, batch_shape, mix_points) -> Optional[Mix]:
        """This batch's draw, or None when it is left unmixed."""
        if not self.active or (self.mix_prob < 1 and _uniform(generator) >= self.mix_prob):
            return None
        mixer = self.mixers[0]
        if len(self.mixers) == 2 and _uniform(generator) < float(self.switch_prob or 0.0):
            mixer = self.mixers[1]
        return mixer.draw(labels, generator, batch_shape, mix_points)


def scheduled_mixer(method) -> Optional[Mixer | MixSchedule]:
    """The inter-class mixer of a `method` config group: the plain mixer, or a MixSchedule when method.inter is a
    list or mix_prob / mix_off_epoch ask for one (None for inter=none)."""
    inter, switch = method.inter, method.get("switch_prob")
    names = list(inter) if isinstance(inter, (list, tuple, ListConfig)) else [inter]
    mixers = [build_mixer(name, method.alpha, method.lam_mode) for name in names]
    mix_prob, off = float(method.get("mix_prob", 1.0)), method.get("mix_off_epoch")
    if mixers == [None] or (len(mixers) == 1 and mix_prob == 1 and off is None and switch is None):
        return mixers[0]
    return MixSchedule([m for m in mixers if m is not None], mix_prob, switch, off)
