"""Runs survive SIGKILL/SIGTERM with identical results, truncated checkpoints, NaN losses; bad input is refused
clearly."""

import json
import os
import re
import signal
import subprocess
import sys

import pytest
import torch

import synermix.method.intra as intra_module
from helpers import ROOT, TESTS, hook_override, make_cfg, metrics_without_time, wait_for
from helpers import datasets as fx
from helpers.hooks import CrashAt
from synermix.errors import RunError
from synermix.run.training import run_training

SCRIPT = str(ROOT / "scripts" / "train.py")
RUN = ["method=synermix_mm", "train.epochs=3", "train.average_last=2", "train.batch_size=64"]


def cli(run_dir, *args, env=None, script=SCRIPT, **kwargs):
    return subprocess.Popen(
        [sys.executable, str(script), *RUN, *args, f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(TESTS), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


@pytest.fixture(scope="session")  # once per test process (`make test`: one xdist worker runs this file)
def reference(tmp_path_factory):
    """An uninterrupted CLI run of RUN."""
    run_dir = tmp_path_factory.mktemp("ref") / "run"
    proc = cli(run_dir)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return run_dir


def test_sigkill_mid_epoch_then_rerun_gives_identical_results(reference, tmp_path):
    run_dir = tmp_path / "run"
    # Mid-epoch checkpoints every 5 steps; killed at epoch 2, step 7: resumes from step 5 of epoch 2.
    proc = cli(run_dir, "train.checkpoint_every_steps=5", hook_override("pause", "PauseAt", epoch=2, step=7))
    wait_for(run_dir / "paused", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    saved = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert len(saved["metrics"]) == 1 and saved["partial"]["step"] == 5
    rerun = cli(run_dir, "train.checkpoint_every_steps=5")
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert metrics_without_time(run_dir) == metrics_without_time(reference)
    assert (run_dir / "summary.json").read_bytes() == (reference / "summary.json").read_bytes()


# both in `make test-all`: the SIGUSR2 test below runs the same stop-checkpoint-resume path in `make test`
@pytest.mark.parametrize(
    "signum",
    [pytest.param(signal.SIGTERM, marks=pytest.mark.slow), pytest.param(signal.SIGINT, marks=pytest.mark.slow)],
)
def test_stop_signal_checkpoints_exits_nonzero_and_resumes_identically(signum, reference, tmp_path):
    run_dir = tmp_path / "run"
    proc = cli(run_dir, hook_override("pause", "PauseAt", epoch=2, step=4))
    wait_for(run_dir / "paused", proc)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum
    lines = [ln for ln in err.splitlines() if ln.startswith("Interrupted")]
    assert (
        len(lines) == 1
        and f"Interrupted by {signal.Signals(signum).name} at epoch 2, step 4" in lines[0]
        and "Re-run the same command to resume" in lines[0]
    )
    assert "Traceback" not in err
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["partial"]["step"] == 4
    rerun = cli(run_dir)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert metrics_without_time(run_dir) == metrics_without_time(reference)
    assert (run_dir / "summary.json").read_bytes() == (reference / "summary.json").read_bytes()


# SLURM pre-emption: submitit sends SIGUSR2 and requeues from its handler.
def test_sigusr2_checkpoints_the_exact_step_then_hands_over_to_the_requeue_handler(reference, tmp_path):
    run_dir, marker = tmp_path / "run", tmp_path / "requeued"
    proc = cli(
        run_dir,
        hook_override("pause", "PauseAt", epoch=2, step=4),
        script=TESTS / "helpers" / "requeue_train.py",
        env={"REQUEUE_MARKER": str(marker), "REQUEUE_RUN_DIR": str(run_dir)},
    )
    wait_for(run_dir / "paused", proc)
    proc.send_signal(signal.SIGUSR2)
    proc.communicate(timeout=120)
    assert proc.returncode == 3 and marker.read_text() == "requeued checkpoint=True\n"
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["partial"]["step"] == 4  # nothing lost
    rerun = cli(run_dir)  # the requeued job
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert metrics_without_time(run_dir) == metrics_without_time(reference)


def test_truncated_checkpoint_falls_back_to_the_previous_one(tmp_path):
    cfg = make_cfg(*RUN)
    run_training(cfg, tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):  # a crash right after two checkpointed epochs
        run_training(cfg, tmp_path / "cut", hooks=[CrashAt(epoch=3)])
    ckpt = tmp_path / "cut" / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])  # as a kill mid-write on a bad disk would
    run_training(cfg, tmp_path / "cut")
    assert metrics_without_time(tmp_path / "cut") == metrics_without_time(tmp_path / "full")
    assert (tmp_path / "cut" / "summary.json").read_bytes() == (tmp_path / "full" / "summary.json").read_bytes()


def test_unreadable_checkpoints_are_refused_by_name(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"garbage")
    (tmp_path / "checkpoint.prev.pt").write_bytes(b"more garbage")
    with pytest.raises(RunError, match=r"checkpoint.pt is unreadable.*checkpoint.prev.pt is unreadable"):
        run_training(make_cfg(*RUN), tmp_path)


def test_nan_loss_stops_with_epoch_step_and_term_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    steps_per_epoch = 1437 // 64
    calls = {"n": 0}
    real = intra_module.intra_class_loss

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] == steps_per_epoch + 3 else loss

    monkeypatch.setattr(intra_module, "intra_class_loss", poisoned)
    with pytest.raises(RunError) as info:
        run_training(make_cfg(*RUN), tmp_path)
    message = str(info.value)
    assert f"epoch 2, step 3 of {steps_per_epoch}" in message and "L_intra" in message and "L_inter" not in message
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert len(saved["metrics"]) == 1 and saved["partial"] is None
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "failed" and "epoch 2, step 3" in summary["error"]


def run_cli_error(*args, cwd=ROOT):
    proc = subprocess.run([sys.executable, SCRIPT, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc.stderr


def test_unknown_group_choices_are_listed(tmp_path):
    err = run_cli_error("dataset=cifar1000", f"hydra.run.dir={tmp_path}")
    assert "cifar1000" in err and "cifar100" in err and "oxford_pet" in err
    err = run_cli_error("model=resnet19", f"hydra.run.dir={tmp_path}")
    assert "resnet19" in err and "swin_t" in err


def test_dataset_root_of_another_layout_is_refused(tmp_path):
    fx.write_food101(tmp_path / "data")
    err = run_cli_error("dataset=cifar100", f"dataset.root={tmp_path / 'data'}", f"hydra.run.dir={tmp_path / 'run'}")
    assert "CIFAR-100 not found" in err and "cifar-100-python" in err
    assert (tmp_path / "run" / "error.txt").exists()


def test_corrupt_image_in_a_worker_is_named_without_a_traceback(tmp_path):
    root = fx.write_oxford_pet(tmp_path / "pets")
    (root / "images" / "Bengal_2.jpg").write_bytes(b"\xff\xd8 broken")
    err = run_cli_error(
        "dataset=oxford_pet",
        f"dataset.root={root}",
        "dataset.image_size=32",
        "dataset.eval_resize=36",
        "model=cifar_resnet",
        "model.pretrained=false",
        "train.num_workers=2",
        "train.epochs=1",
        "train.average_last=1",
        "train.batch_size=12",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    line = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(line) == 1 and "Bengal_2.jpg" in line[0] and "Caught" not in line[0]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "failed"


def test_weights_and_checkpoints_load_safely_and_nothing_reaches_a_shell():
    sources = [p for p in (ROOT / "synermix").rglob("*.py")] + list((ROOT / "scripts").glob("*.py"))
    for path in sources:
        text = path.read_text()
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, (path, call)
        assert not re.search(r"(?<![.\w])(eval|exec)\(|os\.system|shell=True|subprocess", text), path
