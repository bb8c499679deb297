"""A run directory: the one owner of its file names, their reads and writes, and of failure recording.

Files: config.yaml (resolved config), classes.json (class names by index), metrics.csv (a row per epoch),
summary.json (status and results; status `complete` is written last), checkpoint.pt + checkpoint.prev.pt
(resume state, the previous one a fallback), weights.pt (final weights), features.npz (final evaluation
features), trackers.json (what each experiment tracker has logged), error.txt (why the last attempt failed),
train.log (the log of every attempt that trained), .hydra/ (the composed config and overrides of the command that
last trained it), eval/<name>/ (scripts/evaluate.py); trackers write their own folders (tb/, wandb/). A command
that is refused, or that finds the run complete, writes none of them.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import pickle
import socket
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from synermix.config.checks import plain_dict
from synermix.config.identity import IDENTITY_COLUMNS, config_differences, run_identity
from synermix.errors import Interrupted, RunError, SynerMixError, describe
from synermix.store.io import (
    save_checkpoint_atomic,
    save_npz_atomic,
    write_csv_atomic,
    write_json_atomic,
    write_text_atomic,
)

log = logging.getLogger(__name__)
FailedSummary = Callable[[str], Dict[str, Any]]  # error message -> summary.json of the failed run

CONFIG, METRICS, SUMMARY, ERROR, LOCK = "config.yaml", "metrics.csv", "summary.json", "error.txt", ".lock"
CHECKPOINT, PREVIOUS_CHECKPOINT, WEIGHTS = "checkpoint.pt", "checkpoint.prev.pt", "weights.pt"
FEATURES, CLASSES, TRACKING, EVALUATIONS = "features.npz", "classes.json", "trackers.json", "eval"
LOG, RECORD = "train.log", ".hydra"
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # Hydra's own file format


class UntouchedRunDir(RunError):
    """A problem with the run directory itself: it is reported, and nothing in the directory is written."""


class ForeignRunDir(UntouchedRunDir):
    """The run directory belongs to another run (another configuration); nothing in it is touched."""


class UnreadableRunDir(UntouchedRunDir):
    """A file the run directory needs (summary.json, config.yaml) cannot be read; nothing in it is touched."""


class RunDirBusy(ForeignRunDir):
    """Another live process holds the run directory's lock; nothing in it is touched."""


class Table(NamedTuple):
    """metrics.csv's content: the rows and the columns in order."""

    rows: List[Dict[str, Any]]
    columns: List[str]


class Weights(NamedTuple):
    """A run's weights as read back: the state_dict, the file (and checkpoint epoch) it came from, and whether they
    are a finished run's."""

    state: Dict[str, Any]
    source: str
    finished: bool


def averaged_weights(name: str) -> str:
    """The file of an averaged model's final weights (weights_ema.pt)."""
    return f"weights_{name}.pt"


def _same_value(a: Any, b: Any) -> bool:
    """Equal, numbers compared as floats (summary.json may hold 0.1 where the config holds 0.1 or 1 for 1.0)."""
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
    return float(a) == float(b) if numbers else a == b


def _load_problem(exc: Exception) -> str:
    """Why a checkpoint could not be loaded, in our words (torch's own message suggests the unsafe loader)."""
    if isinstance(exc, pickle.UnpicklingError) or "weights_only" in str(exc).lower():
        return "it holds objects that a checkpoint of this repository never contains (torch's safe loader refused it)"
    return describe(exc)


def _read_checkpoint(path: Path) -> Dict[str, Any]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not {"config", "metrics", "model"} <= state.keys():
        raise ValueError("not a checkpoint of this repository")
    return state


# errno values that say the output cannot be written wherever it goes (else: only paths inside the run directory)
_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


def output_error(exc: OSError, run_dir: Path) -> Optional[RunError]:
    """One paragraph for an OSError of writing the run directory (full disk, read-only or unwritable folder,
    a file where a folder should be); None for other OSErrors (e.g. a data file)."""
    if isinstance(exc, SynerMixError):
        return None
    path = Path(exc.filename) if exc.filename else None
    inside = path is not None and (path == run_dir or run_dir in path.parents or path in run_dir.parents)
    if exc.errno not in _OUTPUT_ERRNOS and not inside:
        return None
    where, code = path or run_dir, errno.errorcode.get(exc.errno or 0, "OSError")
    return RunError(
        f"Cannot write the run directory {run_dir}: {where}: {exc.strerror or exc} ({code}). Files already written "
        "there were not changed (every write is atomic). Free space, or choose a writable out_root (or "
        "hydra.run.dir), then re-run: the run resumes from its last checkpoint."
    )


class RunDir:
    """One run's directory. Only the main process (`is_main`) writes; `attach(cfg)` before anything else."""

    def __init__(self, path: Path, is_main: bool = True, record: Optional[Dict[str, str]] = None) -> None:
        self.path, self.is_main, self.record = Path(path), is_main, dict(record or {})
        self.cfg: Optional[DictConfig] = None
        self.config: Dict[str, Any] = {}

    def attach(self, cfg: DictConfig) -> None:
        """Bind the (validated) config of the run; from now on failures are recorded in summary.json too."""
        self.cfg, self.config = cfg, plain_dict(cfg)

    def attached(self) -> DictConfig:
        """The config `attach` bound."""
        if self.cfg is None:
            raise RuntimeError(f"RunDir({self.path}).attach(cfg) must come first")
        return self.cfg

    @contextmanager
    def locked(self) -> Iterator["RunDir"]:
        """Hold the run directory's exclusive lock (an flock on `.lock`, naming its holder) for the duration.

        A second process gets RunDirBusy at once; the lock of a process that died is released by the
        kernel and taken over with a warning. Only the main process locks (it alone writes)."""
        if not self.is_main:
            yield self
            return
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / LOCK, "a+") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "another process"
                raise RunDirBusy(
                    f"The run directory {self.path} is in use by {holder}; a run directory is trained by one "
                    "process at a time. Wait for that run to finish (or stop it), then re-run to resume or skip it."
                ) from None
            f.seek(0)
            stale = f.read().strip()
            if stale:
                log.warning("Took over the lock of %s in %s: that process is no longer running.", stale, self.path)
            f.seek(0)
            f.truncate()
            f.write(f"pid {os.getpid()} on host {socket.gethostname()}\n")
            f.flush()
            try:
                yield self
            finally:
                f.seek(0)
                f.truncate()  # released cleanly: nothing stale left behind
                f.flush()
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    # ------------------------------------------------------------------ reading
    def _check_config(self, saved: Dict[str, Any]) -> None:
        diffs = config_differences(saved, self.config)
        if diffs:
            raise ForeignRunDir(
                f"The run directory {self.path} holds a run with a different configuration, so it will not be "
                f"resumed into: {'; '.join(diffs)}. Use another hydra.run.dir (or out_root) or restore those values."
            )

    def _unreadable(self, name: str, exc: Exception) -> UnreadableRunDir:
        return UnreadableRunDir(
            f"{self.path / name} cannot be read ({describe(exc)}); nothing in {self.path} was changed. "
            f"Restore the file, or move the run directory away to train the run again."
        )

    def read_summary(self) -> Optional[Dict[str, Any]]:
        """summary.json as a dict (None when absent; UnreadableRunDir when it is not a JSON object)."""
        path = self.path / SUMMARY
        if not path.is_file():
            return None
        try:
            summary = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise self._unreadable(SUMMARY, exc) from None
        if not isinstance(summary, dict):
            raise self._unreadable(SUMMARY, ValueError("not a JSON object"))
        return summary

    def _check_identity(self, summary: Dict[str, Any]) -> None:
        """Refuse a directory whose summary.json (its config.yaml lost) names another run than this config."""
        ours = run_identity(self.attached())
        diffs = [
            f"{k}: {summary[k]!r} -> {ours[k]!r}"
            for k in IDENTITY_COLUMNS
            if k in summary and not _same_value(summary[k], ours[k])
        ]
        if diffs:
            raise ForeignRunDir(
                f"The run directory {self.path} holds a run with a different configuration (its summary.json says so; "
                f"its {CONFIG} is missing), so it will not be resumed into or overwritten: {'; '.join(diffs)}. Use "
                "another hydra.run.dir (or out_root) or restore those values."
            )

    def completed_summary(self) -> Optional[Dict[str, Any]]:
        """The summary of a finished run of this config (its config checked), None when not finished.

        Decided from summary.json and config.yaml alone (summary.json's identity where config.yaml is missing):
        a finished run's weights are not read. A directory of another configuration is refused."""
        summary = self.read_summary()
        if not summary:
            return None
        if (self.path / CONFIG).is_file():
            try:
                saved = plain_dict(OmegaConf.load(self.path / CONFIG))
            except Exception as exc:  # YAML, encoding or interpolation errors alike
                raise self._unreadable(CONFIG, exc) from None
            self._check_config(saved)
        else:
            self._check_identity(summary)
        if summary.get("status") != "complete":
            return None
        self._prune()  # a kill right after completion can leave the checkpoints behind
        return summary

    def load(self) -> Optional[Dict[str, Any]]:
        """The newest readable checkpoint (falling back to the previous one), checked against the config. None for
        a fresh run."""
        problems, state = [], None
        for name in (CHECKPOINT, PREVIOUS_CHECKPOINT):
            path = self.path / name
            if not path.exists():
                continue
            try:
                state = _read_checkpoint(path)
            except Exception as exc:  # truncated or foreign file: try the previous checkpoint
                problems.append(f"{path} is unreadable ({_load_problem(exc)})")
                continue
            if problems:
                log.warning("%s; resuming from %s instead.", problems[0], path)
            break
        if state is None:
            if problems:
                raise RunError("; ".join(problems) + ". Move the run directory away to restart this run from scratch.")
            return None
        self._check_config(state.get("config", {}))
        return state

    def missing_features(self) -> bool:
        """Whether a finished run that should have saved its final features (cohesion_samples > 0) lacks them."""
        return bool(self.attached().train.cohesion_samples) and not (self.path / FEATURES).is_file()

    def missing_weights(self) -> bool:
        """Whether a finished run lacks weights.pt (deleted since: evaluate and predict have nothing to use)."""
        return not (self.path / WEIGHTS).is_file()

    def final_weights(self) -> Dict[str, Any]:
        """The finished model's state_dict: weights.pt, else the last checkpoint's model."""
        found = self.latest_weights()
        if found is None:
            raise RunError(
                f"{self.path} is complete but holds neither {WEIGHTS} nor {CHECKPOINT}, so its missing "
                f"{FEATURES} cannot be recomputed; delete {self.path / SUMMARY} to train the run again."
            )
        return found.state

    def latest_weights(self, averaged: Optional[str] = None) -> Optional[Weights]:
        """The run's newest weights: weights.pt of a finished run, else its
        newest readable checkpoint (an unfinished run: said so, with its epoch); None when there is neither. With
        `averaged` (e.g. `ema`), that averaged model's: weights_ema.pt, else the checkpoint's."""
        final = WEIGHTS if averaged is None else averaged_weights(averaged)
        if (self.path / final).is_file():
            try:
                return Weights(torch.load(self.path / final, map_location="cpu", weights_only=True), final, True)
            except Exception as exc:
                raise self._unreadable(final, exc) from None
        for name in (CHECKPOINT, PREVIOUS_CHECKPOINT):
            if (self.path / name).is_file():
                try:
                    state = _read_checkpoint(self.path / name)
                except Exception as exc:
                    log.warning("%s is unreadable (%s).", self.path / name, _load_problem(exc))
                    continue
                epochs = (state.get("config") or {}).get("train", {}).get("epochs", "?")
                where = f"{name} (unfinished run: epoch {state.get('epoch', '?')} of {epochs})"
                if averaged is None:
                    return Weights(state["model"], where, False)
                kept = (state.get("hooks") or {}).get(averaged)
                return Weights(kept["module"], f"{averaged} weights of {where}", False) if kept else None
        return None

    def write_features(self, features: Dict[str, np.ndarray]) -> None:
        """features.npz (atomically)."""
        if self.is_main:
            save_npz_atomic(self.path / FEATURES, **features)

    def read_metrics(self):
        """metrics.csv as a pandas DataFrame."""
        import pandas as pd  # pandas: ~0.5 s, only readers of metrics.csv

        return pd.read_csv(self.path / METRICS)

    def read_features(self) -> Dict[str, np.ndarray]:
        """features.npz: the final epoch's evaluation `features` and their `labels`."""
        with np.load(self.path / FEATURES) as f:
            return {k: f[k] for k in f.files}

    # ------------------------------------------------------------------ writing
    def start(self, classes: List[str]) -> None:
        """Write config.yaml, classes.json and the command's record (.hydra/), and clear a previous attempt's
        error.txt."""
        if self.is_main:
            self.path.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.path / CONFIG, OmegaConf.to_yaml(self.cfg, resolve=True))
            write_json_atomic(self.path / CLASSES, list(classes))
            for name, text in self.record.items():
                (self.path / RECORD).mkdir(exist_ok=True)
                write_text_atomic(self.path / RECORD / name, text)
            (self.path / ERROR).unlink(missing_ok=True)

    @contextmanager
    def logging_to_file(self) -> Iterator["RunDir"]:
        """Append the log (root logger) to train.log while inside: only an attempt that trains writes it."""
        if not self.is_main:
            yield self
            return
        handler = logging.FileHandler(self.path / LOG, mode="a")
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root = logging.getLogger()
        root.addHandler(handler)
        try:
            yield self
        finally:
            root.removeHandler(handler)
            handler.close()

    def read_classes(self) -> Optional[List[str]]:
        """The class names recorded at training time (None for a run recorded before they were)."""
        path = self.path / CLASSES
        if not path.is_file():
            return None
        try:
            return [str(c) for c in json.loads(path.read_text())]
        except (OSError, ValueError, TypeError) as exc:
            raise self._unreadable(CLASSES, exc) from None

    def read_tracking(self) -> Dict[str, Any]:
        """trackers.json: per tracker, the epochs it has logged and its own state ({} when absent or unreadable)."""
        try:
            state = json.loads((self.path / TRACKING).read_text())
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    def write_tracking(self, state: Dict[str, Any]) -> None:
        """trackers.json (atomically)."""
        if self.is_main:
            write_json_atomic(self.path / TRACKING, state)

    def evaluation_dir(self, name: str) -> Path:
        """eval/<name>/, where scripts/evaluate.py writes one evaluation."""
        return self.path / EVALUATIONS / name

    def save_checkpoint(self, state: Dict[str, Any]) -> None:
        """Write the resume state (the config, and `state`: the trainer's and the metric rows), keeping the previous
        checkpoint as a fallback; each step is an atomic rename."""
        if self.is_main:
            save_checkpoint_atomic(
                self.path / CHECKPOINT, {"config": self.config, **state}, previous=self.path / PREVIOUS_CHECKPOINT
            )

    def end_epoch(
        self,
        table: Table,
        state: Dict[str, Any],
        summary: Dict[str, Any],
        features: Optional[Dict[str, np.ndarray]] = None,
    ) -> None:
        """Record a finished epoch (the last row of `table`): features (the final epoch's, first, so a kill cannot
        lose them), checkpoint of `state`, metrics.csv, summary.json (`running`)."""
        if not self.is_main:
            return
        if features is not None:
            self.write_features(features)
        self.save_checkpoint(state)
        write_csv_atomic(self.path / METRICS, table.rows, table.columns)
        write_json_atomic(self.path / SUMMARY, summary)

    def finish(
        self,
        table: Table,
        model_state: Dict[str, Any],
        summary: Dict[str, Any],
        averaged: Optional[Dict[str, Dict[str, Any]]] = None,
    ) -> None:
        """Complete the run: final weights (and weights_<name>.pt of each averaged model, e.g. the EMA), then
        summary.json `complete` (last), then drop the resume state unless train.keep_checkpoints."""
        if self.is_main:
            for name, state in (averaged or {}).items():
                save_checkpoint_atomic(self.path / averaged_weights(name), state)
            save_checkpoint_atomic(self.path / WEIGHTS, model_state)
            # again: a kill right after the last checkpoint resumes straight here, before metrics.csv was written
            write_csv_atomic(self.path / METRICS, table.rows, table.columns)
            write_json_atomic(self.path / SUMMARY, summary)
            self._prune()

    def _prune(self) -> None:
        if self.is_main and not self.attached().train.get("keep_checkpoints", False):
            for name in (CHECKPOINT, PREVIOUS_CHECKPOINT):
                (self.path / name).unlink(missing_ok=True)

    # ------------------------------------------------------------------ failures
    def record_failure(self, exc: BaseException, failed_summary: FailedSummary) -> None:
        """error.txt (one paragraph for a SynerMixError, else the traceback) and, once the config is known,
        summary.json marked failed (`failed_summary(message)`, keeping the progress the file had). Interruptions
        and foreign run dirs are not failures."""
        if not self.is_main or isinstance(exc, (Interrupted, UntouchedRunDir)):
            return
        expected = isinstance(exc, SynerMixError)
        detail = f"{type(exc).__name__}: {exc}\n" if expected else "".join(traceback.format_exception(exc))
        try:
            write_text_atomic(self.path / ERROR, detail)
            if self.cfg is not None:
                message = str(exc) if expected else f"{type(exc).__name__}: {exc}"
                write_json_atomic(self.path / SUMMARY, self._failed_summary(failed_summary(message)))
        except OSError as write_error:  # a full disk or a read-only folder: the error itself is still raised
            log.warning("Could not record the failure in %s (%s).", self.path, write_error)

    def _failed_summary(self, summary: Dict[str, Any]) -> Dict[str, Any]:
        """A failed `summary` with the progress summary.json had (the epochs recorded, their accuracies)."""
        try:
            previous = self.read_summary() or {}
        except UnreadableRunDir:
            previous = {}
        for key in ("epochs_completed", "best_acc", "last_acc"):
            if previous.get(key) is not None:
                summary[key] = previous[key]
        return summary

    @contextmanager
    def recording_failures(self, failed_summary: FailedSummary) -> Iterator["RunDir"]:
        """Record any exception raised inside (see `record_failure`), then re-raise it."""
        try:
            yield self
        except Exception as exc:
            self.record_failure(exc, failed_summary)
            raise
