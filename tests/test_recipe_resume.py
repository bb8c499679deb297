"""The whole recipe on a timm model and an image folder (AdamW, cosine with warmup, clipping, EMA, mix_prob,
switch_prob, mix_off_epoch, TrivialAugment, random erasing): it trains, and a SIGKILL-resumed run equals the
uninterrupted one, EMA columns included; under torchrun every process holds the same EMA."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd

from helpers import ROOT, hook_override, metrics_without_time, wait_for
from helpers.datasets import write_image_folder

CLASSES = ("ant", "bee", "cat", "dog", "eel", "fox", "gnu")
RECIPE = (
    "model=timm",
    "model.arch=resnet10t",
    "method=synermix",
    "method.inter=[mixup,cutmix]",
    "method.switch_prob=0.5",
    "method.mix_prob=0.8",
    "method.mix_off_epoch=3",
    "train.optimizer=adamw",
    "train.lr=0.002",
    "train.weight_decay=0.05",
    "train.decay_norm_and_bias=false",
    "train.scheduler=cosine",
    "train.warmup_epochs=2",
    "train.min_lr=1e-5",
    "train.clip_grad_norm=1.0",
    "train.ema.decay=0.9",
    "dataset.augment.policy=trivialaugment",
    "dataset.augment.random_erasing=0.25",
    "train.epochs=4",
    "train.batch_size=14",
    "train.cohesion_samples=0",
    "train.checkpoint_every_steps=1",
    "device=cpu",
)


def train(run_dir, *args):
    return subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "train.py"), *args, f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "tests"), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_full_recipe_trains_and_a_sigkill_resume_equals_the_uninterrupted_run(tmp_path):
    folder = write_image_folder(tmp_path / "data", CLASSES, train_per_class=6, test_per_class=3)
    args = (
        "dataset=image_folder",
        f"dataset.root={folder}",
        "dataset.image_size=32",
        "dataset.eval_resize=36",
        *RECIPE,
    )
    whole = train(tmp_path / "whole", *args)
    assert whole.wait(timeout=600) == 0, whole.stderr.read()[-3000:]
    killed = train(tmp_path / "killed", *args, hook_override("pause", "PauseAt", epoch=3, step=2))
    wait_for(tmp_path / "killed" / "paused", killed)  # in the epoch where mixing is off, past the warmup
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    resumed = train(tmp_path / "killed", *args)
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()[-3000:]
    rows = metrics_without_time(tmp_path / "whole")
    assert rows == metrics_without_time(tmp_path / "killed")
    metrics = pd.read_csv(tmp_path / "whole" / "metrics.csv")
    assert {"eval_acc_ema", "eval_ece_ema", "eval_nll_ema"} <= set(metrics.columns)
    assert metrics["lr"].tolist()[:3] == [0.002 * 0.01, 0.002 * (0.01 + 0.99 / 2), 0.002]  # warmup, then cosine
    summary = json.loads((tmp_path / "whole" / "summary.json").read_text())
    assert summary["status"] == "complete" and 0 <= summary["final_acc_ema"] <= 100
    assert summary["inter"] == "mixup+cutmix"
    evaluated = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "evaluate.py"), str(tmp_path / "whole"), "--weights", "ema"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    scored = json.loads((tmp_path / "whole" / "eval" / "test_ema" / "metrics.json").read_text())
    assert (scored["weights"], scored["top1"]) == ("weights_ema.pt", metrics["eval_acc_ema"].iloc[-1])


def test_every_process_holds_the_same_ema(tmp_path):
    import torch

    run_dir = tmp_path / "ddp"
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "torchrun"),
            "--standalone",
            "--nproc_per_node=2",
            str(ROOT / "scripts" / "train.py"),
            "method=synermix",
            "train.epochs=1",
            "train.batch_size=64",
            "dataset.max_per_class=30",
            "train.ema.decay=0.8",
            "train.cohesion_samples=0",
            "device=cpu",
            hook_override("digest", "EmaDigest"),
            f"hydra.run.dir={run_dir}",
        ],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "tests"), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    first, second = (torch.load(run_dir / f"ema_rank{r}.pt", weights_only=True)["module"] for r in (0, 1))
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    assert "eval_acc_ema" in pd.read_csv(run_dir / "metrics.csv").columns
