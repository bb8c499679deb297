"""The one SynerMix loss: Eq. 5 (and Eq. 2-8 as its presets) from a model, the two views, labels and a generator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterator, NamedTuple, Optional, Protocol, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synermix.config.checks import NAME, Check, is_num, one_of, require
from synermix.errors import ConfigError
from synermix.method.inter import mixup_cross_entropy
from synermix.method.intra import INTRA_CHECKS, LocalIntra
from synermix.method.mixers import INTER_CHECK, MIXUP_CHECKS, build_mixer
from synermix.method.mixers.schedule import SCHEDULE_CHECKS

INTRA_CHOICES = ("none", "original", "augmented")
VIEW_ORDERS = ("original_first", "augmented_first")
# The loss's switches (`method.intra`, `method.beta`) ...
LOSS_CHECKS = (
    Check("intra", one_of(INTRA_CHOICES), f"one of {list(INTRA_CHOICES)}"),
    Check("beta", lambda v: is_num(v) and 0 <= v <= 1, "a number in [0, 1]"),
)
# ... and its training options (`train.label_smoothing`, `train.view_order`)
TRAIN_LOSS_CHECKS = (
    Check(
        "label_smoothing",
        lambda v: is_num(v) and 0 <= v < 1,
        "a number in [0, 1) (0: hard targets, the paper's setting)",
        optional=True,
    ),
    Check(
        "view_order",
        one_of(VIEW_ORDERS),
        f"one of {list(VIEW_ORDERS)} (original_first: the authors' order)",
        optional=True,
    ),
)
# The `method` config group: the loss's switches, its mixer's and L_intra's, the preset's name and beta grid
METHOD_CHECKS = (
    Check(
        "name",
        lambda v: isinstance(v, str) and NAME.match(v) is not None,
        "a name of letters, digits, '_', '.', '+', '-' (it names a folder)",
    ),
    *LOSS_CHECKS,
    INTER_CHECK,
    *MIXUP_CHECKS,
    *SCHEDULE_CHECKS,
    *INTRA_CHECKS,
    Check(
        "beta_grid", lambda v: all(is_num(b) and 0 <= b <= 1 for b in v), "a list of numbers in [0, 1]", optional=True
    ),
)


class MixableClassifier(Protocol):
    """What the loss needs of a model: penultimate features with an optional mix point, and a head."""

    head: nn.Module
    mix_points: Sequence[str]

    def features(self, x: Tensor, mix_at: Optional[str] = None, mix_fn=None) -> Tensor: ...


@dataclass
class LossTerms:
    """The differentiable total loss and the detached terms it was made of (None when not computed)."""

    total: Tensor
    intra: Optional[Tensor]
    inter: Optional[Tensor]


class Term(NamedTuple):
    """One term of Eq. 5: its name (`intra` or `inter`), its weight (beta or 1 - beta) and its differentiable value."""

    name: str
    weight: float
    value: Tensor


def uses_original_view(intra: str, beta: float) -> bool:
    """Whether a method with these switches needs the unaugmented view (L_intra on it, with a non-zero weight)."""
    return intra == "original" and beta > 0


class SynerMixLoss:
    """total = beta * L_intra + (1 - beta) * L_inter  (Eq. 5; Eq. 6, 7, 8, 3, 4 as special cases).

    intra: `none` (no L_intra), `original` (Eq. 1-2 on the unaugmented view's features, w-RA) or `augmented`
    (on the augmented view's features, w-RA(aug), Eq. 7). inter: `none` (plain CE on the augmented view,
    L_augment), a mixer name (`mixup` Eq. 3, `manifold` Eq. 4, `cutmix`; lambda ~ Beta(1, 1), one per batch), a
    mixer object (e.g. `synermix.method.mixers.mixup.MixUp(alpha=0.4, lam_mode="elem")`) or a `_target_` mapping.
    Random draws, all from `generator`: the mixer's (partner permutation, lambda, mix point or
    boxes), then the intra-class weights. `label_smoothing` applies to every cross-entropy term.
    `view_order`: `original_first` (the authors' order: the original view's forward and L_intra, then the augmented
    view's and L_inter) or `augmented_first` (the order of runs recorded before it was the default).
    `intra_term`: how L_intra is computed from features (default: synermix.method.intra.LocalIntra over this batch).
    """

    def __init__(
        self,
        intra: str = "original",
        inter="mixup",
        beta: float = 0.1,
        num_per_class: int = 1,
        num_classes: Optional[int] = None,
        label_smoothing: float = 0.0,
        view_order: str = "original_first",
        intra_term=None,
    ) -> None:
        require(
            dict(intra=intra, beta=beta, label_smoothing=label_smoothing, view_order=view_order),
            (*LOSS_CHECKS, *TRAIN_LOSS_CHECKS),
        )
        if intra == "none" and beta != 0:
            raise ValueError(f"beta={beta} weights an intra-class loss that intra='none' disables; use beta=0.")
        self.intra, self.beta, self.view_order, self.label_smoothing = intra, float(beta), view_order, label_smoothing
        self.mixer = build_mixer(inter)
        self.intra_term = intra_term or LocalIntra(num_per_class, num_classes, label_smoothing)

    @property
    def uses_intra(self) -> bool:
        """Whether L_intra is computed (an intra source is set and beta > 0)."""
        return self.intra != "none" and self.beta > 0

    @property
    def uses_inter(self) -> bool:
        """Whether L_inter is computed (its weight 1 - beta is non-zero, or nothing else is)."""
        return self.beta < 1 or not self.uses_intra

    @property
    def needs_original(self) -> bool:
        """Whether the unaugmented view must be provided."""
        return uses_original_view(self.intra, self.beta)

    @property
    def shares_graph(self) -> bool:
        """Whether both terms come from one forward (L_intra on the augmented view next to an unmixed L_inter), so
        they are back-propagated together."""
        return self.uses_intra and self.uses_inter and self.intra == "augmented" and self.mixer is None

    def terms(
        self,
        model: MixableClassifier,
        x_orig: Optional[Tensor],
        x_aug: Tensor,
        y: Tensor,
        generator: Optional[torch.Generator] = None,
        part: Any = None,
    ) -> Iterator[Term]:
        """The terms of one (supplemented) batch in `view_order`, each computed when it is asked for (so a caller
        can back-propagate one before the other's forward); `x_orig` is needed only for intra='original'; `part`:
        under torchrun, this process's part of the step's global batch (GlobalIntra's L_intra gathers it)."""
        if self.needs_original and x_orig is None:
            raise ValueError("intra='original' needs the unaugmented view x_orig.")
        mix = None
        if self.uses_inter and self.mixer is not None:
            mix = self.mixer.draw(y, generator, tuple(x_aug.shape), tuple(model.mix_points))
            if mix is not None and mix.mix_at not in model.mix_points:
                raise ConfigError(
                    f"The mixer {type(self.mixer).__name__} (method.inter) chose the mix point {mix.mix_at!r}, which "
                    f"the model does not have: its mix points are {list(model.mix_points)} (model.mix_points). A "
                    "mixer's draw() must pick one of the mix_points it is given."
                )
        views: Dict[str, Tensor] = {}  # the augmented view's unmixed features, shared by both terms

        def view(x: Tensor, name: str) -> Tensor:
            if name not in views:
                views[name] = model.features(x)
            return views[name]

        order = ("intra", "inter") if self.view_order == "original_first" else ("inter", "intra")
        for name in order:
            if name == "intra" and self.uses_intra:
                original = self.intra == "original" and x_orig is not None  # needs_original: checked above
                features = view(x_orig, "original") if original and x_orig is not None else view(x_aug, "augmented")
                yield Term("intra", self.beta, self.intra_term(model.head, features, y, generator, part))
            elif name == "inter" and self.uses_inter:
                yield Term("inter", 1 - self.beta, self._inter(model, x_aug, y, mix, view))

    def _inter(self, model, x_aug: Tensor, y: Tensor, mix, view) -> Tensor:
        """L_inter: plain cross-entropy of the augmented view, or the mixed one's (Eq. 3, 4)."""
        if mix is None:  # a batch a mixing schedule leaves unmixed gets its own forward (L_intra's may be freed)
            features = view(x_aug, "augmented") if self.mixer is None else model.features(x_aug)
            return F.cross_entropy(model.head(features).float(), y, label_smoothing=self.label_smoothing)
        logits = model.head(model.features(x_aug, mix_at=mix.mix_at, mix_fn=mix.apply))
        return mixup_cross_entropy(logits, y, mix.partner_labels, mix.lam, self.label_smoothing)

    def __call__(
        self,
        model: MixableClassifier,
        x_orig: Optional[Tensor],
        x_aug: Tensor,
        y: Tensor,
        generator: Optional[torch.Generator] = None,
    ) -> LossTerms:
        """The loss of one (supplemented) batch: the differentiable total and the detached terms."""
        total, values = x_aug.new_zeros((), dtype=torch.float32), {}
        for term in self.terms(model, x_orig, x_aug, y, generator):
            values[term.name] = term.value.detach()
            total = total + term.weight * term.value
        return LossTerms(total, values.get("intra"), values.get("inter"))
