"""The data is part of a run's identity, and damaged image trees or data files are found before training: folder
fingerprints, symlink loops, corrupt images, DataLoader worker errors, re-packed CIFAR-100 pickles."""

import io
import os
import pickle
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import datasets as fx
from helpers import make_cfg
from helpers.datasets import write_image_folder
from synermix.config.identity import config_id, run_dir_of
from synermix.data import DatasetFormatError, load_splits
from synermix.data.files import FileEvalDataset, eval_transform
from synermix.data.sources import FileSplit
from synermix.data.tree import fingerprint, scan_classes
from synermix.results.report import load_summaries, summarize
from synermix.run.training import run_training
from synermix.store.rundir import ForeignRunDir

FAST = (
    "dataset=image_folder",
    "dataset.recipe=cifar",
    "dataset.image_size=16",
    "model=cifar_resnet",
    "train.epochs=1",
    "train.average_last=1",
    "train.cohesion_samples=0",
    "train.batch_size=4",
)


def folder_cfg(root, *overrides, out_root=None):
    """The config of a tiny image_folder run on `root`."""
    return make_cfg(*FAST, f"dataset.root={root}", *([f"out_root={out_root}"] if out_root else []), *overrides)


def test_two_folders_are_two_runs_and_a_changed_folder_is_another_run(tmp_path):
    a = write_image_folder(tmp_path / "a", train_per_class=4, test_per_class=2)
    b = write_image_folder(tmp_path / "b", classes=("ant", "bee", "cow"), train_per_class=4, test_per_class=2)
    cfg_a, cfg_b = folder_cfg(a, out_root=tmp_path / "runs"), folder_cfg(b, out_root=tmp_path / "runs")
    assert run_dir_of(cfg_a) != run_dir_of(cfg_b)
    first = run_training(cfg_a, run_dir_of(cfg_a))
    assert first["data"] == fingerprint(str(a)) and first["data"] != fingerprint(str(b))
    # an image added to the folder: another identity; the old run's directory is refused, not resumed into
    Image.new("RGB", (40, 30)).save(a / "train" / "cat" / "img_new.jpg")
    changed = folder_cfg(a, out_root=tmp_path / "runs")
    assert config_id(changed) != config_id(cfg_a)
    with pytest.raises(ForeignRunDir, match=r"dataset.fingerprint: '[0-9a-f]{12}' -> '[0-9a-f]{12}'"):
        run_training(changed, run_dir_of(cfg_a))


def test_the_report_keeps_runs_on_different_folders_apart(tmp_path):
    for name, classes in (("a", ("cat", "dog", "emu")), ("b", ("ant", "bee", "cow"))):
        root = write_image_folder(tmp_path / name, classes=classes, train_per_class=4, test_per_class=2)
        cfg = folder_cfg(root, out_root=tmp_path / "out" / name)
        run_training(cfg, run_dir_of(cfg))
    table = summarize(load_summaries(tmp_path / "out"))
    assert len(table) == 2 and list(table["n_seeds"]) == [1, 1]
    assert all(len(accs) == 1 for accs in table["seed_accs"])


def test_directory_symlinks_are_followed_once_and_a_loop_cannot_hang_the_scan(tmp_path):
    root = write_image_folder(tmp_path / "data", train_per_class=2, test_per_class=1)
    before = scan_classes(root / "train")
    os.symlink(".", root / "train" / "cat" / "self")  # a loop onto its own folder
    os.symlink("../cat", root / "train" / "cat" / "again")  # and a second way into it
    os.symlink("../dog", root / "train" / "emu" / "dogs")  # a class folder reached from another
    result = {}
    worker = threading.Thread(
        target=lambda: result.update(scan=scan_classes(root / "train"), print=fingerprint(str(root))), daemon=True
    )
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "the folder scan did not finish"
    assert result["scan"] == before  # 6 images, each once, in torchvision's order
    splits = load_splits(folder_cfg(root).dataset, "test", 0.1, 0)
    assert len(splits.train.labels) == 6


def _truncated_jpeg(path):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


@pytest.mark.parametrize("recipe", ["imagenet", "cifar"])
def test_corrupt_empty_and_non_image_files_are_refused_before_training_with_their_list(recipe, tmp_path):
    root = write_image_folder(tmp_path / "data", train_per_class=3, test_per_class=2)
    (root / "train" / "dog" / "empty.png").write_bytes(b"")
    (root / "train" / "emu" / "notes.jpg").write_text("not an image")
    _truncated_jpeg(root / "test" / "cat" / "cut.jpg")  # an evaluation image, found before any epoch
    cfg = folder_cfg(root, f"dataset.recipe={recipe}", "dataset.image_size=16", "dataset.eval_resize=18")
    with pytest.raises(DatasetFormatError) as info:
        load_splits(cfg.dataset, "test", 0.1, 0)
    message = str(info.value)
    assert "empty.png" in message and "notes.jpg" in message and "\n" not in message
    assert "dataset.on_bad_image=skip" in message
    for bad in ("empty.png", "notes.jpg"):
        next((root / "train").rglob(bad)).unlink()
    with pytest.raises(DatasetFormatError, match="cut.jpg"):  # a truncated evaluation image alone
        load_splits(cfg.dataset, "test", 0.1, 0)


def test_on_bad_image_skip_trains_without_them_and_says_so(tmp_path, caplog):
    root = write_image_folder(tmp_path / "data", train_per_class=3, test_per_class=2)
    (root / "train" / "dog" / "empty.png").write_bytes(b"")
    _truncated_jpeg(root / "test" / "cat" / "cut.jpg")
    splits = load_splits(folder_cfg(root, "dataset.on_bad_image=skip").dataset, "test", 0.1, 0)
    assert len(splits.train.labels) == 9 and len(splits.eval.labels) == 6
    assert "empty.png" in caplog.text and "cut.jpg" in caplog.text
    summary = run_training(folder_cfg(root, "dataset.on_bad_image=skip"), tmp_path / "run")
    assert summary["status"] == "complete"


def test_a_data_loader_worker_error_reaches_the_user_as_one_paragraph(tmp_path):
    root = write_image_folder(tmp_path / "data", train_per_class=1, test_per_class=1)
    (root / "test" / "dog" / "img_001.JPG").write_bytes(b"broken after the check")
    paths = sorted(str(p) for p in (root / "test").rglob("*.*"))
    dataset = FileEvalDataset(
        FileSplit(paths, np.zeros(len(paths), dtype=np.int64)), eval_transform(16, 18, [0.5] * 3, [0.5] * 3)
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=2)
    with pytest.raises(DatasetFormatError) as info:
        list(loader)
    message = str(info.value)
    assert message.startswith("Cannot decode image") and "img_001.JPG" in message
    assert "Traceback" not in message and "\n" not in message


def test_a_cifar100_file_repacked_by_python3_at_protocol_2_loads(tmp_path):
    root = fx.write_cifar100(tmp_path / "data")
    for name in ("train", "test", "meta"):
        path = root / "cifar-100-python" / name
        with open(path, "rb") as f:
            content = pickle.load(f)
        with open(path, "wb") as f:
            pickle.dump(content, f, protocol=2)  # numpy's bytes go through _codecs.encode
        assert b"_codecs" in path.read_bytes() or name == "meta"
    splits = load_splits(
        make_cfg("dataset=cifar100", f"dataset.root={root}", "dataset.verify_md5=false").dataset, "test", 0.1, 0
    )
    assert splits.train.images.shape == (24, 3, 32, 32)
