"""The epoch recorder: the hook that evaluates after each epoch and records it (metrics.csv, summary.json,
TensorBoard, the checkpoint) in the run directory; it owns the run's metric rows."""
from __future__ import annotations

import logging
import time
from typing import Any, Dict, List, Optional

import numpy as np
from omegaconf import DictConfig

from synermix.train.cohesion import cohesion_metrics
from synermix.train.evaluation import Evaluation, evaluate
from synermix.train.hooks import Hook
from synermix.store.rundir import RunDir
from synermix.train.trainer import EpochStats, check_finite

log = logging.getLogger(__name__)


def averaged_columns(name: str, result: Evaluation) -> Dict[str, Any]:
    """The evaluation columns of an averaged model (e.g. `ema`): eval_acc_<name>, eval_ece_<name>, eval_nll_<name>."""
    return {f"eval_acc_{name}": result.accuracy, f"eval_ece_{name}": result.ece, f"eval_nll_{name}": result.nll}


def epoch_row(stats: EpochStats, result: Optional[Evaluation], seconds: float) -> Dict[str, Any]:
    """metrics.csv's row of one epoch (no evaluation columns without an evaluation result)."""
    evaluated = {} if result is None else {"eval_acc": result.accuracy, "eval_acc5": result.top5, "eval_ece": result.ece,
                                           "eval_nll": result.nll}
    cohesion = {} if result is None or result.features is None else cohesion_metrics(result.features, result.labels)
    return {
        "epoch": stats.epoch + 1, "lr": stats.lr, "train_loss": stats.loss, "train_loss_intra": stats.intra,
        "train_loss_inter": stats.inter, "eval_acc": None, **evaluated, **cohesion, "epoch_seconds": round(seconds, 3),
    }


class EpochRecorder(Hook):
    """After each epoch: evaluate on the run's evaluation stream (keeping the features of `keep`), and each of the
    `averaged` models (e.g. the EMA of the weights) beside it, then write the epoch to `rundir` (features of the last
    epoch, checkpoint, metrics.csv, summary.json) and log it."""

    def __init__(self, rundir: RunDir, cfg: DictConfig, eval_stream, keep: Optional[np.ndarray], env,
                 averaged: Optional[Dict[str, Any]] = None) -> None:
        self.rundir, self.cfg, self.eval_stream, self.keep, self.env = rundir, cfg, eval_stream, keep, env
        self.averaged = dict(averaged or {})
        self.rows: List[Dict[str, Any]] = []
        self.summary: Optional[Dict[str, Any]] = None

    def state_dict(self) -> Dict[str, Any]:
        """The rows so far (a checkpoint carries them)."""
        return {"metrics": list(self.rows)}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Continue with a checkpoint's rows."""
        self.rows = list(state.get("metrics", []))

    def save(self, training_state: Dict[str, Any]) -> None:
        """A checkpoint of the trainer's state with the rows so far."""
        self.rundir.save_checkpoint({**training_state, **self.state_dict()})

    def after_epoch(self, trainer) -> None:
        """Evaluate (every process its part of the evaluation set) and record the epoch."""
        cfg, stats = self.cfg, trainer.last_epoch
        result = evaluate(trainer.model, self.eval_stream, cfg.amp, cfg.amp_dtype, self.keep, self.env)
        # the epoch's losses were checked as they came (NonFiniteGuard); the weights are checked here
        check_finite(trainer.model, f"epoch {stats.epoch + 1}, step {stats.steps}")
        row = epoch_row(stats, result, time.perf_counter() - trainer.epoch_start)
        for name, model in self.averaged.items():
            row.update(averaged_columns(name, evaluate(model, self.eval_stream, cfg.amp, cfg.amp_dtype,
                                                       dist_env=self.env)))
        self.rows.append(row)
        last = len(self.rows) == cfg.train.epochs and result.features is not None
        features = {"features": result.features, "labels": result.labels} if last else None
        self.rundir.end_epoch(self.rows, {**trainer.state_dict(), **self.state_dict()}, features)
        self._log(self.rows[-1], stats)

    def after_train(self, trainer) -> None:
        """Complete the run: final weights (the averaged models' too), then summary.json `complete` (kept in
        `summary`)."""
        averaged = {name: model.state_dict() for name, model in self.averaged.items()}
        self.summary = self.rundir.finish(self.rows, trainer.model.state_dict(), averaged)

    def _log(self, row: Dict[str, Any], stats: EpochStats) -> None:
        """One log line per epoch."""
        intra = "" if stats.intra is None else f" intra {stats.intra:.4f}"
        inter = "" if stats.inter is None else f" inter {stats.inter:.4f}"
        log.info("[%s] epoch %d/%d lr %.4g loss %.4f%s%s %s_acc %.2f%% ece %.4f nll %.4f (%.1fs)",
                 self.cfg.method.name, row["epoch"], self.cfg.train.epochs, row["lr"], stats.loss, intra, inter,
                 self.cfg.phase, row["eval_acc"] or 0.0, row.get("eval_ece") or 0.0, row.get("eval_nll") or 0.0,
                 row["epoch_seconds"])
