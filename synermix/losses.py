"""The one SynerMix loss: Eq. 2-8 as presets of three switches (intra, inter, beta)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Protocol, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synermix.mixup import LAM_MODES, cutmix, cutmix_boxes, mix, mixup_cross_entropy, sample_lam, synthesize_per_class

INTRA_CHOICES = ("none", "original", "augmented")
INTER_CHOICES = ("none", "mixup", "manifold", "cutmix")
VIEW_ORDERS = ("original_first", "augmented_first")
# The paper's seven methods as (intra, inter, default beta); configs/method/*.yaml hold the same.
PRESETS = {
    "baseline": ("none", "none", 0.0),  # wo-RA&ER, Eq. 6
    "intra": ("original", "none", 0.5),  # w-RA (SynerMix-Intra), Eq. 8
    "intra_aug": ("augmented", "none", 0.5),  # w-RA(aug), Eq. 7
    "mixup": ("none", "mixup", 0.0),  # w-ER(M), Eq. 3
    "manifold_mixup": ("none", "manifold", 0.0),  # w-ER(MM), Eq. 4
    "synermix": ("original", "mixup", 0.1),  # w-RA&ER(M), Eq. 5
    "synermix_mm": ("original", "manifold", 0.1),  # w-RA&ER(MM), Eq. 5
    "cutmix": ("none", "cutmix", 0.0),  # w-ER(C): CutMix (Yun et al. 2019) as the inter-class mixer
    "synermix_cutmix": ("original", "cutmix", 0.1),  # w-RA&ER(C): Eq. 5 with CutMix
}


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


def intra_class_loss(
    head: nn.Module,
    features: Tensor,
    labels: Tensor,
    num_per_class: int,
    generator: Optional[torch.Generator],
    num_classes: Optional[int] = None,
    label_smoothing: float = 0.0,
) -> Tensor:
    """Eq. 2: mean over the classes present of CE(head(f_syn^c), c), f_syn from Eq. 1 (CE with `label_smoothing`).

    With `num_classes` the classes are 0..K-1 and absent ones are masked out, which needs no
    host synchronisation; without it the classes are `unique(labels)`.
    """
    if num_classes is None:
        classes = torch.unique(labels, sorted=True)
    else:
        classes = torch.arange(num_classes, device=labels.device)
    membership = labels.unsqueeze(0) == classes.unsqueeze(1)
    syn, present = synthesize_per_class(features, membership, num_per_class, generator)
    logits = head(syn)  # (P, C, K)
    ce = F.cross_entropy(
        logits.flatten(0, 1).float(), classes.repeat(num_per_class), reduction="none", label_smoothing=label_smoothing,
    ).view(num_per_class, -1)
    weight = present.to(ce.dtype)
    return (ce * weight).sum() / (weight.sum() * num_per_class)


class SynerMixObjective(nn.Module):
    """A model and its SynerMix loss as one module, so DistributedDataParallel wraps one forward per step."""

    def __init__(self, model: nn.Module, loss_fn: "SynerMixLoss"):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, x_orig: Optional[Tensor], x_aug: Tensor, y: Tensor, generator=None, backward=None,
                global_batch=None):
        """(total, intra or None, inter or None) for one batch; see SynerMixLoss for `backward`, `global_batch`."""
        terms = self.loss_fn(self.model, x_orig, x_aug, y, generator, backward, global_batch)
        return terms.total, terms.intra, terms.inter


class SynerMixLoss:
    """total = beta * L_intra + (1 - beta) * L_inter  (Eq. 5; Eq. 6, 7, 8, 3, 4 as special cases).

    intra: `none` (no L_intra), `original` (Eq. 1-2 on the unaugmented view's features, w-RA) or
    `augmented` (on the augmented view's features, w-RA(aug), Eq. 7).
    inter: `none` (plain CE on the augmented view, L_augment), `mixup` (Eq. 3, mix at the input),
    `manifold` (Eq. 4, one mix point of `model.mix_points` drawn per batch) or `cutmix` (a box of the
    partner image pasted in, lambda = the share of the image left; Yun et al. 2019).
    Random draws, all from `generator` in this order: partner permutation, lambda, then the mix point
    (mixup/manifold) or the box centres (cutmix), then the intra-class weights.
    `label_smoothing` applies to every cross-entropy term (plain, mixed and intra-class).
    `view_order`: `original_first` (the authors' order: the original view's forward and L_intra, then the
    augmented view's and L_inter) or `augmented_first` (the order of runs recorded before it was the default).
    Under torchrun (`global_batch`, a distributed.GlobalBatch): L_intra is computed over the global batch's
    gathered features with the generator every process shares, L_inter over this process's part (partners
    within the part), weighted by the part's share, so DDP's gradient average is the single-process gradient.
    `concat_views`: run the original and augmented views as one forward of 2N images (only the
    augmented half is mixed). Same draws and equations; BatchNorm then normalises over both views.
    """

    def __init__(
        self,
        intra: str = "original",
        inter: str = "mixup",
        beta: float = 0.1,
        alpha: float = 1.0,
        lam_mode: str = "batch",
        num_per_class: int = 1,
        num_classes: Optional[int] = None,
        concat_views: bool = False,
        label_smoothing: float = 0.0,
        view_order: str = "original_first",
    ) -> None:
        if intra not in INTRA_CHOICES:
            raise ValueError(f"intra must be one of {INTRA_CHOICES}, got {intra!r}.")
        if inter not in INTER_CHOICES:
            raise ValueError(f"inter must be one of {INTER_CHOICES}, got {inter!r}.")
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must lie in [0, 1], got {beta!r}.")
        if intra == "none" and beta != 0:
            raise ValueError(f"beta={beta} weights an intra-class loss that intra='none' disables; use beta=0.")
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}.")
        if lam_mode not in LAM_MODES:
            raise ValueError(f"lam_mode must be one of {LAM_MODES}, got {lam_mode!r}.")
        if num_per_class < 1:
            raise ValueError(f"num_per_class must be an integer >= 1, got {num_per_class!r}.")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing!r}.")
        if view_order not in VIEW_ORDERS:
            raise ValueError(f"view_order must be one of {VIEW_ORDERS}, got {view_order!r}.")
        self.intra, self.inter, self.beta = intra, inter, float(beta)
        self.alpha, self.lam_mode = float(alpha), lam_mode
        self.num_per_class, self.num_classes = int(num_per_class), num_classes
        self.concat_views, self.label_smoothing = bool(concat_views), float(label_smoothing)
        self.view_order = view_order

    @classmethod
    def from_cfg(cls, method, num_classes: Optional[int] = None, concat_views: bool = False,
                 label_smoothing: float = 0.0, view_order: str = "original_first") -> "SynerMixLoss":
        """The loss a `method` config group describes (intra, inter, beta, alpha, lam_mode, num_per_class)."""
        return cls(method.intra, method.inter, method.beta, method.alpha, method.lam_mode, method.num_per_class,
                   num_classes, concat_views=concat_views, label_smoothing=label_smoothing, view_order=view_order)

    def intra_loss(self, head: nn.Module, features: Tensor, labels: Tensor, generator) -> Tensor:
        """L_intra of one batch's features (Eq. 1-2); a subclass may compute it another way."""
        return intra_class_loss(head, features, labels, self.num_per_class, generator, self.num_classes,
                                self.label_smoothing)

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
        return self.uses_intra and self.intra == "original"

    def _draw_mix(self, model, y: Tensor, generator, image_size: Sequence[int]):
        """(mix point or None, mixing function, partner labels, lambda): the inter-class draws of one batch."""
        if self.inter == "none":
            return None, None, None, None
        perm = torch.randperm(y.shape[0], generator=generator).to(y.device, non_blocking=True)
        lam = sample_lam(self.alpha, y.shape[0], self.lam_mode, generator)
        if self.inter == "cutmix":  # lambda becomes the share of the image outside the (clipped) box
            boxes, lam = cutmix_boxes(image_size[0], image_size[1], lam, generator)
            return "input", (lambda x: cutmix(x, perm, boxes)), y[perm], lam
        points = ("input",) if self.inter == "mixup" else tuple(model.mix_points)
        mix_at = points[int(torch.randint(len(points), (1,), generator=generator))]
        return mix_at, (lambda h: mix(h, y, lam, perm)[0]), y[perm], lam

    def _inter_from_features(self, model, feats: Tensor, y: Tensor, y_b, lam) -> Tensor:
        """L_inter from the (mixed or plain) augmented-view features."""
        logits = model.head(feats)
        if lam is None:
            return F.cross_entropy(logits.float(), y, label_smoothing=self.label_smoothing)
        return mixup_cross_entropy(logits, y, y_b, lam, self.label_smoothing)

    def _shares_graph(self, mix_at) -> bool:
        """Whether both terms come from one forward (then one backward): concat_views, or L_intra on the
        augmented view next to a plain (unmixed) L_inter."""
        if not (self.uses_intra and self.uses_inter):
            return False
        return (self.concat_views and self.needs_original) or (self.intra == "augmented" and mix_at is None)

    def __call__(
        self,
        model: MixableClassifier,
        x_orig: Optional[Tensor],
        x_aug: Tensor,
        y: Tensor,
        generator: Optional[torch.Generator] = None,
        backward: Optional[Callable[[Tensor], None]] = None,
        global_batch=None,
    ) -> LossTerms:
        """Compute the loss of one (supplemented) mini-batch; `x_orig` is needed only for intra='original'.

        The two forwards run in `view_order`: by default the original view and L_intra first, then the
        augmented view and L_inter, as the authors' code does (BatchNorm's running statistics depend on it).
        With `backward` (e.g. `Tensor.backward`), each weighted term is back-propagated as soon as it
        is computed, so only one view's graph is alive at a time (less memory, faster on CPU); the
        gradients are those of the total, which is then returned detached.
        """
        if self.needs_original and x_orig is None:
            raise ValueError("intra='original' needs the unaugmented view x_orig.")
        if self.inter == "cutmix" and x_aug.dim() != 4:
            raise ValueError(f"inter='cutmix' needs image batches (N, C, H, W); got shape {tuple(x_aug.shape)}.")
        mix_at, mix_fn, y_b, lam = (self._draw_mix(model, y, generator, x_aug.shape[-2:]) if self.uses_inter
                                    else (None,) * 4)
        feats: dict = {}  # "original" / "augmented" (unmixed) / "mixed" features computed so far
        if self.concat_views and self.needs_original and self.uses_inter:
            # One forward of the 2N batch [original; augmented], mixing only the augmented half.
            n = y.shape[0]
            both_fn = None if mix_fn is None else (lambda h: torch.cat((h[:n], mix_fn(h[n:]))))
            both = model.features(torch.cat((x_orig, x_aug)), mix_at=mix_at, mix_fn=both_fn)
            feats["original"], feats["augmented" if mix_at is None else "mixed"] = both[:n], both[n:]

        def view(name: str) -> Tensor:
            if name not in feats:
                if name == "mixed":
                    feats[name] = model.features(x_aug, mix_at=mix_at, mix_fn=mix_fn)
                else:
                    feats[name] = model.features(x_orig if name == "original" else x_aug)
            return feats[name]

        def intra_term() -> Tensor:
            f = view(self.intra)
            if global_batch is None:
                return self.intra_loss(model.head, f, y, generator)
            return self.intra_loss(model.head, *global_batch.gather(f, y), global_batch.intra_generator)

        def inter_term() -> Tensor:
            loss = self._inter_from_features(model, view("augmented" if mix_at is None else "mixed"), y, y_b, lam)
            # under torchrun the processes' mean of this is the global batch's mean
            return loss if global_batch is None else loss * global_batch.share

        terms = {}
        order = ("intra", "inter") if self.view_order == "original_first" else ("inter", "intra")
        shared = self._shares_graph(mix_at)
        total = x_aug.new_zeros((), dtype=torch.float32)
        for name in order:
            if not (self.uses_intra if name == "intra" else self.uses_inter):
                continue
            terms[name] = intra_term() if name == "intra" else inter_term()
            weighted = (self.beta if name == "intra" else 1 - self.beta) * terms[name]
            if backward is not None and not shared:
                backward(weighted)
                weighted = weighted.detach()
            total = total + weighted
        if backward is not None and total.requires_grad:
            backward(total)  # terms that share one graph
            total = total.detach()
        return LossTerms(
            total=total,
            intra=terms["intra"].detach() if "intra" in terms else None,
            inter=terms["inter"].detach() if "inter" in terms else None,
        )
