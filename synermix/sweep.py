"""Sweep bookkeeping: every job of a Hydra multirun records its outcome; the sweep ends with a tally."""
from __future__ import annotations

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


class SweepReport(Callback):
    """Hydra callback: prints how many jobs completed or failed (and where), exits 1 if any failed."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        path = sweep_dir / f".sweep-{os.getpid()}-{int(time.time())}.jobs"
        path.write_text("")
        os.environ[SWEEP_LOG_ENV] = str(path)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
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
