"""TensorBoard: the run's scalars and hyper-parameters in its tb/ folder (`make tensorboard` serves outputs/)."""

from __future__ import annotations

from typing import Any, Dict, List

from synermix.run.trackers import TrackedRun, Tracker, metric_values, summary_results
from synermix.train.cohesion import COHESION_COLUMNS

FOLDER = "tb"


class TensorBoardTracker(Tracker):
    """Scalars per epoch (cohesion metrics under cohesion/), the final metrics, and the HPARAMS tab."""

    def __init__(self) -> None:
        self.writer: Any = None
        self.epochs = 0

    def start(self, run: TrackedRun) -> Dict[str, Any]:
        """Open tb/ (appending to an earlier attempt's events) and record the run's hyper-parameters."""
        from torch.utils.tensorboard import SummaryWriter  # imported late: slow, and only runs need it
        from torch.utils.tensorboard.summary import hparams

        self.writer = SummaryWriter(log_dir=str(run.path / FOLDER))
        for summary in hparams(run.identity, {"eval_acc": 0.0, "final_acc": 0.0}):
            self.writer.file_writer.add_summary(summary)
        return {}

    def logged_without_record(self, run: TrackedRun, rows: List[Dict[str, Any]]) -> int:
        """Runs recorded before trackers.json logged every epoch to tb/."""
        return len(rows) if (run.path / FOLDER).is_dir() else 0

    def log_epoch(self, row: Dict[str, Any]) -> None:
        """One scalar per metrics.csv column, at step `epoch`."""
        self.epochs = int(row["epoch"])
        for key, value in metric_values(row).items():
            self.writer.add_scalar(f"cohesion/{key}" if key in COHESION_COLUMNS else key, value, self.epochs)
        self.writer.flush()

    def log_summary(self, summary: Dict[str, Any]) -> None:
        """The final metrics (final_acc, top-5, ECE, NLL, an EMA's) at the last epoch."""
        for key, value in summary_results(summary).items():
            if key.startswith("final_"):
                self.writer.add_scalar(key, value, summary["epochs_completed"])

    def close(self, status: str) -> None:
        """Flush and close the event file."""
        if self.writer is not None:
            self.writer.close()
