"""Finished runs stay finished, output folders that cannot be written are one message, and the report survives
a damaged run: each case reproduces what a user met (a downgraded summary, a traceback, a lost epoch)."""

import errno
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from helpers import ROOT, make_cfg, metrics_without_time
from helpers import datasets as fx
from helpers.hooks import CrashAt
from synermix.errors import RunError
from synermix.run.training import run_training
from synermix.store.rundir import ForeignRunDir, UnreadableRunDir, UntouchedRunDir
from synermix.train.hooks import Hook

FAST = (
    "method=synermix",
    "train.epochs=2",
    "train.average_last=1",
    "train.batch_size=16",
    "dataset.max_per_class=8",
    "train.cohesion_samples=0",
)
SCRIPT = str(ROOT / "scripts" / "train.py")


def cli(*args, cwd=ROOT):
    """scripts/train.py with `args`: the finished process."""
    return subprocess.run(
        [sys.executable, SCRIPT, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


@pytest.fixture
def finished(tmp_path):
    """A complete run directory of FAST."""
    run_training(make_cfg(*FAST), tmp_path / "run")
    return tmp_path / "run"


def snapshot(run_dir):
    """Every file of the run directory and its bytes (.hydra/, train.log and .lock included)."""
    return {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}


@pytest.mark.parametrize("damage", ["summary", "config"])
def test_a_finished_run_with_an_unreadable_file_is_left_as_it_is(finished, damage):
    target = finished / ("summary.json" if damage == "summary" else "config.yaml")
    target.write_text('{"status": "compl' if damage == "summary" else "train: [unclosed\n  - {")
    before = snapshot(finished)
    with pytest.raises(UnreadableRunDir, match=f"{target.name} cannot be read.*nothing in .* was changed"):
        run_training(make_cfg(*FAST), finished)
    assert snapshot(finished) == before


def test_the_command_line_says_it_in_one_paragraph_with_exit_code_2(finished):
    (finished / "summary.json").write_text("not json")
    before = snapshot(finished)
    proc = cli(*FAST, f"hydra.run.dir={finished}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "summary.json cannot be read" in proc.stderr and snapshot(finished) == before


def test_features_that_cannot_be_recomputed_leave_the_finished_run_complete(tmp_path):
    root = fx.write_fashion_mnist(tmp_path / "data", per_class=4, test_per_class=2)
    args = (
        "dataset=fashion_mnist",
        "model=cifar_resnet",
        "train.epochs=1",
        "train.average_last=1",
        "train.batch_size=16",
        "train.cohesion_samples=10",
    )
    run_training(make_cfg(*args, f"dataset.root={root}"), tmp_path / "run")
    (tmp_path / "run" / "features.npz").unlink()
    before = snapshot(tmp_path / "run")
    with pytest.raises(UntouchedRunDir, match="is complete, but its missing features.npz could not be recomputed"):
        run_training(make_cfg(*args, f"dataset.root={tmp_path / 'moved'}"), tmp_path / "run")
    assert snapshot(tmp_path / "run") == before
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "complete"


def test_a_finished_run_without_config_yaml_is_checked_against_its_summary(finished):
    (finished / "config.yaml").unlink()
    before = snapshot(finished)
    with pytest.raises(ForeignRunDir, match=r"method: 'synermix' -> 'baseline'.*lr: 0.05 -> 0.01"):
        run_training(make_cfg(*FAST, "method=baseline", "train.lr=0.01"), finished)
    assert snapshot(finished) == before
    assert run_training(make_cfg(*FAST), finished)["status"] == "complete"  # its own config: still finished
    assert snapshot(finished) == before


@pytest.mark.parametrize("make_bad", ["proc", "file"])
def test_an_output_folder_that_cannot_be_written_is_one_paragraph(make_bad, tmp_path):
    out_root = "/proc/synermix-test" if make_bad == "proc" else tmp_path / "a-file"
    if make_bad == "file":
        out_root.write_text("")
    proc = cli(*FAST, f"out_root={out_root}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and str(out_root) in proc.stderr
    assert proc.stderr.strip().startswith("error:") and proc.stderr.strip().count("\n") == 0


class DiskFull(Hook):
    """From the end of epoch `epoch` on, every file write of the run fails with ENOSPC."""

    def __init__(self, monkeypatch, epoch: int = 1) -> None:
        self.monkeypatch, self.epoch = monkeypatch, epoch

    def after_epoch(self, trainer) -> None:
        if trainer.epoch == self.epoch:

            def full(fd):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            self.monkeypatch.setattr(os, "fsync", full)


def test_a_full_disk_is_one_paragraph_and_damages_nothing_written(tmp_path, monkeypatch):
    cfg = make_cfg(*FAST, "train.epochs=3")
    run_training(cfg, tmp_path / "reference")
    with pytest.raises(RunError) as info:
        run_training(cfg, tmp_path / "run", hooks=[DiskFull(monkeypatch)])
    message = str(info.value)
    assert "No space left on device" in message and str(tmp_path / "run") in message and "\n" not in message
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "running" and summary["epochs_completed"] == 1  # epoch 1's files intact
    monkeypatch.undo()  # space freed: the run resumes from epoch 1's checkpoint to the same numbers
    run_training(cfg, tmp_path / "run")
    assert metrics_without_time(tmp_path / "run") == metrics_without_time(tmp_path / "reference")


def test_unreadable_checkpoints_keep_the_epochs_and_never_suggest_the_unsafe_loader(tmp_path):
    cfg = make_cfg(*FAST)
    with pytest.raises(KeyboardInterrupt):
        run_training(cfg, tmp_path / "run", hooks=[CrashAt(epoch=2, step=1)])
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        torch.save({"config": {}, "metrics": [], "model": os.system}, tmp_path / "run" / name)  # not weights
    with pytest.raises(RunError) as info:
        run_training(cfg, tmp_path / "run")
    assert "weights_only" not in str(info.value) and "checkpoint.prev.pt is unreadable" in str(info.value)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["epochs_completed"] == 1


def report(root):
    """scripts/report.py on `root`: the finished process."""
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "report.py"), str(root)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_report_flags_an_unreadable_summary_and_still_prints_its_table(tmp_path):
    for seed in (0, 1):
        run_training(make_cfg(*FAST, f"seed={seed}", "train.epochs=1"), tmp_path / "runs" / f"seed{seed}")
    (tmp_path / "runs" / "seed1" / "summary.json").write_text("")
    proc = report(tmp_path / "runs")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert "1 unreadable summary.json" in proc.stdout  # the table's flag column, on the run's configuration
    assert f"{tmp_path / 'runs' / 'seed1' / 'summary.json'} is unreadable" in proc.stdout  # and one line by path


def test_a_report_of_failed_runs_only_prints_no_empty_dataframe(tmp_path):
    (tmp_path / "runs" / "bad").mkdir(parents=True)
    (tmp_path / "runs" / "bad" / "error.txt").write_text("ConfigError: Invalid configuration: train.lr=-1 ...\n")
    proc = report(tmp_path / "runs")
    assert proc.returncode == 0 and "Empty DataFrame" not in proc.stdout and "train.lr=-1" in proc.stdout


def test_an_interrupted_sweep_leaves_no_job_log_in_out_root(tmp_path):
    code = textwrap.dedent(f"""
        from omegaconf import OmegaConf
        from synermix.cli.sweep import SweepReport
        SweepReport().on_multirun_start(OmegaConf.create({{"hydra": {{"sweep": {{"dir": "{tmp_path}"}}}}}}))
        raise SystemExit(130)  # as scripts/train.py does on SIGINT
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 130 and list(tmp_path.iterdir()) == []
