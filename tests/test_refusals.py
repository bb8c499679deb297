"""Every refusal of every script is one paragraph with exit code 2, is made before anything is written, and leaves a
finished run byte for byte as it was: each case is one a user met (a traceback, a meaningless run reported as
fine, a finished run rewritten to describe a refused command, a folder made outside out_root)."""

import subprocess

import numpy as np
import pytest
from PIL import Image

from helpers.cli import FAST, can_mount, in_private_mounts, refusal, run_script, shell_script, snapshot, tree


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A run trained through scripts/train.py (so with its .hydra/ record and train.log), and its out_root."""
    out = tmp_path_factory.mktemp("finished") / "runs"
    proc = run_script("train", *FAST, f"out_root={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = [p.parent for p in out.rglob("summary.json")]
    assert {".hydra", "train.log", "weights.pt"} <= {p.name for p in run_dir.iterdir()}
    assert (run_dir / ".hydra" / "overrides.yaml").read_text().count("train.epochs=1") == 1
    return run_dir, out


# (train.py arguments, what the paragraph must name): Hydra's composition errors and ours alike
TRAIN_REFUSALS = [
    (("train.foo=1",), ["train.foo is not a key", "++train.foo="]),
    (("method=nosuch",), ["method/nosuch", "synermix_cutmix"]),
    (("+train.lrate=0.5",), ["+train.lrate=0.5", "train.lr=", "++train.lrate="]),
    (("+train.lr=0.5",), ["train.lr is already a key", "train.lr=VALUE"]),
    (("train.log_interval=0",), ["train.log_interval=0", ">= 1"]),
    (("method.beta=1.5",), ["method.beta=1.5"]),
    (("run_tag=/../../escape",), ["run_tag='/../../escape'"]),
    (("run_subdir=../../escape",), ["run_subdir='../../escape'", "inside out_root"]),
    (("model=timm", "model.arch=resnet999"), ["model.arch='resnet999'", "resnet50"]),
    (("logger=mlflow", "logger.mlflow.experiment="), ["logger.mlflow.experiment"]),
]


@pytest.mark.parametrize("args,needles", TRAIN_REFUSALS, ids=[" ".join(a) for a, _ in TRAIN_REFUSALS])
def test_a_refused_training_command_is_one_paragraph_and_leaves_the_finished_run_as_it_was(
    finished, args, needles, tmp_path
):
    run_dir, out = finished
    before, folders = snapshot(out), tree(out)
    for where in (f"out_root={out}", f"hydra.run.dir={run_dir}"):  # its own folder, or pointed at the finished run
        err = refusal(run_script("train", *FAST, *args, where, cwd=tmp_path))
        assert all(n in err for n in needles), err
    assert snapshot(out) == before and tree(out) == folders
    assert tree(tmp_path) == [] and not (tmp_path.parent / "escape").exists()  # nothing outside out_root either


def test_re_running_a_finished_command_or_another_config_into_its_folder_changes_no_byte(finished, tmp_path):
    run_dir, out = finished
    before = snapshot(out)
    proc = run_script("train", *FAST, f"out_root={out}", cwd=tmp_path)
    assert proc.returncode == 0 and "already complete" in proc.stdout
    err = refusal(run_script("train", *FAST, "method.beta=0.5", f"hydra.run.dir={run_dir}", cwd=tmp_path))
    assert "different configuration" in err and "0.5" in err
    assert snapshot(out) == before and tree(tmp_path) == []


EVAL_REFUSALS = [
    (("dataset.rooot=/other",), ["dataset.rooot", "dataset.root"]),
    (("train.lr=0.1",), ["train.lr=0.1", "the model and its training are the run's"]),
    (("--name", "../../../x"), ["--name '../../../x'", "single path component"]),
]


@pytest.mark.parametrize("args,needles", EVAL_REFUSALS, ids=[" ".join(a) for a, _ in EVAL_REFUSALS])
def test_a_refused_evaluation_writes_nothing(finished, args, needles):
    run_dir, out = finished
    before, folders = snapshot(out), tree(out.parent)
    err = refusal(run_script("evaluate", str(run_dir), *args))
    assert all(n in err for n in needles), err
    assert snapshot(out) == before and tree(out.parent) == folders


def test_a_complete_run_without_its_weights_says_so_and_how_to_recover(finished, tmp_path):
    run_dir, out = finished
    copy = tmp_path / "run"
    subprocess.run(["cp", "-a", str(run_dir), str(copy)], check=True)
    (copy / "weights.pt").unlink()
    err = refusal(run_script("evaluate", str(copy)))
    assert "is complete, but its weights.pt is missing" in err and "summary.json" in err
    proc = run_script("train", *FAST, f"hydra.run.dir={copy}", cwd=tmp_path)
    assert proc.returncode == 0 and "weights.pt is missing" in proc.stdout + proc.stderr


def test_predict_checks_its_arguments_and_output_before_reading_an_image(finished, tmp_path):
    run_dir, out = finished
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    for args, needle in (
        (("--batch-size", "0"), "--batch-size=0"),
        (("--topk", "0"), "--topk=0"),
        (("--workers", "-1"), "--workers=-1"),
        (("--out", str(tmp_path)), "is a folder"),
        (("--out", "/proc/nowhere/p.csv"), "Cannot write the predictions"),
    ):
        err = refusal(run_script("predict", str(run_dir), str(image), *args, cwd=tmp_path))
        assert needle in err, err
    assert tree(tmp_path) == ["x.png"]


def test_predictions_csv_is_safe_to_open_in_a_spreadsheet(tmp_path):
    import io

    import pandas as pd

    from synermix.use.predict import csv_text

    table = pd.DataFrame(
        {"path": ["=cmd|' /C calc'!A0", "ok.png"], "class_1": ["+1", "@SUM(A1)"], "prob_1": [0.5, 0.25]}
    )
    read = pd.read_csv(io.StringIO(csv_text(table)))
    assert list(read["path"]) == ["'=cmd|' /C calc'!A0", "ok.png"]
    assert list(read["class_1"]) == ["'+1", "'@SUM(A1)"] and list(read["prob_1"]) == [0.5, 0.25]
    assert list(table["class_1"]) == ["+1", "@SUM(A1)"]  # the table itself keeps the names


@pytest.mark.parametrize("damage", ['{"status": "compl', '{"status": "complete", "final_acc": null}'])
def test_report_survives_a_corrupt_summary_of_its_only_run(finished, tmp_path, damage):
    run_dir, _ = finished
    subprocess.run(["cp", "-a", str(run_dir), str(tmp_path / "run")], check=True)
    (tmp_path / "run" / "summary.json").write_text(damage)  # its config.yaml still names the configuration
    proc = run_script("report", str(tmp_path))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "1 unreadable summary.json" in proc.stdout and "summary.json is unreadable" in proc.stdout, proc.stdout


@pytest.mark.skipif(not can_mount(), reason="needs `unshare -m` and mount (root in a private mount namespace)")
def test_read_only_folders_are_refused_before_any_work(finished, tmp_path):
    """evaluate, predict and report on a read-only folder: one paragraph each, nothing computed then lost."""
    run_dir, out = finished
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    ro = tmp_path / "ro"
    ro.mkdir()
    commands = {
        "evaluate": shell_script("evaluate", str(run_dir)),
        "predict": shell_script("predict", str(run_dir), str(image), "--out", str(ro / "p.csv")),
        "report": shell_script("report", str(out)),
    }
    lines = "\n".join(
        f"{c} > /dev/null 2> {tmp_path}/{n}.err; echo $? > {tmp_path}/{n}.rc" for n, c in commands.items()
    )
    before = snapshot(out)
    in_private_mounts(
        f"""
        mount --bind {out} {out} && mount -o remount,bind,ro {out}
        mount --bind {ro} {ro} && mount -o remount,bind,ro {ro}
        {lines}
    """,
        tmp_path,
    )
    for name in commands:
        err = (tmp_path / f"{name}.err").read_text().strip()
        assert (tmp_path / f"{name}.rc").read_text().strip() == "2", err[-3000:]
        assert err.startswith("error: Cannot write") and "(EROFS)" in err and "\n" not in err, err[-3000:]
        assert "Nothing was computed or written" in err
    assert snapshot(out) == before
