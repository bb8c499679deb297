#!/usr/bin/env python
"""A refactor keeps numbers: train a fixed set of small runs (every preset on digits and Fashion-MNIST, two presets
under 2 processes, one SIGKILL-resumed run) into OUT, or compare two such folders byte for byte (metrics.csv
without epoch_seconds, and features.npz). Usage: python -m benchmarks.numbers_kept run OUT;
python -m benchmarks.numbers_kept compare BEFORE AFTER. Same machine, same kernels: the numbers must be identical."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from synermix.config.presets import method_presets

ROOT = Path(__file__).resolve().parents[1]
COMMON = ("train.epochs=2", "train.average_last=1", "train.cohesion_samples=200", "seed=3", "device=cpu")
DATASETS = {
    "digits": ("dataset=digits", "dataset.max_per_class=40"),
    "fashion_mnist": ("dataset=fashion_mnist", "dataset.max_per_class=30", "model.depth=8"),
}


def _train(run_dir: Path, args, processes: int = 1, **popen) -> subprocess.Popen:
    launcher = (
        [sys.executable]
        if processes == 1
        else [str(Path(sys.executable).parent / "torchrun"), "--standalone", f"--nproc_per_node={processes}"]
    )
    return subprocess.Popen(
        [*launcher, str(ROOT / "scripts" / "train.py"), *args, f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def _finish(proc: subprocess.Popen, name: str) -> None:
    _, err = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"{name} failed:\n{err[-3000:]}")


def run(out: Path) -> None:
    """Train every configuration of the check into `out`."""
    for data, data_args in DATASETS.items():
        for preset in method_presets():
            _finish(_train(out / data / preset, (*data_args, f"method={preset}", *COMMON)), f"{data} {preset}")
    for preset in ("intra", "synermix_mm"):
        args = (*DATASETS["digits"], f"method={preset}", *COMMON, "model.norm=group")
        _finish(_train(out / "ddp" / preset, args, processes=2), f"ddp {preset}")
    args = (
        *DATASETS["digits"],
        "method=synermix",
        *COMMON,
        "train.checkpoint_every_steps=2",
        "+hooks.pause={_target_:helpers.hooks.PauseAt,epoch:2,step:3}",
    )
    run_dir = out / "sigkill" / "synermix"
    proc = _train(run_dir, args)
    while not (run_dir / "paused").exists():
        if proc.poll() is not None:
            raise SystemExit("the run to be killed ended early")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _finish(_train(run_dir, args[:-1]), "resumed run")


def compare(before: Path, after: Path) -> int:
    """0 when every run of `before` has identical metrics (but time) and features in `after`."""
    bad = 0
    for metrics in sorted(before.rglob("metrics.csv")):
        other = after / metrics.relative_to(before)
        kept = pd.read_csv(metrics).drop(columns="epoch_seconds")
        a = kept.to_csv(index=False)  # columns added since `before` are new numbers, not changed ones
        b = pd.read_csv(other).reindex(columns=kept.columns).to_csv(index=False) if other.exists() else None
        same = a == b
        fa, fb = metrics.parent / "features.npz", other.parent / "features.npz"
        if same and fa.exists():
            with np.load(fa) as x, np.load(fb) as y:
                same = all(np.array_equal(x[k], y[k]) for k in x.files)
        print(f"{'same     ' if same else 'DIFFERENT'} {metrics.parent.relative_to(before)}")
        bad += not same
    return 1 if bad else 0


def main(argv=None) -> int:
    """Command line: run OUT | compare BEFORE AFTER."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=("run", "compare"))
    parser.add_argument("folders", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.what == "run":
        run(args.folders[0])
        return 0
    return compare(*args.folders)


if __name__ == "__main__":
    sys.exit(main())
