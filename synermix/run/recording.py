"""The epoch recorder: the hook that writes each epoch's row of the metrics channel into the run directory
(features of the last epoch, checkpoint, metrics.csv, summary.json), logs it, and completes the run."""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig

from synermix.run.summary import run_summary
from synermix.store.rundir import RunDir, Table
from synermix.train.hooks import Hook

log = logging.getLogger(__name__)


class EpochRecorder(Hook):
    """After each epoch's metrics: write the epoch to `rundir` and log one line; after training, the final weights
    (the `averaged` models' too, e.g. the EMA) and summary.json `complete` (kept in `summary`)."""

    def __init__(self, rundir: RunDir, cfg: DictConfig, averaged: dict[str, Any] | None = None) -> None:
        self.rundir, self.cfg, self.averaged = rundir, cfg, dict(averaged or {})
        self.summary: dict[str, Any] | None = None

    def after_epoch(self, trainer: Any) -> None:
        """Record the epoch the metrics have just put into `trainer.metrics`."""
        channel = trainer.metrics
        table = Table(channel.rows, channel.columns())
        summary = run_summary(table.rows, table.columns, self.cfg, "running")
        self.rundir.end_epoch(table, trainer.state_dict(), summary, channel.artifacts.get("features"))
        self._log(table.rows[-1])

    def after_train(self, trainer: Any) -> None:
        """Complete the run."""
        channel = trainer.metrics
        table = Table(channel.rows, channel.columns())
        self.summary = run_summary(table.rows, table.columns, self.cfg, "complete")
        averaged = {name: model.state_dict() for name, model in self.averaged.items()}
        self.rundir.finish(table, trainer.model.state_dict(), self.summary, averaged)

    def _log(self, row: dict[str, Any]) -> None:
        """One log line per epoch."""
        intra = "" if row.get("train_loss_intra") is None else f" intra {row['train_loss_intra']:.4f}"
        inter = "" if row.get("train_loss_inter") is None else f" inter {row['train_loss_inter']:.4f}"
        log.info(
            "[%s] epoch %d/%d lr %.4g loss %.4f%s%s %s_acc %.2f%% ece %.4f nll %.4f (%.1fs)",
            self.cfg.method.name,
            row["epoch"],
            self.cfg.train.epochs,
            row["lr"],
            row["train_loss"],
            intra,
            inter,
            self.cfg.phase,
            row.get("eval_acc") or 0.0,
            row.get("eval_ece") or 0.0,
            row.get("eval_nll") or 0.0,
            row.get("epoch_seconds") or 0.0,
        )
