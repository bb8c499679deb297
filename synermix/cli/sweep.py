"""Sweep bookkeeping: every job of a Hydra multirun records its outcome; the sweep ends with a tally."""

from __future__ import annotations

import atexit
import os
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

SWEEP_LOG_ENV = "SYNERMIX_SWEEP_LOG"


def record_job(run_dir: Path, status: str, message: str = "") -> None:
    """Append this job's outcome to the running sweep's log (no-op outside a sweep)."""
    log = os.environ.get(SWEEP_LOG_ENV)
    if not log:
        return
    first_line = message.strip().splitlines()[0] if message.strip() else ""
    with open(log, "a") as f:  # one short line per write: appends from parallel jobs do not interleave
        f.write(f"{status}\t{run_dir}\t{first_line[:300]}\n")


def remove_empty_job_dir(run_dir: Path, root: Path) -> None:
    """Remove a sweep job's folder that Hydra made and the job left empty (it was refused), and its emptied parents
    up to `root`."""
    root, path = root.resolve(), run_dir.resolve()
    while path != root and root in path.parents:
        try:
            path.rmdir()  # only an empty folder
        except OSError:
            return
        path = path.parent


class SweepReport(Callback):
    """Hydra callback: keeps a sweep's log of its jobs; after the sweep, prints how many jobs completed or failed
    (and where) and exits 1 if any failed."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Before a sweep: its folder must be writable; start the jobs' log (removed however the sweep ends)."""
        # on use: imports the validation (torch), which --help does not need
        from synermix.cli.preflight import refusing
        from synermix.store.io import (
            check_writable,  # here: scripts/train.py --help imports this module, and needs no torch
        )

        sweep_dir = Path(config.hydra.sweep.dir)
        refusing(
            lambda _: check_writable(
                sweep_dir, "the sweep's folder (hydra.sweep.dir)", "Choose a writable out_root (or hydra.sweep.dir)."
            ),
            config,
        )
        sweep_dir.mkdir(parents=True, exist_ok=True)
        path = sweep_dir / f".sweep-{os.getpid()}-{int(time.time())}.jobs"
        path.write_text("")
        atexit.register(path.unlink, missing_ok=True)  # an interrupted sweep leaves no log behind
        os.environ[SWEEP_LOG_ENV] = str(path)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """After a sweep: the tally; exit 1 if a job failed."""
        path = Path(os.environ.pop(SWEEP_LOG_ENV, ""))
        if not path.is_file():
            return
        lines = [ln.split("\t") for ln in path.read_text().splitlines() if ln.strip()]
        path.unlink()
        failed = [ln for ln in lines if ln[0] == "failed"]
        print(f"Sweep finished: {len(lines)} job(s), {len(lines) - len(failed)} complete, {len(failed)} failed.")
        for _, run_dir, message in failed:
            where = " (see error.txt there)" if Path(run_dir, "error.txt").is_file() else " (refused before it trained)"
            print(f"  failed: {run_dir} — {message}{where}")
        if failed:
            sys.exit(1)
