"""Using a trained run: scripts/evaluate.py on its own split, on another folder of the same classes (and refusing one
with a class missing), on an unfinished run and under torchrun; scripts/predict.py on loose images; the counts
behind top-5, per-class accuracy and the confusion matrix against scikit-learn."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.metrics import confusion_matrix, top_k_accuracy_score

from helpers import ROOT, make_cfg, tiny_model
from helpers.datasets import write_image_folder
from helpers.hooks import CrashAfterEpoch
from synermix.run.trackers import Tracking
from synermix.run.training import run_training
from synermix.train.evaluation import evaluate

CLASSES = ("ant", "bee", "cat", "dog", "eel", "fox", "gnu")  # more than five: top-5 is reported


def script(name, *args, launcher=(sys.executable,)):
    return subprocess.run(
        [*launcher, str(ROOT / "scripts" / name), *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A two-epoch image-folder run (files, the imagenet recipe) of seven classes."""
    base = tmp_path_factory.mktemp("evaluate")
    folder = write_image_folder(base / "data", CLASSES, train_per_class=6, test_per_class=3)
    cfg = make_cfg(
        "dataset=image_folder",
        f"dataset.root={folder}",
        "dataset.image_size=24",
        "dataset.eval_resize=28",
        "model=cifar_resnet",
        "method=synermix",
        "train.epochs=2",
        "train.batch_size=14",
        "train.cohesion_samples=0",
    )
    run_training(cfg, base / "run")
    return base, base / "run"


def test_the_run_records_its_class_names_and_top5(trained):
    _, run = trained
    assert json.loads((run / "classes.json").read_text()) == list(CLASSES)
    metrics = pd.read_csv(run / "metrics.csv")
    assert metrics["eval_acc5"].between(metrics["eval_acc"], 100).all()
    assert json.loads((run / "summary.json").read_text())["final_acc5"] == metrics["eval_acc5"].mean()


def test_evaluate_on_its_own_split_writes_every_file_with_the_training_numbers(trained):
    _, run = trained
    proc = script("evaluate.py", run)
    assert proc.returncode == 0, proc.stderr
    out = run / "eval" / "test"
    assert Path(proc.stdout.strip()) == out
    metrics = json.loads((out / "metrics.json").read_text())
    last = pd.read_csv(run / "metrics.csv").iloc[-1]
    assert (metrics["top1"], metrics["top5"]) == (last["eval_acc"], last["eval_acc5"])  # the same weights and data
    assert metrics["ece"] == pytest.approx(last["eval_ece"], abs=1e-9)
    assert metrics["nll"] == pytest.approx(last["eval_nll"], rel=1e-9)
    assert (metrics["samples"], metrics["classes"], metrics["weights"]) == (21, 7, "weights.pt")
    per_class = pd.read_csv(out / "per_class.csv")
    assert list(per_class["class"]) == list(CLASSES) and (per_class["support"] == 3).all()
    assert per_class["correct"].sum() / 21 * 100 == pytest.approx(metrics["top1"])
    confusion = pd.read_csv(out / "confusion.csv", index_col=0)
    assert list(confusion.columns) == list(CLASSES) and np.trace(confusion.values) == per_class["correct"].sum()
    for png in ("confusion.png", "reliability.png"):
        with Image.open(out / png) as image:
            assert image.format == "PNG" and min(image.size) > 300


def test_evaluate_on_another_folder_with_the_same_classes(trained):
    base, run = trained
    other = write_image_folder(base / "other", CLASSES, train_per_class=2, test_per_class=4, size=(33, 27))
    proc = script("evaluate.py", run, f"dataset.root={other}", "--name", "other")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((run / "eval" / "other" / "metrics.json").read_text())
    assert metrics["samples"] == 28 and metrics["root"] == str(other) and 0 <= metrics["top1"] <= 100


def test_a_folder_with_a_class_missing_is_refused_clearly(trained):
    base, run = trained
    fewer = write_image_folder(base / "fewer", CLASSES[:-1], train_per_class=2, test_per_class=2)
    proc = script("evaluate.py", run, f"dataset.root={fewer}", "--name", "fewer")
    assert proc.returncode == 2
    assert "missing there: ['gnu']" in proc.stderr and "Traceback" not in proc.stderr
    assert not (run / "eval" / "fewer").exists()
    no_ema = script("evaluate.py", run, "--weights", "ema")
    assert no_ema.returncode == 2 and "holds no ema weights" in no_ema.stderr
    refused = script("evaluate.py", run, "method.beta=0.3")
    assert (
        refused.returncode == 2 and "'method.beta=0.3'" in refused.stderr and "model and its training" in refused.stderr
    )


def test_predict_labels_loose_images_and_skips_unreadable_ones(trained, tmp_path):
    base, run = trained
    photos = tmp_path / "photos"
    test_images = sorted((base / "data" / "test").rglob("*.*"))
    for i, image in enumerate(test_images):  # nested folders, names that do not say the class
        target = photos / ("deep/er" if i % 2 else "") / f"photo_{i:02d}{image.suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(image.read_bytes())
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    (photos / "notes.txt").write_text("not an image")
    out = tmp_path / "predictions.csv"
    proc = script("predict.py", run, photos, "--topk", "3", "--out", out, "--batch-size", "4")
    assert proc.returncode == 0, proc.stderr
    assert "broken.jpg" in proc.stderr and "notes.txt" not in proc.stderr
    table = pd.read_csv(out)
    assert list(table.columns) == ["path", "class_1", "prob_1", "class_2", "prob_2", "class_3", "prob_3"]
    assert len(table) == len(test_images) and set(table["class_1"]) <= set(CLASSES)
    probs = table[["prob_1", "prob_2", "prob_3"]].to_numpy()
    assert (np.diff(probs, axis=1) <= 0).all() and (probs.sum(axis=1) <= 1 + 1e-6).all()
    truth = {f"photo_{i:02d}": image.parent.name for i, image in enumerate(test_images)}
    hits = sum(truth[Path(p).stem] == c for p, c in zip(table["path"], table["class_1"]))
    top1 = pd.read_csv(run / "metrics.csv")["eval_acc"].iloc[-1]
    assert 100 * hits / len(table) == pytest.approx(top1)  # the run's own evaluation transform and weights


def test_an_unfinished_run_is_evaluated_from_its_checkpoint_and_says_so(tmp_path):
    cfg = make_cfg(
        "method=baseline", "train.epochs=2", "train.average_last=1", "train.batch_size=64", "train.cohesion_samples=0"
    )
    with pytest.raises(KeyboardInterrupt):
        run_training(cfg, tmp_path, hooks=[CrashAfterEpoch(1)])
    proc = script("evaluate.py", tmp_path)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "eval" / "test" / "metrics.json").read_text())
    assert metrics["weights"] == "checkpoint.pt (unfinished run: epoch 1 of 2)" and "has not finished" in proc.stderr
    assert metrics["top1"] == pd.read_csv(tmp_path / "metrics.csv")["eval_acc"].iloc[0]
    assert script("evaluate.py", tmp_path / "nothing").returncode == 2


def test_two_process_evaluation_gives_the_single_process_numbers(tmp_path):
    run_training(
        make_cfg(
            "method=baseline",
            "train.epochs=1",
            "train.average_last=1",
            "train.batch_size=64",
            "train.cohesion_samples=0",
        ),
        tmp_path,
    )
    one = script("evaluate.py", tmp_path, "device=cpu", "--name", "one")
    two = script(
        "evaluate.py",
        tmp_path,
        "device=cpu",
        "--name",
        "two",
        launcher=(str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc_per_node=2"),
    )
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-2000:]
    a, b = (json.loads((tmp_path / "eval" / n / "metrics.json").read_text()) for n in ("one", "two"))
    assert (a["top1"], a["top5"], a["samples"], b["processes"]) == (b["top1"], b["top5"], b["samples"], 2)
    # each process sums its batches' float32 cross-entropies: other batch boundaries round the last digits
    assert b["ece"] == pytest.approx(a["ece"], abs=1e-9) and b["nll"] == pytest.approx(a["nll"], rel=1e-6)
    assert pd.read_csv(tmp_path / "eval" / "one" / "confusion.csv").equals(
        pd.read_csv(tmp_path / "eval" / "two" / "confusion.csv")
    )


class ListStream:
    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return sum(len(y) for _, y in self.batches)


def test_top5_and_confusion_counts_equal_scikit_learns():
    model = tiny_model(in_dim=4, classes=8)
    torch.manual_seed(1)
    batches = [(torch.randn(n, 4), torch.randint(0, 8, (n,))) for n in (13, 7, 20)]
    result = evaluate(model, ListStream(batches))
    x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches]).numpy()
    with torch.no_grad():
        scores = model(x).numpy()
    assert result.top5 == pytest.approx(100 * top_k_accuracy_score(y, scores, k=5, labels=range(8)))
    np.testing.assert_array_equal(result.confusion, confusion_matrix(y, scores.argmax(1), labels=range(8)))
    assert evaluate(tiny_model(classes=5), ListStream([(torch.randn(6, 4), torch.arange(6) % 5)])).top5 is None


def test_only_the_main_process_tracks():
    logger = make_cfg("logger=[tensorboard,wandb,mlflow]").logger
    assert Tracking.from_config(logger, None, None, is_main=False).trackers == {}
    assert set(Tracking.from_config(logger, None, None, is_main=True).trackers) == {"tensorboard", "wandb", "mlflow"}


def test_predict_with_a_digits_run_reads_its_exported_images_as_it_evaluated_them(tmp_path):
    run_training(
        make_cfg(
            "method=baseline",
            "train.epochs=1",
            "train.average_last=1",
            "train.batch_size=64",
            "train.cohesion_samples=0",
        ),
        tmp_path / "run",
    )
    exported = script("export_image_folder.py", "digits", "-", tmp_path / "digits")
    assert exported.returncode == 0, exported.stderr
    out = tmp_path / "digits.csv"
    proc = script("predict.py", tmp_path / "run", tmp_path / "digits" / "test", "--topk", "2", "--out", out)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out)
    truth = table["path"].map(lambda p: Path(p).parent.name.split("_", 1)[1])  # folders NN_<class name>
    accuracy = 100 * float((table["class_1"].astype(str) == truth).mean())
    assert len(table) == 360 and accuracy == pytest.approx(pd.read_csv(tmp_path / "run" / "metrics.csv")["eval_acc"][0])
