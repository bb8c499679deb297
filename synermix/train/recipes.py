"""Training recipes: the optimizer (SGD, AdamW) and learning-rate schedule (step, multistep, cosine; linear warmup,
a floor) a run's `train` group names, built from torch's optimizers and schedulers so a checkpoint restores them
exactly. The defaults are the paper's Table 1: SGD with momentum and StepLR."""

from __future__ import annotations

from typing import Any, List, Tuple

import torch
from torch import nn
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    LambdaLR,
    LinearLR,
    LRScheduler,
    MultiStepLR,
    SequentialLR,
    StepLR,
)

from synermix.config.checks import Check, is_bool, is_int, is_num, one_of

OPTIMIZERS = ("sgd", "adamw")
SCHEDULERS = ("step", "multistep", "cosine")


def recipe_checks(epochs: Any, warmup_epochs: Any) -> tuple:
    """The checks of the `train` group's recipe keys (warmup and milestones bounded by train.epochs)."""
    bound = epochs if is_int(epochs) else None
    warmup = warmup_epochs if is_int(warmup_epochs) else 0
    below_epochs = lambda v: bound is None or v < bound  # noqa: E731
    return (
        Check("optimizer", one_of(OPTIMIZERS), f"one of {list(OPTIMIZERS)}"),
        Check(
            "betas",
            lambda v: len(v) == 2 and all(is_num(b) and 0 <= b < 1 for b in v),
            "two numbers in [0, 1) (AdamW's beta1, beta2)",
        ),
        Check("eps", lambda v: is_num(v) and v > 0, "a number > 0"),
        Check(
            "decay_norm_and_bias",
            is_bool,
            "true (weight decay on every parameter) or false (not on norm "
            "and bias parameters: every parameter of one dimension, and every .bias)",
        ),
        Check("scheduler", one_of(SCHEDULERS), f"one of {list(SCHEDULERS)}"),
        Check(
            "milestones",
            lambda v: (
                all(is_int(m) and warmup < m for m in v)
                and list(v) == sorted(set(v))
                and all(below_epochs(m) for m in v)
            ),
            f"increasing epochs in (train.warmup_epochs={warmup}, train.epochs={epochs}) (multistep: lr *= "
            "gamma at each)",
        ),
        Check(
            "warmup_epochs",
            lambda v: is_int(v) and v >= 0 and below_epochs(v),
            f"an integer in [0, train.epochs={epochs}) (0: no warmup)",
        ),
        Check(
            "warmup_start_factor",
            lambda v: is_num(v) and 0 < v <= 1,
            "a number in (0, 1] (the first warmup step's share of train.lr)",
        ),
        Check("min_lr", lambda v: is_num(v) and v >= 0, "a number >= 0 (the learning rate's floor)"),
        Check("clip_grad_norm", lambda v: v is None or (is_num(v) and v > 0), "null (off) or a number > 0"),
    )


def build_optimizer(model: nn.Module, t) -> torch.optim.Optimizer:
    """train.optimizer over the model's parameters; train.decay_norm_and_bias=false puts norm and bias parameters
    in a group without weight decay (timm's param_groups_weight_decay)."""
    params: Any = model.parameters()
    if not t.decay_norm_and_bias:
        from timm.optim import param_groups_weight_decay  # timm: ~1 s, only runs that use it

        params = param_groups_weight_decay(model, float(t.weight_decay))
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, betas=tuple(t.betas), eps=t.eps, weight_decay=t.weight_decay)
    return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay, nesterov=t.nesterov)


class StepFloor:
    """lr factor gamma ** (number of milestones passed), but never below `floor` (min_lr / lr): a LambdaLR factor
    (its state, the plain attributes, is saved with the scheduler)."""

    def __init__(self, milestones: List[int], gamma: float, floor: float) -> None:
        self.milestones, self.gamma, self.floor = list(milestones), float(gamma), float(floor)

    def __call__(self, epoch: int) -> float:
        return max(self.gamma ** sum(epoch >= m for m in self.milestones), self.floor)


def _decay(optimizer, t, steps_per_epoch: int, warmup: int) -> LRScheduler:
    """The schedule after the warmup: StepLR, MultiStepLR (a LambdaLR when floored) or cosine to min_lr."""
    if t.scheduler == "cosine":
        total = (int(t.epochs) - int(t.warmup_epochs)) * steps_per_epoch
        return CosineAnnealingLR(optimizer, T_max=max(total, 1), eta_min=float(t.min_lr))
    if t.scheduler == "step":  # every step_size epochs of the decay (after the warmup)
        relative = list(range(int(t.step_size), int(t.epochs) + 1, int(t.step_size)))
    else:  # multistep: the epochs of the run at which lr drops
        relative = [int(m) - warmup for m in t.milestones]
    if float(t.min_lr) > 0:
        return LambdaLR(optimizer, StepFloor(relative, float(t.gamma), float(t.min_lr) / float(t.lr)))
    if t.scheduler == "step":
        return StepLR(optimizer, step_size=int(t.step_size), gamma=float(t.gamma))
    return MultiStepLR(optimizer, milestones=relative, gamma=float(t.gamma))


def build_scheduler(optimizer: torch.optim.Optimizer, t, steps_per_epoch: int) -> Tuple[LRScheduler, bool]:
    """(scheduler, steps per iteration?): train.scheduler after train.warmup_epochs of linear warmup from
    warmup_start_factor * lr. Cosine (and its warmup) steps every iteration, as timm does; step and multistep
    every epoch."""
    per_step = t.scheduler == "cosine"
    unit = steps_per_epoch if per_step else 1
    warmup = int(t.warmup_epochs) * unit
    decay = _decay(optimizer, t, steps_per_epoch, int(t.warmup_epochs))
    if not warmup:
        return decay, per_step
    ramp = LinearLR(optimizer, start_factor=float(t.warmup_start_factor), end_factor=1.0, total_iters=warmup)
    return SequentialLR(optimizer, [ramp, decay], milestones=[warmup]), per_step
