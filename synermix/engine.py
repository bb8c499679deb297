"""One training epoch and one evaluation pass."""
from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from typing import Iterable, Optional

import torch
from tqdm import tqdm

from synermix.losses import SynerMixLoss


@dataclass
class EpochStats:
    """Mean per-step losses of one epoch (None for a term the method does not compute)."""

    loss: float
    intra: Optional[float]
    inter: Optional[float]
    steps: int


def autocast_context(device: torch.device, amp: bool):
    """bf16 autocast on CUDA when `amp`, otherwise a no-op context."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_one_epoch(
    model: torch.nn.Module,
    batches: Iterable,
    loss_fn: SynerMixLoss,
    optimizer: torch.optim.Optimizer,
    mix_generator: torch.Generator,
    amp: bool = False,
    desc: str = "train",
    total: Optional[int] = None,
) -> EpochStats:
    """Train over `batches` of (x_orig or None, x_aug, y); losses are summed on the device and read once."""
    model.train()
    device = next(model.parameters()).device
    sums = torch.zeros(3, device=device)
    steps = 0
    bar = tqdm(batches, total=total, desc=desc, leave=False, disable=not sys.stderr.isatty(), dynamic_ncols=True)
    for x_orig, x_aug, y in bar:
        with autocast_context(device, amp):
            terms = loss_fn(model, x_orig, x_aug, y, mix_generator)
        optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        optimizer.step()
        zero = sums.new_zeros(())
        sums += torch.stack(
            (
                terms.total.detach(),
                zero if terms.intra is None else terms.intra,
                zero if terms.inter is None else terms.inter,
            )
        )
        steps += 1
    bar.close()
    means = (sums / max(steps, 1)).tolist()
    return EpochStats(
        loss=means[0],
        intra=means[1] if loss_fn.uses_intra else None,
        inter=means[2] if loss_fn.uses_inter else None,
        steps=steps,
    )


@torch.no_grad()
def evaluate(model: torch.nn.Module, data, batch_size: int, amp: bool = False) -> float:
    """Top-1 accuracy (percent) of `model` on the evaluation view of `data`."""
    model.eval()
    device = next(model.parameters()).device
    correct = torch.zeros((), dtype=torch.long, device=device)
    for x, y in data.eval_batches(batch_size):
        with autocast_context(device, amp):
            correct += (model(x).argmax(dim=1) == y).sum()
    return 100.0 * int(correct) / len(data)
