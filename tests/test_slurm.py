"""SLURM as far as one machine allows: Hydra's submitit launcher with submitit's local executor (a sweep, and a
pre-empted job that is requeued and finishes exactly), and two processes started with SLURM's task variables."""

import os
import socket
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pandas as pd
import pytest

from benchmarks.agreement import AGREEMENT_RUN, compare_runs
from helpers import ROOT, TESTS, hook_override
from synermix.train.distributed import export_task_environment

SWEEP = (
    "method=baseline,intra",
    "train.epochs=2",
    "train.average_last=1",
    "dataset.max_per_class=20",
    "train.cohesion_samples=0",
)


def sweep(out_root: Path, *args: str) -> subprocess.CompletedProcess:
    """scripts/train.py -m with `args`, run dirs under `out_root` (test hooks importable)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "-m", *SWEEP, *args, f"out_root={out_root}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(TESTS), "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def metrics_by_run(out_root: Path) -> dict:
    """Each run directory's metrics.csv without the wall-clock column (as text), keyed by its path below `out_root`."""
    return {
        str(p.parent.relative_to(out_root)): pd.read_csv(p).drop(columns="epoch_seconds").to_csv(index=False)
        for p in sorted(out_root.rglob("metrics.csv"))
    }


@pytest.mark.slow
def test_submitit_local_sweep_with_a_preempted_job_equals_the_basic_launchers_sweep(tmp_path):
    sweep(tmp_path / "basic")
    # Each job sends itself SIGUSR2 (submitit's pre-emption signal) after step 3 of epoch 2, once: our handler
    # checkpoints that step, hands the signal to submitit's, which checkpoints the job and requeues it.
    proc = sweep(
        tmp_path / "submitit",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=60",
        hook_override("preempt", "SignalAt", epoch=2, step=3),
    )
    assert "Sweep finished: 2 job(s), 2 complete, 0 failed." in proc.stdout
    expected = metrics_by_run(tmp_path / "basic")
    assert len(expected) == 2 and metrics_by_run(tmp_path / "submitit") == expected
    logs = [p.read_text() for p in (tmp_path / "submitit" / ".submitit").rglob("*_log.out")]
    assert len(logs) == 2
    for log in logs:  # each job was pre-empted, requeued, and resumed at the step it was stopped at
        assert "this job is preempted" in log and "Requeued job" in log and "at epoch 2, step 3." in log
    assert len(list((tmp_path / "submitit").rglob("signalled"))) == 2


def _slurm_task(rank: int, run_dir: Path, port: int, *args: str) -> subprocess.Popen:
    """scripts/train.py as task `rank` of a 2-task srun step on one node, with the variables SLURM sets."""
    slurm = {
        "SLURM_JOB_ID": "4242",
        "SLURM_NTASKS": "2",
        "SLURM_STEP_NUM_TASKS": "2",
        "SLURM_PROCID": str(rank),
        "SLURM_LOCALID": str(rank),
        "SLURM_NODEID": "0",
        "SLURM_JOB_NUM_NODES": "1",
        "SLURM_JOB_NODELIST": "localhost",
        "MASTER_PORT": str(port),
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "train.py"), *args, f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        env={**os.environ, **slurm},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_two_tasks_started_with_slurms_variables_compute_what_one_process_computes(tmp_path):
    args = (*AGREEMENT_RUN, "device=cpu")
    single = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), *args, f"hydra.run.dir={tmp_path / 'one'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    tasks = [_slurm_task(rank, tmp_path / "two", port, *args) for rank in range(2)]
    for task in tasks:
        _, err = task.communicate(timeout=600)
        assert task.returncode == 0, err[-3000:]
    agreement = compare_runs(tmp_path / "one", tmp_path / "two")
    assert agreement.holds, str(agreement)


def test_slurm_task_variables_become_torchs_rendezvous_variables():
    slurm = {
        "SLURM_JOB_ID": "777",
        "SLURM_NTASKS": "8",
        "SLURM_STEP_NUM_TASKS": "8",
        "SLURM_PROCID": "5",
        "SLURM_LOCALID": "1",
        "SLURM_NODEID": "1",
        "SLURM_JOB_NUM_NODES": "2",
        "SLURM_JOB_NODELIST": "gpu[07-08]",
    }
    with mock.patch.dict(os.environ, slurm):  # restores the whole environment, variables added here included
        for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SUBMITIT_EXECUTOR"):
            os.environ.pop(key, None)
        export_task_environment()
        assert (os.environ["RANK"], os.environ["WORLD_SIZE"], os.environ["LOCAL_RANK"]) == ("5", "8", "1")
        assert os.environ["MASTER_ADDR"] == "gpu07" and 20000 <= int(os.environ["MASTER_PORT"]) <= 60000
        del os.environ["WORLD_SIZE"]
        os.environ["SLURM_STEP_NUM_TASKS"] = "1"  # the batch script itself, or one task: no process group
        export_task_environment()
        assert "WORLD_SIZE" not in os.environ
