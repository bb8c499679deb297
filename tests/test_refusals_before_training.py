"""Refusals of training, protocol and the other scripts that need no finished run: bad data, trackers, mixers,
output folders, 16-bit images, the fingerprint's limits, a real full disk."""

import sys

import numpy as np
import pytest
from PIL import Image

from helpers import datasets as fx
from helpers import make_cfg
from helpers.cli import FAST, can_mount, in_private_mounts, refusal, run_script, shell_script, tree

IMAGE_FOLDER_RUN = (
    "dataset=image_folder",
    "model=cifar_resnet",
    "train.epochs=1",
    "train.batch_size=4",
    "dataset.image_size=16",
    "train.cohesion_samples=0",
)


def test_protocol_names_a_bad_grid_before_any_run(tmp_path):
    for args, needle in ((("method.beta_grid=[0.1,1.5]",), "method.beta_grid=[0.1, 1.5]"), (("seeds=0",), "seeds=0")):
        err = refusal(run_script("protocol", *FAST, *args, f"out_root={tmp_path / 'out'}", cwd=tmp_path))
        assert needle in err, err
    assert tree(tmp_path) == []


def test_a_meaningless_data_set_is_refused_before_training(tmp_path):
    one = fx.write_image_folder(tmp_path / "one", classes=("cat",))
    three = fx.write_image_folder(tmp_path / "three")
    base = (*IMAGE_FOLDER_RUN, f"out_root={tmp_path / 'out'}")
    err = refusal(run_script("train", *base, f"dataset.root={one}", cwd=tmp_path))
    assert "at least 2 classes" in err and "cat" in err
    err = refusal(run_script("train", *base, f"dataset.root={three}", "dataset.num_classes=5", cwd=tmp_path))
    assert "dataset.num_classes=5" in err and "3 classes" in err and "dataset.num_classes=3" in err
    assert not list((tmp_path / "out").rglob("metrics.csv"))  # nothing trained


def test_a_tracker_that_cannot_start_stops_the_run_before_training(tmp_path):
    env = {"HOME": str(tmp_path), "WANDB_API_KEY": "", "NETRC": str(tmp_path / "none")}
    err = refusal(
        run_script(
            "train",
            *FAST,
            "logger=wandb",
            "logger.wandb.mode=online",
            f"out_root={tmp_path / 'out'}",
            cwd=tmp_path,
            env=env,
        )
    )
    assert "logger.wandb.mode=online needs a W&B API key" in err and "wandb login" in err
    assert not (tmp_path / "out").exists()
    err = refusal(
        run_script(
            "train",
            *FAST,
            "logger=mlflow",
            "logger.mlflow.tracking_uri=sqlite:////proc/no/m.db",
            f"out_root={tmp_path / 'out'}",
            cwd=tmp_path,
        )
    )
    assert "The mlflow tracker (logger=mlflow) could not start" in err and "logger.mlflow.tracking_uri" in err
    assert not list((tmp_path / "out").rglob("metrics.csv"))


def test_a_mixer_choosing_a_mix_point_the_model_lacks_is_named(tmp_path):
    from synermix.errors import ConfigError
    from synermix.run.training import run_training

    cfg = make_cfg(*FAST, "method.inter={_target_:helpers.mixers.WrongPointMixer}")
    with pytest.raises(ConfigError, match=r"WrongPointMixer.*'nowhere'.*mix points are \['input'"):
        run_training(cfg, tmp_path / "run")


def test_the_figure_and_export_scripts_check_their_output_first(tmp_path):
    err = refusal(run_script("figures", "fig1", "--scale", "smoke", "--out", "/proc/nowhere", cwd=tmp_path))
    assert "Cannot write the figures" in err
    err = refusal(run_script("export_image_folder", "digits", "-", "/proc/nowhere", cwd=tmp_path))
    assert "Cannot write the exported image folder" in err
    err = refusal(run_script("export_image_folder", "digits", "-", str(tmp_path / "x"), "--max-per-class", "0"))
    assert "--max-per-class=0" in err and tree(tmp_path) == []


def test_a_sixteen_bit_image_is_scaled_not_clipped(tmp_path):
    from synermix.data.sources import open_rgb

    grey = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(grey).save(tmp_path / "g.png")
    assert Image.open(tmp_path / "g.png").mode.startswith("I;16")
    assert np.asarray(open_rgb(tmp_path / "g.png"))[0, :, 0].tolist() == [0, 1, 128, 255]
    Image.fromarray(grey.astype(np.int32)).save(tmp_path / "i.tiff")  # mode I: 16-bit values scaled too
    assert np.asarray(open_rgb(tmp_path / "i.tiff"))[0, :, 0].tolist() == [0, 1, 128, 255]
    Image.fromarray(np.array([[0, 200]], dtype=np.int32)).save(tmp_path / "e.tiff")  # mode I within 8 bits: kept
    assert np.asarray(open_rgb(tmp_path / "e.tiff"))[0, :, 0].tolist() == [0, 200]


def test_the_skip_of_a_complete_image_folder_run_states_the_fingerprint_limits(tmp_path):
    root = fx.write_image_folder(tmp_path / "data")
    args = (*IMAGE_FOLDER_RUN, f"dataset.root={root}", f"out_root={tmp_path / 'o'}")
    assert run_script("train", *args, cwd=tmp_path).returncode == 0
    proc = run_script("train", *args, cwd=tmp_path)
    assert proc.returncode == 0 and "not its content" in proc.stdout and "same size is not noticed" in proc.stdout


@pytest.mark.skipif(not can_mount(), reason="needs `unshare -m` and mount (root in a private mount namespace)")
def test_a_full_disk_during_the_checkpoint_write_is_the_enospc_paragraph(tmp_path):
    """A real full disk (a tmpfs of about 1.5 checkpoints): torch's zip writer fails in epoch 2's checkpoint; the
    ENOSPC paragraph, and epoch 1's checkpoint is intact."""
    disk = tmp_path / "disk"
    disk.mkdir()
    args = ["method=baseline", "train.epochs=3", "train.batch_size=64", "train.cohesion_samples=0"]
    run = disk / "run"
    keep = run_script("train", *args, "train.epochs=1", "train.keep_checkpoints=true", f"hydra.run.dir={tmp_path}/p")
    assert keep.returncode == 0, keep.stderr[-2000:]
    size = (tmp_path / "p" / "checkpoint.pt").stat().st_size
    check = (
        "from synermix.store.rundir import RunDir; import json, pathlib; p = pathlib.Path('%s'); "
        "print(json.loads((p / 'summary.json').read_text())['epochs_completed'], RunDir(p).latest_weights().source)"
    )
    in_private_mounts(
        f"""
        mount -t tmpfs -o size={int(size * 1.5) + 200_000} tmpfs {disk}
        {shell_script("train", *args, f"hydra.run.dir={run}")} > {tmp_path}/out 2> {tmp_path}/err
        echo $? > {tmp_path}/rc
        {sys.executable} -c "{check % run}" > {tmp_path}/state
    """,
        tmp_path,
    )
    err = (tmp_path / "err").read_text().strip()
    assert (tmp_path / "rc").read_text().strip() == "2" and "Traceback" not in err, err[-3000:]
    assert err.startswith("error: Cannot write the run directory") and "(ENOSPC)" in err and "\n" not in err
    epochs, source = (tmp_path / "state").read_text().split(" ", 1)
    assert int(epochs) >= 1 and source.startswith("checkpoint.pt (unfinished run: epoch 1 of 3)"), source
