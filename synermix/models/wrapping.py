"""SynerMix in your own training loop: any timm or torchvision classifier as the object SynerMixLoss needs."""

from __future__ import annotations

from typing import Optional, Sequence

from torch import nn

from synermix.models.staged import StagedClassifier
from synermix.models.timm_models import TimmClassifier, default_mix_points


def wrap(model: nn.Module, mix_points: Optional[Sequence[str]] = None) -> nn.Module:
    """`model` (a timm model, or torchvision's ResNet / MobileNetV3 / Swin) as features(x, mix_at, mix_fn) + head
    + mix_points, sharing its modules (its own classifier is the head). Manifold MixUp points: `mix_points`, or
    input + the first two feature stages (timm: from feature_info; torchvision: Sec. 4.1.2's sets)."""
    if isinstance(model, (StagedClassifier, TimmClassifier)):
        return model
    if all(hasattr(model, a) for a in ("forward_features", "forward_head", "get_classifier")):  # timm's API
        return TimmClassifier(model, list(mix_points) if mix_points else default_mix_points(model))
    from synermix.models.torchvision_models import FAMILIES, staged  # torchvision: ~2 s, only for its models

    if isinstance(model, tuple(FAMILIES)):
        wrapped = staged(model)
        if mix_points:
            wrapped = StagedClassifier(list(wrapped.stages.items()), wrapped.head, mix_points)
        return wrapped
    raise TypeError(
        f"synermix.wrap() cannot split a {type(model).__name__} into features and head: it knows timm models and "
        f"torchvision's {', '.join(k.__name__ for k in FAMILIES)}. For another model build "
        "synermix.models.StagedClassifier(stages=[(name, module), ...], head=nn.Linear(...), "
        "mix_points=['input', ...])."
    )
