"""End-to-end runs on the bundled digits data: files written, numbers in range, determinism, resume."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from helpers import ROOT, hook_override, make_cfg
from helpers.hooks import CrashAfterEpoch, CrashAt, Trains
from synermix.data import build_data, load_splits
from synermix.errors import ConfigError
from synermix.run.training import METRIC_COLUMNS, RunError, loading_of, run_training
from synermix.seeding import RunSeeds

METHODS = [
    "baseline",
    "intra",
    "intra_aug",
    "mixup",
    "manifold_mixup",
    "synermix",
    "synermix_mm",
]  # CutMix: test_bring_your_own
FAST = ("train.epochs=2", "train.average_last=2", "train.batch_size=64")


def read_metrics(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("method", METHODS)
def test_every_preset_trains_and_writes_its_files(method, tmp_path):
    cfg = make_cfg(f"method={method}", *FAST)
    summary = run_training(cfg, tmp_path)
    rows = read_metrics(tmp_path)
    assert list(rows[0].keys()) == list(METRIC_COLUMNS) and len(rows) == 2
    for r in rows:
        assert 0 <= float(r["eval_acc"]) <= 100 and float(r["train_loss"]) > 0 and float(r["epoch_seconds"]) > 0
        assert float(r["lr"]) == pytest.approx(0.05)
        assert (r["train_loss_intra"] != "") == (
            method in ("intra", "intra_aug", "synermix", "synermix_mm", "synermix_cutmix")
        )
        assert r["train_loss_inter"] != ""
        assert -1 <= float(r["silhouette"]) <= 1 and float(r["davies_bouldin"]) > 0
        assert float(r["cohesion_ratio"]) == pytest.approx(float(r["intra_dist"]) / float(r["centroid_dist"]))
        assert 0 <= float(r["eval_ece"]) <= 1 and float(r["eval_nll"]) > 0
    assert float(rows[-1]["eval_acc"]) > 30  # well above chance (10%) after two epochs
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved == summary
    accs = [float(r["eval_acc"]) for r in rows]
    assert saved["final_acc"] == pytest.approx(sum(accs) / 2)
    assert saved["best_acc"] == pytest.approx(max(accs))
    for key in ("ece", "nll"):  # averaged over the same final epochs as the accuracy
        assert saved[f"final_{key}"] == pytest.approx(sum(float(r[f"eval_{key}"]) for r in rows) / 2)
    assert (saved["epochs_completed"], saved["method"], saved["seed"], saved["phase"], saved["status"]) == (
        2,
        method,
        0,
        "test",
        "complete",
    )
    assert saved["beta"] == cfg.method.beta
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert (tmp_path / "weights.pt").stat().st_size > 0  # final weights; the resume state is gone
    assert not (tmp_path / "checkpoint.pt").exists() and not (tmp_path / "checkpoint.prev.pt").exists()
    assert "name: " + method in (tmp_path / "config.yaml").read_text()


def test_same_seed_gives_identical_metrics_and_other_seed_differs(tmp_path):
    def run(seed, name):
        run_training(make_cfg("method=synermix_mm", f"seed={seed}", *FAST), tmp_path / name)
        rows = [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in read_metrics(tmp_path / name)]
        return rows, (tmp_path / name / "summary.json").read_bytes()

    a, b, c = run(1, "a"), run(1, "b"), run(2, "c")
    assert a == b
    assert a[0] != c[0]


def test_interrupted_run_resumes_to_the_same_result(tmp_path):
    cfg = make_cfg("method=synermix", "train.epochs=3", "train.average_last=2", "train.batch_size=64")
    run_training(cfg, tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):  # killed during epoch 2, after epoch 1 was checkpointed
        run_training(cfg, tmp_path / "cut", hooks=[CrashAt(epoch=2, step=5)])
    assert len(read_metrics(tmp_path / "cut")) == 1
    run_training(cfg, tmp_path / "cut")

    strip = lambda rows: [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in rows]  # noqa: E731
    assert strip(read_metrics(tmp_path / "cut")) == strip(read_metrics(tmp_path / "full"))
    assert (tmp_path / "cut" / "summary.json").read_bytes() == (tmp_path / "full" / "summary.json").read_bytes()


def test_finished_run_is_skipped_and_changed_config_is_refused(tmp_path, caplog):
    cfg = make_cfg("method=intra", "train.epochs=1")  # digits' default average_last=3 shortens to the 1 epoch
    with caplog.at_level("INFO", logger="synermix.run.training"):
        first = run_training(cfg, tmp_path)
    assert first["average_last"] == 1 and first["final_acc"] == first["best_acc"]  # the one epoch's accuracy
    assert "the default 3 is more than train.epochs=1; final_acc averages all 1 epochs" in caplog.text
    files = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir() if p.is_file() and p.name != ".lock"}
    steps = Trains()
    assert run_training(cfg, tmp_path, hooks=[steps]) == first
    assert steps.steps == 0  # decided from summary.json: nothing retrained, nothing rewritten
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir() if p.is_file() and p.name != ".lock"} == files
    with pytest.raises(RunError, match=r"train.lr: 0.05 -> 0.2"):
        run_training(make_cfg("method=intra", "train.epochs=1", "train.average_last=1", "train.lr=0.2"), tmp_path)
    assert json.loads((tmp_path / "summary.json").read_text()) == first  # the refusal touched nothing there
    assert not (tmp_path / "error.txt").exists()


def test_a_kill_after_the_last_epoch_is_finished_without_retraining(tmp_path):
    cfg = make_cfg("method=synermix", *FAST)
    full = run_training(cfg, tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):  # after the last epoch's checkpoint, before completion
        run_training(cfg, tmp_path / "cut", hooks=[CrashAfterEpoch(2)])
    cut = tmp_path / "cut"
    assert json.loads((cut / "summary.json").read_text())["status"] == "running"
    assert (cut / "features.npz").exists() and (cut / "checkpoint.pt").exists() and not (cut / "weights.pt").exists()
    steps = Trains()
    assert run_training(cfg, cut, hooks=[steps]) == full and steps.steps == 0
    assert (cut / "weights.pt").exists() and not (cut / "checkpoint.pt").exists()
    assert (cut / "summary.json").read_bytes() == (tmp_path / "full" / "summary.json").read_bytes()


def test_hooks_from_the_config_are_instantiated_and_bad_ones_named(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_training(
            make_cfg("method=baseline", *FAST, hook_override("crash", "CrashAt", epoch=1, step=2)), tmp_path / "a"
        )
    assert not (tmp_path / "a" / "metrics.csv").exists()
    with pytest.raises(ConfigError, match=r"hooks.bad='helpers.hooks.Nope' cannot be instantiated"):
        run_training(make_cfg("method=baseline", *FAST, "+hooks.bad={_target_:helpers.hooks.Nope}"), tmp_path / "b")


def test_channels_last_is_set_once_by_the_streams_and_keeps_the_numbers(tmp_path):
    cfg = make_cfg("method=synermix_mm", *FAST, "train.channels_last=true")
    data = build_data(cfg.dataset, loading_of(cfg), "cpu", RunSeeds(0), with_original=True)
    batch = next(iter(data.train.epoch(0)))
    x, _ = next(iter(data.eval))
    for t in (batch.x_orig, batch.x_aug, x):
        assert t.is_contiguous(memory_format=torch.channels_last)
    fast = run_training(cfg, tmp_path / "nhwc")
    plain = run_training(make_cfg("method=synermix_mm", *FAST), tmp_path / "nchw")
    rows = zip(read_metrics(tmp_path / "nhwc"), read_metrics(tmp_path / "nchw"))
    for a, b in rows:  # the same computation in another layout: rounding differs, then grows over the steps
        assert float(a["train_loss"]) == pytest.approx(float(b["train_loss"]), rel=0.02)
    assert fast["final_acc"] == pytest.approx(plain["final_acc"], abs=2.0)


def test_phase_val_evaluates_on_a_stratified_tenth_of_the_training_set(tmp_path):
    test = load_splits(make_cfg().dataset, "test", 0.1, 0)
    val = load_splits(make_cfg().dataset, "val", 0.1, 0)
    assert len(test.train.labels) == 1437 and len(test.eval.labels) == 360
    assert len(val.train.labels) + len(val.eval.labels) == 1437 and len(val.eval.labels) == 144
    counts = np.bincount(val.eval.labels, minlength=10)
    assert counts.min() >= 13 and counts.max() <= 16  # stratified: ~14.4 per class
    summary = run_training(make_cfg("phase=val", "train.epochs=1", "train.average_last=1"), tmp_path)
    assert summary["phase"] == "val"


def test_cli_single_run_then_report(tmp_path):
    script = str(ROOT / "scripts" / "train.py")
    run_dir = tmp_path / "one"
    subprocess.run(
        [
            sys.executable,
            script,
            "method=mixup",
            "train.epochs=1",
            f"hydra.run.dir={run_dir}",
        ],  # a newcomer's first run
        check=True,
        cwd=ROOT,
        timeout=300,
        capture_output=True,
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["method"], summary["average_last"], summary["status"]) == ("mixup", 1, "complete")
    report = subprocess.run(  # sweeps, their run directories and reruns: tests/test_protocol_and_sweeps.py
        [sys.executable, str(ROOT / "scripts" / "report.py"), str(tmp_path)],
        check=True,
        cwd=ROOT,
        timeout=120,
        capture_output=True,
        text=True,
    )
    assert "mixup" in report.stdout and "ECE (%)" in report.stdout
    assert (tmp_path / "results.csv").exists() and (tmp_path / "results.md").exists()


def test_tensorboard_has_scalars_and_hparams(tmp_path):
    run_training(make_cfg("method=synermix", *FAST), tmp_path)
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {
        "eval_acc",
        "eval_ece",
        "eval_nll",
        "train_loss",
        "train_loss_intra",
        "train_loss_inter",
        "lr",
        "final_acc",
        "final_ece",
        "final_nll",
    } <= scalars
    assert [e.step for e in events.Scalars("eval_acc")] == [1, 2]
    content = events.PluginTagToContent("hparams")
    assert "_hparams_/experiment" in content and "_hparams_/session_start_info" in content
    assert b"synermix" in content["_hparams_/session_start_info"] and b"final_acc" in content["_hparams_/experiment"]


@pytest.mark.slow
def test_compiled_stages_train(tmp_path):
    summary = run_training(make_cfg("method=synermix_mm", "train.compile=true", *FAST), tmp_path)
    assert summary["status"] == "complete" and summary["final_acc"] > 30


def test_help_lists_only_training_groups_and_imports_no_torch():
    # --help and --cfg job must stay quick: they compose the config without importing torch/torchvision/sklearn.
    script = str(ROOT / "scripts" / "train.py")
    for args in (["--help"], ["--cfg", "job", "--resolve"]):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", script, *args],
            check=True,
            cwd=ROOT,
            timeout=120,
            capture_output=True,
            text=True,
        )
        imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
        assert not imported & {"torch", "torchvision", "sklearn"}, args
    groups = subprocess.run(
        [sys.executable, script, "--help"], check=True, cwd=ROOT, timeout=120, capture_output=True, text=True
    ).stdout.split("== Config ==")[0]
    assert "method: baseline" in groups and "dataset: " in groups and "figures" not in groups
