"""The Trainer: owns everything that changes during training and runs it, step by step, epoch by epoch.

State (one symmetric `state_dict()` / `load_state_dict()`; a resume is one load): the model, optimizer, scheduler,
loss scaler, the epoch, the step within it, the running loss sums and the seconds spent in it, every hook's state
and the metric rows so far (`metrics`, the channel synermix.train.metrics.EpochLog). Before step b of
epoch e the mixing generator and torch's global RNG are seeded from `seeds.step(e, b)`, so a run resumed at any
step draws what an uninterrupted one does. Hooks (synermix.train.hooks) are called with the trainer after each step,
after each epoch (`trainer.epoch` then counts the epochs done, `trainer.last_epoch` holds what it measured) and
after training. At each epoch's end the metrics (synermix.train.metrics) put the epoch's row into `trainer.metrics`
first; then the hooks run (the run's recorder writes the row and the checkpoint).
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Optional, Sequence

import torch
from torch import nn
from tqdm import tqdm

from synermix.errors import Interrupted, SynerMixError
from synermix.method.loss import SynerMixLoss
from synermix.seeding import RunSeeds
from synermix.train.distributed import DistEnv, GlobalBatch
from synermix.train.evaluation import NonFiniteLoss, autocast_context, check_finite
from synermix.train.hooks import Hook, Hooks, StopFlag
from synermix.train.metrics import EpochLog, Metric

TERMS = ("total", "L_intra", "L_inter")


@dataclass
class TrainOptions:
    """How the trainer runs: the run's seeds, mixed precision, the host-read interval, the process group, gradient
    clipping, and whether the scheduler steps after every optimisation step (else after every epoch)."""

    seeds: RunSeeds
    amp: bool = False
    amp_dtype: str = "bfloat16"  # float16 adds a GradScaler
    log_interval: int = 50  # steps between host reads of the loss sums (progress bar, NaN check, stop agreement)
    env: DistEnv = field(default_factory=DistEnv)
    clip_grad_norm: Optional[float] = None  # the gradients' total 2-norm is clipped to this (None: off)
    schedule_per_step: bool = False


@dataclass
class EpochStats:
    """One finished epoch: its index (0-based), learning rate, mean per-step losses (None for a term the method
    does not compute) and steps."""

    epoch: int
    lr: float
    loss: float
    intra: Optional[float]
    inter: Optional[float]
    steps: int


class PartObjective(nn.Module):
    """Under torchrun: the loss's terms as one forward over this process's part of the global batch (so
    DistributedDataParallel sees one forward and one backward per step), L_inter weighted by the part's share."""

    def __init__(self, model: Any, loss: SynerMixLoss) -> None:  # model: a MixableClassifier module
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, x_orig, x_aug, y, generator, part: GlobalBatch):
        """(differentiable total, detached terms by name) of this part."""
        total, values = x_aug.new_zeros((), dtype=torch.float32), {}
        for term in self.loss.terms(self.model, x_orig, x_aug, y, generator, part=part):
            value = term.value * part.share if term.name == "inter" else term.value
            total = total + term.weight * value
            values[term.name] = value.detach()
        return total, values


class Trainer:
    """Trains `model` with `loss` (see the module docstring). `metrics` put each epoch's row into `self.metrics`;
    `store` (a synermix.store.RunDir, or None) keeps `checkpoint()`s of `state_dict()`."""

    def __init__(
        self,
        model: nn.Module,
        loss: SynerMixLoss,
        optimizer: torch.optim.Optimizer,
        scheduler,
        options: TrainOptions,
        hooks: Sequence[Hook] = (),
        metrics: Sequence[Metric] = (),
        store=None,
    ):
        self.model, self.loss, self.optimizer, self.scheduler, self.options = model, loss, optimizer, scheduler, options
        self.device = next(model.parameters()).device
        self.scaler = torch.amp.GradScaler(self.device.type) if options.amp and options.amp_dtype == "float16" else None
        self.measures, self.metrics, self.store = list(metrics), EpochLog(), store
        for metric in self.measures:
            self.metrics.declare(metric.columns)
        self.hooks, self.stop = Hooks([*self.measures, *hooks]), StopFlag()
        self.epoch, self.step, self.seconds, self.sums = 0, 0, 0.0, torch.zeros(3)
        self.generator, self.epoch_start = torch.Generator(), time.perf_counter()
        self.last_epoch: Optional[EpochStats] = None
        self.steps_per_epoch, self.epoch_lr = 0, self.lr  # epoch_lr: the learning rate of the epoch's first step
        self.objective = None
        if options.env.enabled:
            from torch.nn.parallel import DistributedDataParallel  # only under torchrun

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.objective = DistributedDataParallel(PartObjective(model, loss), device_ids=ids)

    @property
    def run_dir(self):
        """The run directory (where hooks may leave files of their own), or None without a store."""
        return None if self.store is None else self.store.path

    # ------------------------------------------------------------------ state
    @property
    def lr(self) -> float:
        """The learning rate of the coming step."""
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> Dict[str, Any]:
        """Everything a resume needs: model, optimizer, scheduler, scaler, epoch and the partial epoch's progress."""
        partial = (
            None
            if not self.step
            else {
                "step": self.step,
                "sums": self.sums.detach().cpu().clone(),
                "seconds": self.seconds,
                "lr": self.epoch_lr,
            }
        )
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler and self.scaler.state_dict(),
            "epoch": self.epoch,
            "partial": partial,
            "hooks": self.hooks.state_dict(),
            **self.metrics.state_dict(),
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Continue from `state_dict()` output (a checkpoint without `epoch` counts its metric rows)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.epoch = int(state["epoch"]) if "epoch" in state else len(state.get("metrics", []))
        partial = state.get("partial") or {}
        self.step, self.seconds = int(partial.get("step", 0)), float(partial.get("seconds", 0.0))
        self.sums = partial["sums"].float() if partial else torch.zeros(3)
        self.epoch_lr = float(partial.get("lr", self.lr))  # a per-iteration schedule has moved on since
        self.hooks.load_state_dict(state.get("hooks") or {})
        self.metrics.load_state_dict(state)

    def elapsed(self) -> float:
        """Seconds spent in the current epoch, including those before a resume."""
        return time.perf_counter() - self.epoch_start

    def checkpoint(self) -> None:
        """Write a checkpoint of this exact point (never of non-finite weights or sums)."""
        check_finite(self.model, f"epoch {self.epoch + 1}, step {self.step}", self.sums)
        if self.step:
            self.seconds = self.elapsed()
        if self.store is not None:
            self.store.save_checkpoint(self.state_dict())

    # ------------------------------------------------------------------ loop
    def train(self, stream, epochs: int) -> None:
        """Train from the current epoch and step to `epochs` (Interrupted after a checkpoint on a stop signal)."""
        self.steps_per_epoch = len(stream)
        with self.stop.installed():
            while self.epoch < epochs:
                self.hooks.before_epoch(self)
                self.epoch_lr = self.epoch_lr if self.step else self.lr
                self.epoch_start = time.perf_counter() - self.seconds
                stats = self._epoch_or_stop(stream, self.epoch_lr)
                if stats is None:
                    raise self._interrupted(len(stream))
                if not self.options.schedule_per_step:
                    self.scheduler.step()
                self.last_epoch = stats
                self.epoch, self.step, self.seconds, self.sums = self.epoch + 1, 0, 0.0, torch.zeros(3)
                self._measure(stats.epoch)
                self.hooks.after_epoch(self)
            self.hooks.after_train(self)

    def _measure(self, epoch: int) -> None:
        """The epoch's row: every metric puts its values into the channel."""
        self.metrics.begin(epoch)
        for metric in self.measures:
            metric.measure(self, self.metrics)
        self.metrics.end()

    def _epoch_or_stop(self, stream, lr: float) -> Optional[EpochStats]:
        """The current epoch; None when a stop request ended it, also when the stop signal reached the DataLoader
        workers first and the loader failed (the run then stops at the last full step, with a checkpoint)."""
        try:
            return self.train_epoch(stream.epoch(self.epoch, self.step), len(stream), lr)
        except (RuntimeError, OSError) as exc:
            if not self.stop() or isinstance(exc, SynerMixError):
                raise
            return None

    def train_epoch(self, batches: Iterable, total_steps: int, lr: float) -> Optional[EpochStats]:
        """Steps over `batches` (stream Batches) from `self.step` on; None when a stop request ended it early."""
        self.model.train()
        guard = NonFiniteGuard(self.device, self.options.env)
        self.sums = self.sums.to(device=self.device, dtype=torch.float32)  # on the device: no per-step host sync
        interactive = sys.stderr.isatty()
        bar = tqdm(
            batches,
            total=total_steps,
            initial=self.step,
            desc=f"epoch {self.epoch + 1}",
            leave=False,
            disable=not interactive,
            dynamic_ncols=True,
        )
        for batch in bar:
            values = self.run_step(batch)
            guard.update(batch.step, values)
            self.sums += values
            self.step = batch.step + 1
            boundary = bool(self.options.log_interval) and self.step % self.options.log_interval == 0
            if boundary:
                guard.check(self.epoch, total_steps)
                if interactive:
                    bar.set_postfix(loss=f"{(self.sums[0] / self.step).item():.4f}")
            self.hooks.after_step(self)
            if self._should_stop(boundary):
                bar.close()
                return None
        bar.close()
        guard.check(self.epoch, total_steps)
        means = (self.options.env.mean(self.sums) / max(self.step, 1)).tolist()
        return EpochStats(
            self.epoch,
            lr,
            means[0],
            means[1] if self.loss.uses_intra else None,
            means[2] if self.loss.uses_inter else None,
            self.step,
        )

    def run_step(self, batch) -> torch.Tensor:
        """One optimisation step on `batch`: seed, loss terms, backward, optimizer step; the detached
        (total, L_intra, L_inter) (0 for a term not computed)."""
        part = self._seed_step(batch)
        self.optimizer.zero_grad(set_to_none=True)
        with autocast_context(self.device, self.options.amp, self.options.amp_dtype):
            if self.objective is None:
                total, values = self._backward_terms(batch)
            else:
                total, values = self.objective(batch.x_orig, batch.x_aug, batch.y, self.generator, part)
        if self.objective is not None:
            self._backward(total)  # DDP: one backward per forward
        self._optimizer_step()
        zero = torch.zeros((), device=self.device)
        return torch.stack([v.detach().float() for v in (total, values.get("intra", zero), values.get("inter", zero))])

    def _optimizer_step(self) -> None:
        """Clip the gradients (unscaled first under float16 AMP) where configured, step the optimizer, and the
        scheduler when it steps per iteration."""
        if self.options.clip_grad_norm is not None:
            if self.scaler is not None:
                self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.options.clip_grad_norm)
        if self.scaler is None:
            self.optimizer.step()
        else:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        if self.options.schedule_per_step:
            self.scheduler.step()

    def _backward_terms(self, batch):
        """The loss's terms, each back-propagated as soon as it is computed (one view's graph alive at a time), or
        together when they share one forward. Returns the detached total and terms."""
        total, values = batch.x_aug.new_zeros((), dtype=torch.float32), {}
        split = not self.loss.shares_graph
        for term in self.loss.terms(self.model, batch.x_orig, batch.x_aug, batch.y, self.generator):
            weighted = term.weight * term.value
            if split:
                self._backward(weighted)
                weighted = weighted.detach()
            total = total + weighted
            values[term.name] = term.value.detach()
        if total.requires_grad:
            self._backward(total)
            total = total.detach()
        return total, values

    def _backward(self, loss: torch.Tensor) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()  # float16: the scaled loss

    def _seed_step(self, batch) -> Optional[GlobalBatch]:
        """Seed the step's mixing generator and torch's global RNG; under torchrun, also this step's GlobalBatch
        (with the L_intra generator every process seeds alike)."""
        seeds, env = self.options.seeds, self.options.env
        mix_seed, torch_seed = seeds.step(self.epoch, batch.step)
        self.generator.manual_seed(mix_seed)
        torch.manual_seed(torch_seed)
        if not env.enabled:
            return None
        intra_generator = torch.Generator(self.generator.device).manual_seed(seeds.shared_mix(self.epoch, batch.step))
        return GlobalBatch(env, int(batch.global_size), intra_generator)

    def _should_stop(self, boundary: bool) -> bool:
        """A stop request ends the epoch after this step; several processes agree at log_interval boundaries."""
        env = self.options.env
        if not env.enabled:
            return self.stop()
        return boundary and bool(env.max(torch.tensor(int(self.stop()), device=self.device)))

    def _interrupted(self, total_steps: int) -> Interrupted:
        """Checkpoint the partial epoch and say how to resume."""
        self.checkpoint()
        signum = int(self.stop.signum or signal.SIGTERM)
        name = signal.Signals(signum).name
        where = f" in {self.run_dir}" if self.run_dir else ""
        return Interrupted(
            f"Interrupted by {name} at epoch {self.epoch + 1}, step {self.step} of {total_steps}; "
            f"checkpoint saved{where}. Re-run the same command to resume.",
            signum,
        )


class NonFiniteGuard:
    """Remembers the first step whose loss terms were NaN or infinite, on the device (no per-step host read)."""

    def __init__(self, device: torch.device, env: DistEnv) -> None:
        self.env = env
        self.bad_step = torch.full((), -1, dtype=torch.long, device=device)
        self.bad_terms = torch.zeros(3, dtype=torch.bool, device=device)

    def update(self, step: int, values: torch.Tensor) -> None:
        """Note step `step`'s (total, L_intra, L_inter)."""
        finite = torch.isfinite(values)
        first_bad = (self.bad_step < 0) & ~finite.all()
        self.bad_step = torch.where(first_bad, step, self.bad_step)
        self.bad_terms = torch.where(first_bad, ~finite, self.bad_terms)

    def check(self, epoch: int, total_steps: int) -> None:
        """Raise NonFiniteLoss if any process saw a non-finite step (all processes then stop together)."""
        bad_step, bad_terms = self.bad_step, self.bad_terms
        if self.env.enabled:
            bad_step, bad_terms = self.env.max(bad_step), self.env.max(bad_terms.to(torch.uint8)).bool()
        step = int(bad_step)
        if step < 0:
            return
        terms = [name for name, bad in zip(TERMS, bad_terms.tolist()) if bad]
        raise NonFiniteLoss(
            f"Non-finite training loss at epoch {epoch + 1}, step {step + 1} of {total_steps}: "
            f"{', '.join(terms)} became NaN or infinite. Training stopped; the last good checkpoint is kept. "
            "Lower train.lr, or check the data for NaN/inf values."
        )
