#!/usr/bin/env python
"""make gpu-check: the CUDA paths in one command. AMP (bfloat16, float16 + GradScaler), channels_last and
torch.compile steps as images/s and step-time ratios; DistributedDataParallel (NCCL) over every visible GPU against
one GPU, with the metrics compared. Without CUDA it says so and exits 0; `--device cpu` runs the same checks on
CPU (gloo, 2 processes), at tiny sizes with `--tiny`."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from benchmarks.accelerator import VARIANTS, bench_accelerator
from benchmarks.agreement import AGREEMENT_RUN, compare_runs
from benchmarks.timing import Row, format_table, write_csv

ROOT = Path(__file__).resolve().parents[1]


def _train(run_dir: Path, device: str, processes: int) -> float:
    """One scripts/train.py run (under torchrun when `processes` > 1); returns its wall seconds."""
    launcher = (
        [sys.executable]
        if processes == 1
        else [str(Path(sys.executable).parent / "torchrun"), "--standalone", f"--nproc_per_node={processes}"]
    )
    start = time.perf_counter()
    proc = subprocess.run(
        [*launcher, str(ROOT / "scripts" / "train.py"), *AGREEMENT_RUN, f"device={device}", f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        raise SystemExit(f"error: the {processes}-process run failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def check_ddp(device: str, processes: int) -> list:
    """Rows comparing a `processes`-process run with a one-process run of AGREEMENT_RUN: epoch seconds, and whether
    they agree to float rounding (benchmarks/agreement.py)."""
    with tempfile.TemporaryDirectory() as tmp:
        wall = {n: _train(Path(tmp, str(n)), device, n) for n in (1, processes)}
        one, many = (pd.read_csv(Path(tmp, str(n), "metrics.csv")) for n in (1, processes))
        agreement = compare_runs(Path(tmp, "1"), Path(tmp, str(processes)))
    rows = []
    for n, frame in ((1, one), (processes, many)):
        rows.append(
            Row(
                "ddp",
                f"digits intra, GroupNorm, {n} process(es) on {device}: epoch",
                frame["epoch_seconds"].median(),
                "s",
                low=frame["epoch_seconds"].min(),
                high=frame["epoch_seconds"].max(),
                reps=len(frame),
            )
        )
    rows[-1].ratio = rows[-1].value / rows[0].value
    rows.append(
        Row("ddp", f"{processes} vs 1 process(es): {agreement}", agreement.metric_rel, "").check(
            "float rounding only", agreement.holds
        )
    )
    rows.append(
        Row(
            "ddp",
            f"wall time of the whole run, {processes} vs 1 process(es)",
            wall[processes],
            "s",
            ratio=wall[processes] / wall[1],
        )
    )
    return rows


def environment(device: str) -> str:
    """One line naming the processor(s) and library versions."""
    if device == "cuda":
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        return f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}: {names}"
    return f"torch {torch.__version__}, CPU, {torch.get_num_threads()} threads"


def main(argv=None) -> int:
    """Run the checks on CUDA (or `--device cpu`), print the table, write the CSV; exit 1 if DDP disagrees."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--tiny", action="store_true", help="small model and batch, one repetition, no compile")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench" / "gpu_check.csv")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "No CUDA device on this machine: make gpu-check has nothing to run here (exit 0). "
            "`python -m benchmarks.gpu_check --device cpu --tiny` runs the same paths on CPU."
        )
        return 0
    print(environment(args.device))
    if args.tiny:
        rows = bench_accelerator(
            args.device, "cifar_resnet", 8, reps=1, warmup=1, variants=[v for v in VARIANTS if not v.compile]
        )
    else:
        rows = bench_accelerator(args.device)
    processes = torch.cuda.device_count() if args.device == "cuda" else 2
    if processes >= 2:
        rows += check_ddp(args.device, processes)
    else:
        print("One GPU visible: the DistributedDataParallel check needs two or more and is skipped.")
    print(format_table(rows))
    write_csv(rows, args.out)
    print(f"table in {args.out}")
    return 1 if any(r.passed is False for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
