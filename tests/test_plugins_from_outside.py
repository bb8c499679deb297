"""Every pluggable kind works from outside the package: each test copies a built-in plug-in into a module of its
own, renames it, names it by `_target_` and gets the built-in's numbers (docs/extending.md)."""

import ast
import os
import re
import subprocess
import sys

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from helpers import ROOT, hook_override, make_cfg, metrics_without_time, wait_for
from synermix.results.report import load_summaries, summarize
from synermix.run.training import run_training

FAST = (
    "method=synermix",
    "train.epochs=2",
    "train.average_last=1",
    "train.batch_size=16",
    "dataset.max_per_class=8",
    "train.cohesion_samples=20",
    "logger=csv",
)


def copy_module(tmp_path, monkeypatch, source: str, module: str, old: str, new: str) -> None:
    """synermix/<source> copied to <tmp_path>/<module>.py with the class `old` renamed `new` (every use), importable."""
    text = (ROOT / "synermix" / source).read_text()
    (tmp_path / f"{module}.py").write_text(re.sub(rf"\b{old}\b", new, text))
    monkeypatch.syspath_prepend(str(tmp_path))


def copy_class(tmp_path, monkeypatch, source: str, module: str, old: str, new: str, imports: str) -> None:
    """Only the class `old` of synermix/<source> (under `imports`) in <tmp_path>/<module>.py, renamed `new`: a
    plug-in written against the package's base class."""
    text = (ROOT / "synermix" / source).read_text()
    node = next(n for n in ast.parse(text).body if isinstance(n, ast.ClassDef) and n.name == old)
    body = ast.get_source_segment(text, node).replace(f"class {old}(", f"class {new}(", 1)
    (tmp_path / f"{module}.py").write_text(f"{imports}\n\n\n{body}\n")
    monkeypatch.syspath_prepend(str(tmp_path))


def test_a_dataset_of_your_own(tmp_path, monkeypatch):
    copy_module(tmp_path, monkeypatch, "data/digits.py", "my_data", "Digits", "MyDigits")
    mine = run_training(make_cfg(*FAST, "+dataset._target_=my_data.MyDigits", "dataset.name=my_digits"), tmp_path / "a")
    built_in = run_training(make_cfg(*FAST), tmp_path / "b")
    assert mine["dataset"] == "my_digits" and mine["status"] == "complete"
    assert metrics_without_time(tmp_path / "a") == metrics_without_time(tmp_path / "b")
    assert mine["final_acc"] == built_in["final_acc"]


def test_a_model_of_your_own(tmp_path, monkeypatch):
    copy_module(tmp_path, monkeypatch, "models/cifar_resnet.py", "my_model", "CifarResNet", "MyResNet")
    mine = run_training(make_cfg(*FAST, "+model._target_=my_model.MyResNet"), tmp_path / "a")
    run_training(make_cfg(*FAST), tmp_path / "b")
    assert mine["status"] == "complete"
    assert metrics_without_time(tmp_path / "a") == metrics_without_time(tmp_path / "b")
    assert torch.load(tmp_path / "a" / "weights.pt").keys() == torch.load(tmp_path / "b" / "weights.pt").keys()


def test_a_mixer_of_your_own_alone_and_in_a_switch_schedule(tmp_path, monkeypatch):
    copy_module(tmp_path, monkeypatch, "method/mixers/mixup.py", "my_mixers", "MixUp", "MyMixUp")
    mine = run_training(make_cfg(*FAST, "method.inter={_target_:my_mixers.MyMixUp,alpha:1.0}"), tmp_path / "a")
    run_training(make_cfg(*FAST), tmp_path / "b")
    assert mine["inter"] == "my_mixers.MyMixUp"
    assert metrics_without_time(tmp_path / "a") == metrics_without_time(tmp_path / "b")  # the same draws
    switch = ("method.switch_prob=0.5",)
    both = run_training(
        make_cfg(*FAST, *switch, "method.inter=[mixup,{_target_:my_mixers.MyMixUp,alpha:1.0}]"), tmp_path / "c"
    )
    run_training(make_cfg(*FAST, *switch, "method.inter=[mixup,mixup]"), tmp_path / "d")
    assert both["inter"] == "mixup+my_mixers.MyMixUp"
    assert metrics_without_time(tmp_path / "c") == metrics_without_time(tmp_path / "d")


def scalars(run_dir):
    """Every scalar TensorBoard holds for the run, read back with TensorBoard's own reader."""
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_a_tracker_of_your_own(tmp_path, monkeypatch):
    copy_module(tmp_path, monkeypatch, "run/trackers/tensorboard.py", "my_tracker", "TensorBoardTracker", "MyBoard")
    run_training(make_cfg(*FAST, "+logger.mine={_target_:my_tracker.MyBoard}"), tmp_path / "a")
    run_training(make_cfg(*FAST, "logger=tensorboard"), tmp_path / "b")
    mine, built_in = scalars(tmp_path / "a"), scalars(tmp_path / "b")
    assert "eval_acc" in mine and mine.keys() == built_in.keys()
    assert {k: [s for s, _ in v] for k, v in mine.items()} == {k: [s for s, _ in v] for k, v in built_in.items()}
    tracked = (tmp_path / "a" / "trackers.json").read_text()
    assert '"mine"' in tracked  # the run counts what the tracker logged, for a resume


def train(tmp_path, run_dir, *args) -> subprocess.Popen:
    """scripts/train.py with `args` into `run_dir`, one torch thread, the tmp modules and tests/helpers importable."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT / "tests")])}
    command = [sys.executable, "scripts/train.py", *args, f"hydra.run.dir={run_dir}"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finished(proc: subprocess.Popen) -> None:
    """Wait for `proc`; it must succeed."""
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]


def test_a_hook_of_your_own(tmp_path, monkeypatch):
    """The periodic checkpoint, copied: with it a run killed mid-epoch resumes from the step before the kill."""
    imports = "from synermix.train.hooks import Hook, TrainerView"
    copy_class(tmp_path, monkeypatch, "train/hooks.py", "my_hooks", "PeriodicCheckpoint", "MyCheckpoint", imports)
    args = [*FAST, "+hooks.ckpt={_target_:my_hooks.MyCheckpoint,every:1}"]
    run_dir = tmp_path / "killed"
    proc = train(tmp_path, run_dir, *args, hook_override("pause", "PauseAt", epoch=2, step=3))
    wait_for(run_dir / "paused", proc)
    proc.kill()
    proc.wait()
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert (state["epoch"], state["partial"]["step"]) == (1, 3)  # the copied hook checkpointed every step
    finished(train(tmp_path, run_dir, *args))
    finished(train(tmp_path, tmp_path / "uninterrupted", *FAST))
    assert metrics_without_time(run_dir) == metrics_without_time(tmp_path / "uninterrupted")


def test_a_metric_of_your_own_reaches_metrics_csv_the_summary_tensorboard_and_the_report(tmp_path, monkeypatch):
    imports = "from typing import Any\n\nimport torch\n\nfrom synermix.train.metrics import EpochLog, Metric"
    copy_class(tmp_path, monkeypatch, "train/metrics.py", "my_metrics", "GradNorm", "MyGradNorm", imports)
    out = tmp_path / "runs"
    mine = run_training(
        make_cfg(*FAST, "logger=tensorboard", f"out_root={out}", "+metrics.gn={_target_:my_metrics.MyGradNorm}"),
        out / "mine",
    )
    built_in = run_training(make_cfg(*FAST, "+metrics.gn=grad_norm"), tmp_path / "built_in")
    rows = metrics_without_time(out / "mine")
    assert rows == metrics_without_time(tmp_path / "built_in")
    norms = [float(r["grad_norm"]) for r in rows]
    assert all(n > 0 for n in norms) and len(norms) == 2
    assert mine["final_grad_norm"] == pytest.approx(norms[-1]) == built_in["final_grad_norm"]  # average_last=1
    assert [v for _, v in scalars(out / "mine")["grad_norm"]] == pytest.approx(norms)
    table = summarize(load_summaries(out))
    assert table["final_grad_norm_mean"].tolist() == pytest.approx([norms[-1]])
