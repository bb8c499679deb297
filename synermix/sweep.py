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


def require_writable(folder: Path, key: str) -> None:
    """Create `folder` and write a probe file in it; if that fails, print one paragraph naming it and exit 2."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        print(f"error: the output folder {folder} ({key}) cannot be created or written: {exc.strerror or exc} "
              f"({exc.filename or folder}). Choose a writable out_root (or {key}); nothing was written.",
              file=sys.stderr)
        sys.exit(2)


class SweepReport(Callback):
    """Hydra callback: checks the output folder can be written before anything runs; after a sweep, prints how
    many jobs completed or failed (and where) and exits 1 if any failed."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Before a single run: its directory must be writable."""
        require_writable(Path(config.hydra.run.dir), "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Before a sweep: its folder must be writable; start the jobs' log (removed however the sweep ends)."""
        sweep_dir = Path(config.hydra.sweep.dir)
        require_writable(sweep_dir, "hydra.sweep.dir")
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
            print(f"  failed: {run_dir} — {message} (see error.txt there)")
        if failed:
            sys.exit(1)
