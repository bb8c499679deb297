"""Inter-class mixers: one class per file behind one small protocol, found by name or by `_target_`.

A mixer is drawn once per batch, before any forward: `mixer.draw(labels, generator, batch_shape, mix_points)` returns
a `Mix`, and the loss then runs the augmented view's forward with `Mix.apply` at `Mix.mix_at` and scores the logits
against both label sets:

    L_inter = mean_i  lam_i * CE(logits_i, labels_i) + (1 - lam_i) * CE(logits_i, partner_labels_i)

- draws: only from `generator` (so a run resumed at any step draws what an uninterrupted one does), and in a
  fixed order documented by each mixer;
- `batch_shape`: the augmented view's shape, (N, C, H, W) for images;
- `mix_at`: "input" (the images) or one of the model's `mix_points` (hidden states, Manifold MixUp);
- `apply(hidden)`: the mixed batch at that point, same shape;
- `partner_labels` (N,) and `lam` (a scalar tensor, or (N,) for one weight per sample): the weight of each
  sample's own label.

`method.inter` names a built-in mixer (MIXERS, a synermix.config.registry.Registry) or, as a mapping with `_target_`,
any class with this `draw` (your own module; no edit here); a list of two of either is chosen between by
method.switch_prob. `none` is plain cross-entropy on the augmented view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol, Sequence, Tuple

import torch
from torch import Tensor

from synermix.config.checks import Check, is_num, one_of
from synermix.config.registry import Registry, target_of
from synermix.errors import describe
from synermix.method.inter import LAM_MODES

# name -> "module:Class" of the built-in mixers; `method.inter` takes one of these names or a `_target_` mapping
MIXERS = Registry(
    "inter-class mixer",
    "method.inter",
    {
        "mixup": "synermix.method.mixers.mixup:MixUp",
        "manifold": "synermix.method.mixers.manifold:ManifoldMixUp",
        "cutmix": "synermix.method.mixers.cutmix:CutMix",
        "saliencymix": "synermix.method.mixers.saliencymix:SaliencyMix",
        "resizemix": "synermix.method.mixers.resizemix:ResizeMix",
        "fmix": "synermix.method.mixers.fmix:FMix",
    },
    "method.inter={_target_:my_module.MyMixer,alpha:0.4}",
)


# `method.inter`, and the built-in mixers' own keys (`method.alpha`, `method.lam_mode`)
def _one_mixer(v: Any) -> bool:
    return (isinstance(v, str) and v in MIXERS) or (hasattr(v, "keys") and target_of(v) is not None)


def _inter_ok(v: Any) -> bool:
    if isinstance(v, str) and v == "none":
        return True
    if isinstance(v, str) or hasattr(v, "keys"):
        return _one_mixer(v)
    return len(v) == 2 and all(_one_mixer(m) for m in v)


INTER_CHECK = Check(
    "inter",
    _inter_ok,
    f"one of {['none', *MIXERS.names()]}, a list of two of them (chosen between by "
    "method.switch_prob), or a mapping with _target_ naming your mixer class (synermix.method.mixers), "
    "alone or in such a list",
)
MIXUP_CHECKS = (
    Check("alpha", lambda v: is_num(v) and v > 0, "a number > 0"),
    Check("lam_mode", one_of(LAM_MODES), f"one of {list(LAM_MODES)}"),
)


@dataclass
class Mix:
    """One batch's inter-class draw: where to mix, how, and the partner labels with their weights."""

    mix_at: str
    apply: Callable[[Tensor], Tensor]
    partner_labels: Tensor
    lam: Tensor


class Mixer(Protocol):
    """What the loss needs of an inter-class mixer (see the module docstring)."""

    def draw(
        self,
        labels: Tensor,
        generator: Optional[torch.Generator],
        batch_shape: Tuple[int, ...],
        mix_points: Sequence[str],
    ) -> Mix:
        """This batch's draw (see the module docstring)."""


def mixer_name(spec: Any) -> str:
    """A short name for `method.inter`: the built-in name, or the `_target_` of a mapping."""
    if isinstance(spec, str):
        return spec
    target = spec.get("_target_") if hasattr(spec, "get") else None
    return str(target) if target else type(spec).__name__


def build_mixer(spec: Any, alpha: float = 1.0, lam_mode: str = "batch") -> Optional[Mixer]:
    """The mixer `spec` names: None for "none", a built-in by name (with `alpha`, `lam_mode`), a `_target_` mapping
    instantiated with its own arguments, or a mixer object as it is. ValueError for anything else."""
    if spec is None or (isinstance(spec, str) and spec == "none"):
        return None
    if isinstance(spec, str):
        if spec not in MIXERS:
            raise ValueError(
                f"inter must be 'none', one of {sorted(MIXERS.names())} or a mapping with _target_, got {spec!r}."
            )
        return MIXERS.build(spec, alpha=alpha, lam_mode=lam_mode)
    if hasattr(spec, "get") and spec.get("_target_"):
        from hydra.utils import instantiate  # Hydra: only for an entry of your own (the library needs no Hydra)

        try:
            mixer = instantiate(spec)
        except Exception as exc:  # Hydra wraps the class's own error: name that one
            raise ValueError(
                f"inter={{_target_: {spec.get('_target_')}}} cannot be instantiated ({describe(exc.__cause__ or exc)})."
            ) from None
    else:
        mixer = spec
    if not callable(getattr(mixer, "draw", None)):
        raise ValueError(
            f"inter={mixer_name(spec)!r} made a {type(mixer).__name__}, which has no "
            "draw(labels, generator, batch_shape, mix_points) method (see synermix.method.mixers)."
        )
    return mixer
