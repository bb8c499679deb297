"""Experiment trackers: the `logger` config group. Each selected tracker gets every epoch's metrics.csv row and the
run's summary, on the main process only; a resumed run continues the same tracked run without repeating an epoch.

A tracker is a class of `Tracker`'s methods: a built-in one is a file here named in TRACKERS (plus
configs/logger/<name>.yaml); your own is `logger.<name>: {_target_: my_module.MyTracker, ...}` (docs/extending.md).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from synermix.config.checks import Check, problems
from synermix.config.registry import Registry, target_of
from synermix.errors import Interrupted, RunError, describe
from synermix.train.hooks import Hook

log = logging.getLogger(__name__)

# logger name -> "module:Class"; `csv` (no tracker) is the run directory's own metrics.csv, written whatever is selected
TRACKERS = Registry(
    "tracker",
    "logger.<name>",
    {
        "tensorboard": "synermix.run.trackers.tensorboard:TensorBoardTracker",
        "wandb": "synermix.run.trackers.wandb:WandbTracker",
        "mlflow": "synermix.run.trackers.mlflow:MlflowTracker",
    },
    "logger.mine={_target_:my_module.MyTracker}",
)
METRICS_CSV_ONLY = "csv"


def _selection_ok(logger: Any) -> bool:
    return logger is None or (
        hasattr(logger, "keys")
        and all(name in TRACKERS or name == METRICS_CSV_ONLY or target_of(logger[name]) for name in logger.keys())
    )


LOGGER_CHECK = Check(
    "logger",
    _selection_ok,
    f"a selection from the logger config group: logger=[{','.join([*TRACKERS.names(), METRICS_CSV_ONLY])}] (any of "
    "them), or a tracker of your own as logger.<name>={_target_:my_module.MyTracker}",
)


@dataclass
class TrackedRun:
    """What a tracker is told about the run: its name (the run directory's place under out_root), directory,
    resolved config, identity (summary.json's keys) and the state it saved in an earlier attempt ({} if none)."""

    name: str
    path: Path
    config: Dict[str, Any]
    identity: Dict[str, Any]
    saved: Dict[str, Any] = field(default_factory=dict)


class Tracker:
    """One experiment tracker: opened once per attempt of a run, told each epoch's row and the final summary."""

    def start(self, run: TrackedRun) -> Dict[str, Any]:
        """Open (or reopen, from `run.saved`) the tracked run; returns the state to save for a later attempt."""
        return {}

    def logged_without_record(self, run: TrackedRun, rows: List[Dict[str, Any]]) -> int:
        """Epochs this tracker logged for a run recorded before trackers.json existed (0: none)."""
        return 0

    def log_epoch(self, row: Dict[str, Any]) -> None:
        """One metrics.csv row (its `epoch` is the step)."""

    def log_summary(self, summary: Dict[str, Any]) -> None:
        """The completed run's summary.json."""

    def close(self, status: str) -> None:
        """End this attempt: status `complete`, `interrupted` (it will resume) or `failed`."""


def summary_results(summary: Dict[str, Any]) -> Dict[str, float]:
    """summary.json's results: final_* (the last epochs' means), best_acc, last_acc (identity keys such as lr are
    the run's parameters, not metrics)."""
    return metric_values({k: v for k, v in summary.items() if k.startswith("final_") or k in ("best_acc", "last_acc")})


def metric_values(row: Dict[str, Any]) -> Dict[str, float]:
    """The numeric values of a metrics.csv row or summary (None, text and flags left out)."""
    return {
        k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "epoch"
    }


def build_tracker(name: str, options) -> Optional[Tracker]:
    """The tracker `logger.<name>` selects, from its options (None for csv); `_target_` names your own."""
    if target_of(options):
        return TRACKERS.build(options)
    if name == METRICS_CSV_ONLY:
        return None
    return TRACKERS.load(name)(**dict(options or {}))


class Tracking(Hook):
    """The selected trackers as a training hook placed after the epoch recorder: after each epoch every tracker gets
    the rows it has not logged yet (trackers.json keeps count, so a resumed run repeats no epoch); after training,
    the summary."""

    def __init__(self, trackers: Dict[str, Tracker], recorder, rundir) -> None:
        self.trackers, self.recorder, self.rundir = trackers, recorder, rundir
        self.state: Dict[str, Dict[str, Any]] = {}
        self.rows: List[Dict[str, Any]] = []  # the metrics channel's rows (the trainer's), set by `session`

    @classmethod
    def from_config(cls, logger, recorder, rundir, is_main: bool) -> "Tracking":
        """The trackers `logger` selects (none on processes other than the main one)."""
        names = list(logger.keys()) if (logger is not None and is_main) else []
        built = {name: build_tracker(name, logger[name]) for name in names}
        return cls({k: v for k, v in built.items() if v is not None}, recorder, rundir)

    @contextmanager
    def session(self, run: TrackedRun, rows: List[Dict[str, Any]]) -> Iterator["Tracking"]:
        """Open every tracker for this attempt (the channel's `rows` so far) and close it with the attempt's
        outcome."""
        self.rows = rows
        saved = self.rundir.read_tracking()
        for name, tracker in self.trackers.items():
            mine = saved.get(name, {})
            state = self._start(name, tracker, TrackedRun(run.name, run.path, run.config, run.identity, mine))
            logged = mine["epochs"] if "epochs" in mine else tracker.logged_without_record(run, self.rows)
            self.state[name] = {**state, "epochs": int(logged)}
        try:
            self._log_new_rows()  # epochs recorded by an attempt that stopped before its trackers heard of them
            yield self
        except BaseException as exc:
            self._close("interrupted" if isinstance(exc, (Interrupted, KeyboardInterrupt)) else "failed")
            raise
        self._close("complete" if self.recorder.summary is not None else "interrupted")

    def _start(self, name: str, tracker: Tracker, run: TrackedRun) -> Dict[str, Any]:
        """tracker.start; a tracker that cannot start fails the run before its first step, naming what to set."""
        try:
            return tracker.start(run)
        except Exception as exc:
            self._close("failed")  # the trackers already started
            hint = getattr(tracker, "SETUP_HINT", f"check the logger.{name} settings")
            raise RunError(
                f"The {name} tracker (logger={name}) could not start, so the run stopped before "
                f"training: {describe(exc)}. {hint}; or train without it (logger=tensorboard, or "
                "logger=csv)."
            ) from None

    def _log_new_rows(self) -> None:
        rows = self.rows
        for name, tracker in self.trackers.items():
            for row in rows[self.state[name]["epochs"] :]:
                tracker.log_epoch(row)
            self.state[name]["epochs"] = len(rows)
        if self.trackers:
            self.rundir.write_tracking(self.state)

    def _close(self, status: str) -> None:
        for name, tracker in self.trackers.items():
            if name not in self.state:
                continue  # never started
            try:
                tracker.close(status)
            except Exception as exc:  # the run's own record is complete; a tracker's failure does not undo it
                log.warning("Could not close the %s run (%s).", name, exc)

    def after_epoch(self, trainer) -> None:
        """Log the epoch the recorder has just written."""
        self.rows = trainer.metrics.rows
        self._log_new_rows()

    def after_train(self, trainer) -> None:
        """Log the completed run's summary."""
        for tracker in self.trackers.values():
            tracker.log_summary(self.recorder.summary)


def logger_problems(logger) -> List[str]:
    """What is wrong with the `logger` selection: an unknown tracker, or a tracker's own option."""
    if logger is None:
        return []
    if not LOGGER_CHECK.ok(logger):
        return [f"logger={list(logger.keys())!r} is invalid: it must be {LOGGER_CHECK.allowed}"]
    found: List[str] = []
    for name in logger.keys():
        if name in TRACKERS and not target_of(logger[name]):
            module = import_module(TRACKERS.builtins[name].split(":")[0])
            options = logger[name] or {}
            own = problems(options, getattr(module, "CHECKS", ()), f"logger.{name}.")
            found += own or getattr(module, "setup_problems", lambda _: [])(options)
    return found
