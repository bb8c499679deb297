"""SynerMix-Intra's term (Eq. 1-2): per class, random convex combinations of the class's penultimate features,
classified by the head. Two strategies compute it: over this process's batch (`LocalIntra`), or under torchrun
over the gathered global batch (`GlobalIntra`), so N processes compute what one process computes."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synermix.config.checks import Check, is_int, require
from synermix.method.draws import uniform

MAX_PER_CLASS_SYNTHESES = 256
INTRA_CHECKS = (
    Check(
        "num_per_class",
        lambda v: is_int(v) and 1 <= v <= MAX_PER_CLASS_SYNTHESES,
        f"an integer in [1, {MAX_PER_CLASS_SYNTHESES}] (synthesized features per class and step)",
    ),
)


def synthesize_per_class(
    features: Tensor,
    membership: Tensor,
    num_per_class: int = 1,
    generator: Optional[torch.Generator] = None,
) -> Tuple[Tensor, Tensor]:
    """Eq. 1 for a fixed list of classes: returns (syn (P, C, D), present (C,) bool).

    `membership` is a (C, N) 0/1 matrix saying which rows belong to which class. Each synthesized
    row is sum_j w_j f_j over the class's rows with w_j = r_j / sum_i r_i, r ~ U(0, 1), computed
    as one batched matmul so there is no loop over classes and no host synchronisation. Rows of
    a class absent from the batch are zero and flagged by `present`.
    """
    if num_per_class < 1:
        raise ValueError(f"num_per_class must be an integer >= 1, got {num_per_class!r}.")
    membership = membership.to(features.dtype)
    r = uniform((num_per_class, 1, features.shape[0]), features, generator)
    raw = membership.unsqueeze(0) * r  # (P, C, N)
    total = raw.sum(dim=-1, keepdim=True)
    present = membership.sum(dim=-1) > 0
    # r is in [0, 1): guard the (measure-zero) all-zero draw and the empty classes alike.
    weights = raw / total.clamp_min(torch.finfo(features.dtype).tiny)
    return weights @ features, present


def intra_class_mixup(
    features: Tensor,
    labels: Tensor,
    num_per_class: int = 1,
    generator: Optional[torch.Generator] = None,
) -> Tuple[Tensor, Tensor]:
    """Eq. 1: `num_per_class` random convex combinations of each present class's feature rows.

    Returns (syn_features (C*P, D), syn_labels (C*P,)), rows sorted by class label ascending,
    the P rows of one class consecutive. A class with a single row yields that row.
    """
    if features.dim() != 2 or labels.dim() != 1 or features.shape[0] != labels.shape[0]:
        raise ValueError(
            f"intra_class_mixup expects features (N, D) and labels (N,), got {tuple(features.shape)}"
            f" and {tuple(labels.shape)}."
        )
    classes = torch.unique(labels, sorted=True)
    membership = labels.unsqueeze(0) == classes.unsqueeze(1)
    syn, _ = synthesize_per_class(features, membership, num_per_class, generator)
    syn = syn.transpose(0, 1).reshape(-1, features.shape[1])
    return syn, classes.repeat_interleave(num_per_class)


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
        logits.flatten(0, 1).float(),
        classes.repeat(num_per_class),
        reduction="none",
        label_smoothing=label_smoothing,
    ).view(num_per_class, -1)
    weight = present.to(ce.dtype)
    return (ce * weight).sum() / (weight.sum() * num_per_class)


class LocalIntra:
    """L_intra of one batch's features, with the loss's generator (Eq. 1-2)."""

    def __init__(self, num_per_class: int = 1, num_classes: Optional[int] = None, label_smoothing: float = 0.0):
        require(dict(num_per_class=num_per_class), INTRA_CHECKS)
        self.num_per_class, self.num_classes, self.label_smoothing = int(num_per_class), num_classes, label_smoothing

    def __call__(self, head: nn.Module, features: Tensor, labels: Tensor, generator, part=None) -> Tensor:
        """L_intra of `features` (N, D) with `labels` (N,) (`part`: only the global strategy uses it)."""
        return intra_class_loss(
            head, features, labels, self.num_per_class, generator, self.num_classes, self.label_smoothing
        )


class GlobalIntra(LocalIntra):
    """L_intra over the global batch under torchrun. Each step the loss passes `part` (the step's
    synermix.train.distributed.GlobalBatch): this process's features are gathered with the others' (its rows keep
    their gradient,
    scaled for DDP's average) and the Eq. 1 weights come from `part.intra_generator`, seeded alike on every
    process, so every process computes the single-process L_intra."""

    def __call__(self, head: nn.Module, features: Tensor, labels: Tensor, generator, part=None) -> Tensor:
        """L_intra of the global batch this process's `features` are a part of (`generator` is not used)."""
        if part is None:
            raise ValueError(
                "GlobalIntra needs the step's part of the global batch (`part`); it is computed under torchrun only."
            )
        gathered, gathered_labels = part.gather(features, labels)
        return super().__call__(head, gathered, gathered_labels, part.intra_generator)
