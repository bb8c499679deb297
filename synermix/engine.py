"""One training epoch (resumable at any step) and one evaluation pass."""
from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from typing import Callable, Iterable, NamedTuple, Optional

import numpy as np
import torch
from tqdm import tqdm

from synermix.calibration import CalibrationTotals
from synermix.distributed import DistEnv, GlobalBatch
from synermix.errors import RunError
from synermix.losses import SynerMixLoss
from synermix.seeding import RunSeeds

TERMS = ("total", "L_intra", "L_inter")


class NonFiniteLoss(RunError):
    """The training loss (or the weights, or the evaluation outputs) became NaN or infinite."""


def check_finite_state(model: torch.nn.Module, progress: "EpochProgress", epoch: int) -> None:
    """Refuse to checkpoint non-finite weights, buffers or loss sums (one host read per checkpoint)."""
    tensors = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    finite = torch.stack([torch.isfinite(t).all() for t in tensors]).all() & torch.isfinite(progress.sums).all()
    if not bool(finite):
        raise NonFiniteLoss(
            f"Non-finite weights or loss at epoch {epoch + 1}, step {progress.step}: they were not checkpointed, so "
            "the last good checkpoint is kept. Training stopped; lower train.lr, or check the data for NaN/inf values."
        )


@dataclass
class EpochProgress:
    """How far an epoch got: completed steps, summed loss terms, seconds spent. Saved in mid-epoch checkpoints."""

    step: int = 0
    sums: torch.Tensor = field(default_factory=lambda: torch.zeros(3))
    seconds: float = 0.0

    def state_dict(self) -> dict:
        """Plain state for a weights_only checkpoint."""
        return {"step": self.step, "sums": self.sums.detach().cpu().clone(), "seconds": self.seconds}

    @classmethod
    def from_state(cls, state: Optional[dict]) -> "EpochProgress":
        """Rebuild from `state_dict()` output (a fresh epoch when None)."""
        if not state:
            return cls()
        return cls(int(state["step"]), state["sums"].float(), float(state["seconds"]))


@dataclass
class EpochStats:
    """Mean per-step losses of one epoch (None for a term the method does not compute)."""

    loss: float
    intra: Optional[float]
    inter: Optional[float]
    steps: int


def autocast_context(device: torch.device, amp: bool, dtype: str = "bfloat16"):
    """Autocast to `dtype` (bfloat16 or float16) on the device (CUDA, or CPU) when `amp`, otherwise a no-op context."""
    if amp:
        return torch.autocast(device.type, dtype=getattr(torch, dtype))
    return contextlib.nullcontext()


def _raise_non_finite(epoch: int, bad_step: torch.Tensor, bad_terms: torch.Tensor, total_steps: int) -> None:
    step = int(bad_step)
    if step < 0:
        return
    terms = [name for name, bad in zip(TERMS, bad_terms.tolist()) if bad]
    raise NonFiniteLoss(
        f"Non-finite training loss at epoch {epoch + 1}, step {step + 1} of {total_steps}: "
        f"{', '.join(terms)} became NaN or infinite. Training stopped; the last good checkpoint is kept. "
        "Lower train.lr, or check the data for NaN/inf values."
    )


def training_step(objective, optimizer, x_orig, x_aug, y, generator, *, split_backward: bool = True,
                  amp: bool = False, amp_dtype: str = "bfloat16", scaler=None, global_batch=None):
    """One optimisation step; returns the (detached or not) total and the detached loss terms.

    With `split_backward` each loss term is back-propagated as soon as it is computed, so one view's
    graph is alive at a time; DistributedDataParallel needs one backward per forward, so it passes False.
    """
    def backward(loss: torch.Tensor) -> None:
        (loss if scaler is None else scaler.scale(loss)).backward()  # float16: scaled loss

    device = y.device
    optimizer.zero_grad(set_to_none=True)
    with autocast_context(device, amp, amp_dtype):
        total, intra, inter = objective(x_orig, x_aug, y, generator, backward if split_backward else None,
                                        global_batch)
    if not split_backward:
        backward(total)
    if scaler is None:
        optimizer.step()
    else:
        scaler.step(optimizer)
        scaler.update()
    return total, intra, inter


def _flag(value: bool, device) -> torch.Tensor:
    return torch.tensor(int(value), device=device)


def _agree_bad(dist_env: DistEnv, bad_step: torch.Tensor, bad_terms: torch.Tensor):
    """The first non-finite step and terms as seen by any process (all processes then stop together)."""
    if not dist_env.enabled:
        return bad_step, bad_terms
    return dist_env.max(bad_step), dist_env.max(bad_terms.to(torch.uint8)).bool()


def _seed_step(seeds: RunSeeds, epoch: int, step: int, mix_generator: torch.Generator, dist_env: DistEnv,
               global_size: Optional[int]) -> Optional[GlobalBatch]:
    """Seed step `step`'s mixing generator and torch's global RNG; under torchrun, also the GlobalBatch (with the
    L_intra generator every process seeds alike) that makes the loss that of the global batch."""
    mix_seed, torch_seed = seeds.step(epoch, step)
    mix_generator.manual_seed(mix_seed)
    torch.manual_seed(torch_seed)
    if not dist_env.enabled:
        return None
    intra_generator = torch.Generator(mix_generator.device).manual_seed(seeds.shared_mix(epoch, step))
    return GlobalBatch(dist_env, int(global_size), intra_generator)


def train_one_epoch(
    objective: torch.nn.Module,
    batches: Iterable,
    optimizer: torch.optim.Optimizer,
    mix_generator: torch.Generator,
    seeds: RunSeeds,
    progress: EpochProgress,
    *,
    epoch: int = 0,
    total: Optional[int] = None,
    amp: bool = False,
    amp_dtype: str = "bfloat16",
    scaler: Optional["torch.amp.GradScaler"] = None,
    log_interval: int = 50,
    stop: Callable[[], bool] = lambda: False,
    after_step: Callable[[EpochProgress], None] = lambda p: None,
    dist_env: DistEnv = DistEnv(),
) -> Optional[EpochStats]:
    """Train over `batches` (Batch: step, x_orig or None, x_aug, y), continuing `progress` in place.

    `objective` is a SynerMixObjective, or one wrapped in DistributedDataParallel; with several
    processes the stop request, the non-finite check and the epoch's loss means are agreed on
    (collectives only at `log_interval` boundaries and at the end of the epoch).

    Before step b the mixing generator and torch's global RNG are seeded from `seeds.step(epoch, b)`, so a run
    resumed at any step draws what an uninterrupted one would. Loss sums and the non-finite check
    stay on the device; the host reads them every `log_interval` steps and at the end. Returns the
    epoch's stats, or None when `stop()` asked to stop (progress then says how far it got).
    """
    objective.train()
    loss_fn: SynerMixLoss = getattr(objective, "module", objective).loss_fn
    device = next(objective.parameters()).device
    # Sums live on the device (no per-step host sync); progress.sums refers to the same tensor.
    sums = progress.sums = progress.sums.to(device=device, dtype=torch.float32)
    bad_step = torch.full((), -1, dtype=torch.long, device=device)
    bad_terms = torch.zeros(3, dtype=torch.bool, device=device)
    zero = torch.zeros((), device=device)
    interactive = sys.stderr.isatty()
    bar = tqdm(batches, total=total, initial=progress.step, desc=f"epoch {epoch + 1}", leave=False,
               disable=not interactive, dynamic_ncols=True)
    for step, x_orig, x_aug, y, global_size in bar:
        global_batch = _seed_step(seeds, epoch, step, mix_generator, dist_env, global_size)
        total_loss, intra, inter = training_step(
            objective, optimizer, x_orig, x_aug, y, mix_generator,
            split_backward=not dist_env.enabled, amp=amp, amp_dtype=amp_dtype, scaler=scaler,
            global_batch=global_batch,
        )
        values = torch.stack((
            total_loss.detach().float(),
            zero if intra is None else intra.detach().float(),
            zero if inter is None else inter.detach().float(),
        ))
        finite = torch.isfinite(values)
        first_bad = (bad_step < 0) & ~finite.all()
        bad_step = torch.where(first_bad, step, bad_step)
        bad_terms = torch.where(first_bad, ~finite, bad_terms)
        sums += values
        progress.step = step + 1
        boundary = bool(log_interval) and progress.step % log_interval == 0
        if boundary:
            _raise_non_finite(epoch, *_agree_bad(dist_env, bad_step, bad_terms), total or progress.step)
            if interactive:
                bar.set_postfix(loss=f"{(sums[0] / progress.step).item():.4f}")
        after_step(progress)
        # Several processes must stop at the same step: they agree at the log_interval boundaries.
        if (stop() if not dist_env.enabled else boundary and bool(dist_env.max(_flag(stop(), device)))):
            bar.close()
            return None
    bar.close()
    _raise_non_finite(epoch, *_agree_bad(dist_env, bad_step, bad_terms), total or progress.step)
    means = (dist_env.mean(sums) / max(progress.step, 1)).tolist()
    return EpochStats(
        loss=means[0],
        intra=means[1] if loss_fn.uses_intra else None,
        inter=means[2] if loss_fn.uses_inter else None,
        steps=progress.step,
    )


class Evaluation(NamedTuple):
    """One evaluation pass: top-1 accuracy (percent), ECE (fraction), NLL (nats), and the penultimate features
    and labels of the kept samples (None without `keep`)."""

    accuracy: float
    ece: float
    nll: float
    features: Optional[np.ndarray] = None
    labels: Optional[np.ndarray] = None


@torch.no_grad()
def evaluate(model: torch.nn.Module, stream, amp: bool = False, amp_dtype: str = "bfloat16",
             keep: Optional[np.ndarray] = None, dist_env: DistEnv = DistEnv()) -> Evaluation:
    """Accuracy and calibration of `model` on the evaluation `stream` (EvalStream), and the penultimate
    features and labels of the evaluation samples at positions `keep`.

    Under torchrun each process evaluates its part of the stream; counts and sums are added up and the kept
    features gathered, so every process returns what one process evaluating everything would."""
    model.eval()
    device = next(model.parameters()).device
    correct = torch.zeros((), dtype=torch.long, device=device)
    calibration = CalibrationTotals(device)
    kept_features, kept_labels, seen = [], [], getattr(stream, "start", 0)
    finite = torch.ones((), dtype=torch.long, device=device)
    for x, y in stream:
        with autocast_context(device, amp, amp_dtype):
            features = model.features(x)
            logits = model.head(features)
            correct += (logits.argmax(dim=1) == y).sum()
            finite &= (torch.isfinite(logits).all() & torch.isfinite(features).all()).long()
        calibration.update(logits, y)
        if keep is not None:
            rows = keep[(keep >= seen) & (keep < seen + len(y))] - seen
            kept_features.append(features[torch.as_tensor(rows, device=device)].float().cpu())
            kept_labels.append(y[torch.as_tensor(rows, device=device)].cpu())
        seen += len(y)
    bad = 1 - finite
    dist_env.sum_(correct, bad, *calibration.sums())
    if bool(bad):
        raise NonFiniteLoss(
            "The evaluation produced NaN or infinite outputs (the weights went non-finite in the last step of the "
            "epoch); the accuracy was not recorded and the last good checkpoint is kept. Lower train.lr, or check "
            "the data for NaN/inf values."
        )
    accuracy = 100.0 * int(correct) / len(stream)
    if keep is None:
        return Evaluation(accuracy, calibration.ece(), calibration.nll())
    parts = dist_env.gather_objects((torch.cat(kept_features).numpy(), torch.cat(kept_labels).numpy()))
    return Evaluation(accuracy, calibration.ece(), calibration.nll(),
                      np.concatenate([f for f, _ in parts]), np.concatenate([lab for _, lab in parts]))
