"""The metrics channel: at the end of each epoch the metrics put named values into one per-epoch log (as
detectron2's EventStorage), and everything downstream reads that log generically: metrics.csv, summary.json's
final_* (one rule for every numeric column), TensorBoard and the other trackers, and the report.

A metric is a `Metric`: a hook that declares the `columns` it puts (so they exist in every row, empty where a
method does not compute them) and whose `measure(trainer, log)` runs after each epoch, before the epoch is
recorded. The built-in metrics, in column order: `Losses` (lr and the loss terms), `EvaluationMetric` (accuracy,
top-5, calibration, cohesion), `EpochTime`, `AveragedEvaluation` (an averaged model, e.g. the EMA) and, when
configured, `GradNorm`. Your own: `metrics.<name>: {_target_: my_module.MyMetric, ...}` (docs/extending.md).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from synermix.config.registry import Registry
from synermix.train.cohesion import COHESION_COLUMNS, cohesion_metrics
from synermix.train.distributed import DistEnv
from synermix.train.evaluation import check_finite, evaluate
from synermix.train.hooks import Hook, entries_from_config

# the metrics a config names (`metrics.<name>: grad_norm`); the others are composed by the run from its config
METRICS = Registry(
    "metric",
    "metrics.<name>",
    {"grad_norm": "synermix.train.metrics:GradNorm"},
    "metrics.gn={_target_:my_module.MyMetric}",
)


class EpochLog:
    """One row of named values per epoch: `begin`, then `put` by the metrics, then `end`; `rows` so far."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.declared: list[str] = ["epoch"]
        self.artifacts: dict[str, Any] = {}  # this epoch's non-scalar results (the evaluation's features)
        self._row: dict[str, Any] | None = None

    def declare(self, columns: tuple[str, ...] | list[str]) -> None:
        """Columns every row has (empty where nothing was put), in this order after those declared before."""
        self.declared += [c for c in columns if c not in self.declared]

    def begin(self, epoch: int) -> None:
        """Start the row of `epoch` (0-based; the row's `epoch` column counts from 1)."""
        self._row, self.artifacts = {c: None for c in self.declared}, {}
        self._row["epoch"] = epoch + 1

    def put(self, name: str, value: Any) -> None:
        """This epoch's value of `name` (a number, or None for a value not computed)."""
        if self._row is None:
            raise RuntimeError(f"EpochLog.put({name!r}) outside an epoch's end: metrics put values in measure()")
        self._row[name] = value

    def get(self, name: str) -> Any:
        """The value put for `name` in the current row so far (None if none)."""
        return None if self._row is None else self._row.get(name)

    def end(self) -> dict[str, Any]:
        """Close the epoch's row and keep it."""
        row, self._row = self._row, None
        if row is None:
            raise RuntimeError("EpochLog.end() without begin()")
        self.rows.append(row)
        return row

    def columns(self) -> list[str]:
        """metrics.csv's columns: the declared ones, then any other a row has, first seen first."""
        extra = [k for k in dict.fromkeys(k for row in self.rows for k in row) if k not in self.declared]
        return [*self.declared, *extra]

    def state_dict(self) -> dict[str, Any]:
        """The rows so far (a checkpoint's `metrics`)."""
        return {"metrics": [dict(row) for row in self.rows]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue with a checkpoint's rows."""
        self.rows = [dict(row) for row in state.get("metrics", [])]


class Metric(Hook):
    """Base class of a per-epoch metric: declare `columns`, put their values in `measure`."""

    columns: tuple[str, ...] = ()

    def measure(self, trainer: Any, log: EpochLog) -> None:
        """Put this epoch's values into `log` (trainer.last_epoch holds the epoch's training statistics)."""


class Losses(Metric):
    """The epoch's learning rate and mean loss terms (empty for a term the method does not compute)."""

    columns = ("lr", "train_loss", "train_loss_intra", "train_loss_inter")

    def measure(self, trainer: Any, log: EpochLog) -> None:
        """lr, train_loss, train_loss_intra, train_loss_inter of trainer.last_epoch."""
        stats = trainer.last_epoch
        for name, value in zip(self.columns, (stats.lr, stats.loss, stats.intra, stats.inter)):
            log.put(name, value)


class EvaluationMetric(Metric):
    """Accuracy, top-5, ECE and NLL on the run's evaluation stream, and the cohesion of the penultimate features of
    the samples at `keep` (their features shared as the artifact `features` in the last of `epochs`)."""

    columns = ("eval_acc", "eval_acc5", "eval_ece", "eval_nll", *COHESION_COLUMNS)

    def __init__(
        self, stream: Any, amp: bool, amp_dtype: str, keep: np.ndarray | None, env: DistEnv, epochs: int
    ) -> None:
        self.stream, self.amp, self.amp_dtype, self.keep, self.env = stream, amp, amp_dtype, keep, env
        self.epochs = epochs

    def measure(self, trainer: Any, log: EpochLog) -> None:
        """Evaluate (every process its part of the evaluation set) and put the results."""
        result = evaluate(trainer.model, self.stream, self.amp, self.amp_dtype, self.keep, self.env)
        stats = trainer.last_epoch
        check_finite(trainer.model, f"epoch {stats.epoch + 1}, step {stats.steps}")  # the losses were checked
        for name, value in zip(self.columns, (result.accuracy, result.top5, result.ece, result.nll)):
            log.put(name, value)
        if result.features is None or result.labels is None:
            return
        for name, value in cohesion_metrics(result.features, result.labels).items():
            log.put(name, value)
        if stats.epoch + 1 == self.epochs:
            log.artifacts["features"] = {"features": result.features, "labels": result.labels}


class EpochTime(Metric):
    """Seconds of the epoch so far: its training steps (before a resume too) and its evaluation."""

    columns = ("epoch_seconds",)

    def measure(self, trainer: Any, log: EpochLog) -> None:
        """epoch_seconds, to the millisecond."""
        log.put("epoch_seconds", round(time.perf_counter() - trainer.epoch_start, 3))


class AveragedEvaluation(Metric):
    """An averaged model's evaluation beside the trained one's: eval_acc_<name>, eval_ece_<name>, eval_nll_<name>."""

    def __init__(self, name: str, module: Any, stream: Any, amp: bool, amp_dtype: str, env: DistEnv) -> None:
        self.name, self.module, self.stream, self.amp, self.amp_dtype, self.env = (
            name,
            module,
            stream,
            amp,
            amp_dtype,
            env,
        )
        self.columns = tuple(f"eval_{m}_{name}" for m in ("acc", "ece", "nll"))

    def measure(self, trainer: Any, log: EpochLog) -> None:
        """Evaluate the averaged model."""
        result = evaluate(self.module, self.stream, self.amp, self.amp_dtype, dist_env=self.env)
        for name, value in zip(self.columns, (result.accuracy, result.ece, result.nll)):
            log.put(name, value)


class GradNorm(Metric):
    """grad_norm: the mean over the epoch's steps of the gradients' total 2-norm after the step (after clipping,
    where train.clip_grad_norm clips; float16 AMP: of the scaled gradients). Kept in checkpoints mid-epoch."""

    columns = ("grad_norm",)
    state_key = "grad_norm"

    def __init__(self) -> None:
        self.total, self.steps = 0.0, 0
        self._sum: Any = None  # on the device: no host read per step

    def after_step(self, trainer: Any) -> None:
        """Add this step's norm."""
        grads = [p.grad.detach().float().norm() for p in trainer.model.parameters() if p.grad is not None]
        if grads:
            norm = torch.stack(grads).norm()
            self._sum = norm if self._sum is None else self._sum + norm
            self.steps += 1

    def _flush(self) -> None:
        if self._sum is not None:
            self.total, self._sum = self.total + float(self._sum), None

    def measure(self, trainer: Any, log: EpochLog) -> None:
        """The epoch's mean, then start the next epoch from zero."""
        self._flush()
        log.put("grad_norm", self.total / self.steps if self.steps else None)
        self.total, self.steps = 0.0, 0

    def state_dict(self) -> dict[str, Any]:
        """The partial epoch's sum and step count."""
        self._flush()
        return {"total": self.total, "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue a partial epoch."""
        self.total, self.steps, self._sum = float(state["total"]), int(state["steps"]), None


# metrics.csv's columns of every run (an averaged model's and your own metrics' follow)
BUILT_IN_COLUMNS = ("epoch", *Losses.columns, *EvaluationMetric.columns, *EpochTime.columns)


def metrics_from_config(specs: Any) -> list[Metric]:
    """The `metrics.<name>` entries of the config, in name order: a built-in name (`grad_norm`) or a mapping with
    `_target_` naming a Metric subclass of your own and its arguments."""
    return entries_from_config(specs, METRICS, Metric, "metrics")
