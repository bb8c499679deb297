"""A classifier split into named stages, a penultimate feature vector and one linear head."""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple

from torch import Tensor, nn

INPUT = "input"


class StagedClassifier(nn.Module):
    """Run `stages` in order to get the head's input; Manifold MixUp mixes after a named stage.

    `mix_points` is the set S of Sec. 4.1.2: `"input"` (the image, i.e. plain MixUp) and/or names
    of stages whose output may be mixed, drawn uniformly (a point listed twice is drawn twice as often).
    The last stage must return (N, D) features.
    """

    def __init__(self, stages: Sequence[Tuple[str, nn.Module]], head: nn.Linear, mix_points: Sequence[str]):
        super().__init__()
        self.stages = nn.ModuleDict(dict(stages))
        self.head = head
        unknown = [p for p in mix_points if p != INPUT and p not in self.stages]
        if unknown or not mix_points:
            raise ValueError(
                f"mix_points {list(mix_points)} must be a non-empty subset of "
                f"{[INPUT, *self.stages.keys()]}; unknown: {unknown}."
            )
        self.mix_points = tuple(mix_points)

    def features(
        self, x: Tensor, mix_at: Optional[str] = None, mix_fn: Optional[Callable[[Tensor], Tensor]] = None
    ) -> Tensor:
        """Penultimate features of `x`; with `mix_at`, `mix_fn` is applied to that point's output."""
        if mix_at is not None and mix_at not in self.mix_points:
            raise ValueError(f"mix_at={mix_at!r} is not one of this model's mix points {self.mix_points}.")
        if mix_at is not None and mix_fn is None:
            raise ValueError(f"mix_at={mix_at!r} needs the mix_fn to apply there.")
        if mix_at == INPUT and mix_fn is not None:
            x = mix_fn(x)
        for name, stage in self.stages.items():
            x = stage(x)
            if name == mix_at and mix_fn is not None:
                x = mix_fn(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        """Class logits."""
        return self.head(self.features(x))
