"""The CUDA-only switches exercised on CPU: AMP (bfloat16 autocast; float16 with a GradScaler), channels_last,
SyncBatchNorm's refusal, the benchmark's accelerator section and make gpu-check."""

import subprocess
import sys

import pandas as pd
import pytest
import torch

from benchmarks import gpu_check
from benchmarks.accelerator import VARIANTS, bench_accelerator
from helpers import ROOT, make_cfg, metrics_without_time
from helpers.hooks import CrashAt
from synermix.errors import ConfigError
from synermix.run.training import run_training

FAST = (
    "method=synermix",
    "train.epochs=2",
    "train.average_last=1",
    "train.batch_size=32",
    "dataset.max_per_class=16",
    "train.cohesion_samples=0",
)


def test_float16_amp_with_grad_scaler_and_channels_last_trains_and_resumes_exactly_on_cpu(tmp_path):
    cfg = make_cfg(*FAST, "amp=true", "amp_dtype=float16", "train.channels_last=true", "train.keep_checkpoints=true")
    run_training(cfg, tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        run_training(cfg, tmp_path / "cut", hooks=[CrashAt(epoch=2, step=2)])
    run_training(cfg, tmp_path / "cut")
    assert metrics_without_time(tmp_path / "cut") == metrics_without_time(tmp_path / "full")
    rows = pd.read_csv(tmp_path / "full" / "metrics.csv")
    assert rows["train_loss"].between(0, 10).all() and (rows["eval_acc"] > 20).all()  # chance: 10%
    scaler = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)["scaler"]
    assert scaler is not None and scaler["scale"] > 0  # the GradScaler's state travels with the checkpoint


def test_bfloat16_amp_changes_the_numbers_but_trains_on_cpu(tmp_path):
    run_training(make_cfg(*FAST, "amp=true"), tmp_path / "bf16")
    run_training(make_cfg(*FAST), tmp_path / "fp32")
    bf16, fp32 = (pd.read_csv(tmp_path / d / "metrics.csv") for d in ("bf16", "fp32"))
    assert (bf16["eval_acc"] > 20).all() and bf16["train_loss"].between(0, 10).all()
    assert not bf16["train_loss"].equals(fp32["train_loss"])  # autocast really ran in bfloat16
    assert bf16["train_loss"].iloc[0] == pytest.approx(fp32["train_loss"].iloc[0], rel=0.05)


def test_sync_bn_is_refused_on_cpu_with_one_message(tmp_path):
    with pytest.raises(
        ConfigError, match=r"train.sync_bn=true needs CUDA devices .* device=cpu; set train.sync_bn=false"
    ):
        run_training(make_cfg(*FAST, "train.sync_bn=true", "device=cpu"), tmp_path)


def test_accelerator_benchmark_section_runs_every_variant_on_cpu():
    variants = [v for v in VARIANTS if not v.compile]  # compile: minutes of CPU compilation; CUDA's gpu-check runs it
    rows = bench_accelerator("cpu", "cifar_resnet", batch_size=4, reps=1, warmup=0, variants=variants)
    assert [r.name.split(": ")[1] for r in rows] == [v.name for v in variants]
    assert all(r.value > 0 and r.ratio > 0 for r in rows) and rows[0].ratio == 1.0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA path")
def test_gpu_check_without_cuda_says_so_and_exits_0(capsys, tmp_path):
    assert gpu_check.main(["--out", str(tmp_path / "table.csv")]) == 0
    assert "No CUDA device on this machine" in capsys.readouterr().out and not (tmp_path / "table.csv").exists()


@pytest.mark.slow
def test_gpu_check_on_cpu_runs_every_path_and_ddp_agrees(tmp_path):
    out = tmp_path / "gpu_check.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check", "--device", "cpu", "--tiny", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = pd.read_csv(out)
    assert set(table["section"]) == {"accelerator cpu", "ddp"} and table["passed"].dropna().astype(bool).all()
