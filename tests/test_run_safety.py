"""Nothing lost, nothing mislabelled: run-directory locks, NaN-safe checkpoints, repaired results,
safe unpickling and the validation of every value."""

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers import ROOT, TESTS, hook_override, make_cfg, wait_for
from helpers import datasets as fx
from helpers.hooks import PoisonWeights, Trains
from synermix.data import DatasetFormatError, load_splits
from synermix.errors import RunError
from synermix.run.training import run_training
from synermix.run.validation import ConfigError, validate_config
from synermix.store.rundir import RunDirBusy
from synermix.train.cohesion import cohesion_metrics

RUN = ["method=synermix_mm", "train.epochs=3", "train.average_last=2", "train.batch_size=64"]
SHORT = ["method=synermix", "train.epochs=2", "train.average_last=1", "train.batch_size=64"]
STEPS = 1437 // 64


def launch(run_dir, *args):
    return subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "train.py"), *RUN, *args, f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# ---- 2. one process per run directory ----------------------------------------------------------------------
def test_a_second_process_on_a_running_run_dir_is_refused_and_touches_nothing(tmp_path):
    run_dir = tmp_path / "run"
    first = launch(run_dir, hook_override("pause", "PauseAt", epoch=2, step=3))
    try:
        wait_for(run_dir / "paused", first)
        before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
        with pytest.raises(RunDirBusy, match=r"is in use by pid \d+ on host"):
            run_training(make_cfg(*RUN), run_dir)
        assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
        second = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "train.py"), *RUN, f"hydra.run.dir={run_dir}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert second.returncode == 2 and "is in use by" in second.stderr and "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    assert first.returncode == 128 + signal.SIGTERM  # the first run was left alone and stopped cleanly


def test_the_lock_of_a_dead_process_is_taken_over_and_no_temp_file_is_left(tmp_path, caplog):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / ".lock").write_text("pid 999999 on host gone\n")  # its holder died without releasing it
    summary = run_training(make_cfg(*SHORT, "train.checkpoint_every_steps=4"), run_dir)
    assert summary["status"] == "complete"
    assert "Took over the lock of pid 999999 on host gone" in caplog.text
    assert (run_dir / ".lock").read_text() == ""  # released
    assert not [p.name for p in run_dir.iterdir() if p.name.endswith((".tmp", ".new"))]


# ---- 4. NaN-safe checkpoints ----------------------------------------------------------------------------------
def test_a_mid_epoch_checkpoint_never_holds_nan_weights(tmp_path):
    with pytest.raises(RunError, match="Non-finite weights or loss at epoch 2, step 4"):
        run_training(make_cfg(*SHORT, "train.checkpoint_every_steps=4"), tmp_path, hooks=[PoisonWeights(2, 3)])
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        state = torch.load(tmp_path / name, weights_only=True)
        assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["partial"] is None  # epoch 1's end
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "failed" and "Non-finite weights" in summary["error"]


def test_nan_that_appears_only_at_evaluation_is_reported_not_recorded_as_an_accuracy(tmp_path):
    with pytest.raises(RunError, match="evaluation produced NaN"):
        run_training(make_cfg(*SHORT), tmp_path, hooks=[PoisonWeights(1, STEPS)])  # after the epoch's last step
    assert not (tmp_path / "metrics.csv").exists() and not (tmp_path / "checkpoint.pt").exists()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["last_acc"] is None


def test_cohesion_metrics_refuse_non_finite_features_with_a_message():
    features = np.random.default_rng(0).normal(size=(20, 4))
    features[3, 1] = np.nan
    with pytest.raises(RunError, match="NaN or infinite"):
        cohesion_metrics(features, np.arange(20) % 4)


# ---- 5. result files are repaired on re-entry ------------------------------------------------------------------
def test_a_finished_run_missing_its_features_gets_them_back(tmp_path):
    run_training(make_cfg(*SHORT), tmp_path)
    saved = dict(np.load(tmp_path / "features.npz"))
    (tmp_path / "features.npz").unlink()  # as a kill after the summary used to leave it
    steps = Trains()
    run_training(make_cfg(*SHORT), tmp_path, hooks=[steps])
    assert steps.steps == 0
    again = np.load(tmp_path / "features.npz")
    assert np.array_equal(again["labels"], saved["labels"]) and np.array_equal(again["features"], saved["features"])


# ---- 6. dataset pickles cannot run code; CIFAR-100 is checked against its MD5 sums ----------------------------
class _Exploit:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (shutil.copyfile, (os.devnull, self.path))  # would create a file when unpickled


@pytest.mark.parametrize("dataset", ["cifar100", "mini_imagenet"])
def test_a_malicious_dataset_pickle_is_refused_and_never_runs(dataset, tmp_path):
    planted = tmp_path / "planted"
    if dataset == "cifar100":
        root = fx.write_cifar100(tmp_path / "data")
        target = root / "cifar-100-python" / "train"
    else:
        root = fx.write_mini_imagenet_pickles(tmp_path / "data")
        target = root / "mini-imagenet-cache-train.pkl"
    target.write_bytes(pickle.dumps({"data": _Exploit(str(planted)), "image_data": _Exploit(str(planted))}))
    cfg = make_cfg(
        f"dataset={dataset}",
        f"dataset.root={root}",
        "dataset.verify_md5=false" if dataset == "cifar100" else "dataset.train_per_class=3",
    )
    with pytest.raises(DatasetFormatError, match=r"was refused: it asks for shutil.copyfile"):
        load_splits(cfg.dataset, "test", 0.1, 0)
    assert not planted.exists()


def test_cifar100_files_that_are_not_the_official_ones_are_named(tmp_path):
    root = fx.write_cifar100(tmp_path / "data")
    with pytest.raises(
        DatasetFormatError, match=r"cifar-100-python/train is not the official CIFAR-100 file.*verify_md5=false"
    ):
        load_splits(make_cfg("dataset=cifar100", f"dataset.root={root}").dataset, "test", 0.1, 0)
    splits = load_splits(
        make_cfg("dataset=cifar100", f"dataset.root={root}", "dataset.verify_md5=false").dataset, "test", 0.1, 0
    )
    assert splits.train.images.shape[1:] == (3, 32, 32)


# ---- 7. every value is checked ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "override, key",
    [
        ("method.alpha=inf", "method.alpha"),
        ("train.lr=inf", "train.lr"),
        ("train.weight_decay=inf", "train.weight_decay"),
        ("dataset.augment.hflip=nan", "dataset.augment.hflip"),
        ("dataset.augment.hflip=2", "dataset.augment.hflip"),
        ("dataset.augment.cutout=-1", "dataset.augment.cutout"),
        ("dataset.augment.cutout=9", "dataset.augment.cutout"),
        ("dataset.augment.crop_padding=-2", "dataset.augment.crop_padding"),
        ("dataset.std=[0.0]", "dataset.std"),
        ("dataset.mean=[nan]", "dataset.mean"),
        ("method.num_per_class=100000", "method.num_per_class"),
        ("method.name=../../etc", "method.name"),
        ("method.name=a/b", "method.name"),
        ("val_ratio=nan", "val_ratio"),
        ("+dataset.train_per_class=0", "dataset.train_per_class"),
        ("model.depth=9", "model.depth"),
        ("+model.mix_points=every", "model.mix_points"),
    ],
)
def test_bad_values_are_refused_with_the_key_and_what_is_allowed(override, key):
    with pytest.raises(ConfigError) as info:
        validate_config(make_cfg(override))
    message = str(info.value)
    assert f"{key}=" in message and "it must be" in message and len(message.splitlines()) == 1


def test_mean_and_std_need_one_value_per_channel(tmp_path):
    with pytest.raises(ConfigError, match=r"one value per image channel, and digits images have 1"):
        run_training(make_cfg(*SHORT, "dataset.mean=[0.5,0.5,0.5]", "dataset.std=[0.2,0.2,0.2]"), tmp_path)
