"""scripts/train.py under a stand-in for submitit's SIGUSR2 handler: it records that it was called, and
whether the run's checkpoint existed by then, then exits with code 3 as a requeued job would."""

import os
import runpy
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = os.environ["REQUEUE_MARKER"]


def requeue(signum, frame):
    run_dir = Path(os.environ["REQUEUE_RUN_DIR"])
    Path(MARKER).write_text(f"requeued checkpoint={(run_dir / 'checkpoint.pt').exists()}\n")
    sys.exit(3)


signal.signal(signal.SIGUSR2, requeue)
sys.argv = [str(ROOT / "scripts" / "train.py"), *sys.argv[1:]]
runpy.run_path(sys.argv[0], run_name="__main__")
