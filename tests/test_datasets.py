"""Every dataset's real loading code on tiny files in its exact on-disk layout; Table 1 settings; bad data."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import synermix.data as data_module
import synermix.data.files as files
from helpers import datasets as fx
from helpers import make_cfg
from synermix.data import DatasetFormatError, DatasetNotFound, build_data, load_splits
from synermix.data.readers.caltech256 import read_caltech256
from synermix.data.readers.fashion_mnist import read_fashion_mnist
from synermix.data.readers.food101 import Food101
from synermix.data.readers.oxford_pet import read_oxford_pet
from synermix.run.training import RunError, loading_of, run_training
from synermix.seeding import RunSeeds

SMALL_FILE_IMAGES = ("dataset.image_size=32", "dataset.eval_resize=36")
CPU_MODEL = ("model=cifar_resnet", "model.pretrained=false")


def dataset_cfg(name, root, *overrides):
    """`dataset=name` at `root`; the CIFAR-100 fixtures are not the official files, so their MD5 is not checked."""
    md5 = ["dataset.verify_md5=false"] if name == "cifar100" else []
    return make_cfg(f"dataset={name}", f"dataset.root={root}", *md5, *overrides)


def bundle_of(cfg, num_workers=0, batch_size=4):
    """The training and evaluation streams a run of `cfg` would get (CPU, seed 0)."""
    cfg = OmegaConf.merge(cfg, {"train": {"num_workers": num_workers, "batch_size": batch_size}})
    return build_data(cfg.dataset, loading_of(cfg), "cpu", RunSeeds(0))


def first_batch(bundle):
    batch = next(iter(bundle.train.epoch(0)))
    return batch.x_orig, batch.x_aug, batch.y


CASES = {
    # name: (writer, extra overrides, train size, test size, channels, size, class labels present)
    "cifar100": (fx.write_cifar100, (), 24, 12, 3, 32, [0, 5, 42, 99]),
    "fashion_mnist": (fx.write_fashion_mnist, (), 50, 20, 1, 28, list(range(10))),
    "mini_imagenet": (
        fx.write_mini_imagenet_pickles,
        ("dataset.train_per_class=3", "dataset.test_per_class=1"),
        12,
        4,
        3,
        84,
        [0, 1, 2, 3],
    ),
    "food101": (fx.write_food101, SMALL_FILE_IMAGES, 12, 6, 3, 32, [0, 1, 2]),
    "caltech256": (
        fx.write_caltech256,
        (*SMALL_FILE_IMAGES, "dataset.train_per_class=3", "dataset.test_per_class=2"),
        9,
        6,
        3,
        32,
        [0, 1, 2],
    ),
    "oxford_pet": (fx.write_oxford_pet, SMALL_FILE_IMAGES, 12, 6, 3, 32, [0, 1, 2]),
}


@pytest.mark.parametrize("name", CASES)
def test_loads_the_standard_layout(name, tmp_path):
    writer, overrides, n_train, n_test, channels, size, classes = CASES[name]
    root = writer(tmp_path / name)
    cfg = dataset_cfg(name, root, *overrides)
    bundle = bundle_of(cfg)
    assert (len(bundle.train.labels), len(bundle.eval)) == (n_train, n_test)
    assert sorted(set(bundle.train.labels.tolist())) == classes
    assert (bundle.in_channels, bundle.image_size) == (channels, size)
    x_orig, x_aug, y = first_batch(bundle)
    assert x_orig.shape == x_aug.shape == (len(y), channels, size, size)
    assert x_orig.dtype == torch.float32 and not torch.equal(x_orig, x_aug)
    x, y = next(bundle.eval.data.eval_batches(5))
    assert x.shape == (min(5, n_test), channels, size, size)


@pytest.mark.parametrize("name", CASES)
def test_one_epoch_run_on_the_fixture(name, tmp_path):
    writer, overrides, *_ = CASES[name]
    root = writer(tmp_path / "data")
    cfg = dataset_cfg(
        name, root, *overrides, *CPU_MODEL, "train.epochs=1", "train.average_last=1", "train.batch_size=4"
    )
    summary = run_training(cfg, tmp_path / "run")
    assert summary["status"] == "complete" and summary["dataset"] == name
    assert 0 <= summary["final_acc"] <= 100
    assert (tmp_path / "run" / "metrics.csv").read_text().count("\n") == 2


@pytest.mark.parametrize("name", CASES)
def test_missing_root_names_path_layout_and_remedy(name, tmp_path):
    _, overrides, *_ = CASES[name]
    cfg = dataset_cfg(name, tmp_path / "empty", *overrides)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFound) as info:
        load_splits(cfg.dataset, "test", 0.1, 0)
    message = str(info.value)
    assert str(tmp_path / "empty") in message and "Expected layout" in message
    assert ("download=true" in message) or ("apt-get" in message) or ("cannot download" in message)


def test_phase_val_is_a_stratified_split_of_the_training_set(tmp_path):
    root = fx.write_fashion_mnist(tmp_path / "f", per_class=10)
    cfg = dataset_cfg("fashion_mnist", root)
    splits = load_splits(cfg.dataset, "val", 0.2, 0)
    assert (len(splits.train.labels), len(splits.eval.labels)) == (80, 20)
    assert np.bincount(splits.eval.labels, minlength=10).tolist() == [2] * 10
    again = load_splits(cfg.dataset, "val", 0.2, 0)
    assert np.array_equal(splits.eval.images, again.eval.images)  # fixed seed: same split every time


def test_validation_split_is_the_authors_stratified_shuffle_split_with_seed_42(tmp_path):
    # Authors: StratifiedShuffleSplit(test_size=0.1, random_state=42) on the training set; our default val_seed.
    from sklearn.model_selection import StratifiedShuffleSplit

    assert make_cfg().val_seed == 42 and make_cfg().val_ratio == 0.1
    labels = np.random.default_rng(5).integers(0, 7, 500)
    train_idx, val_idx = next(StratifiedShuffleSplit(test_size=0.1, random_state=42).split(np.zeros(500), labels))
    ours_train, ours_val = data_module.split_train_val(labels, 0.1, 42)
    assert np.array_equal(ours_val, np.sort(val_idx)) and np.array_equal(ours_train, np.sort(train_idx))
    root = fx.write_fashion_mnist(tmp_path / "f", per_class=10)
    splits = load_splits(dataset_cfg("fashion_mnist", root).dataset, "val", 0.1, 42)
    all_train = load_splits(dataset_cfg("fashion_mnist", root).dataset, "test", 0.1, 42).train
    _, val_idx = next(StratifiedShuffleSplit(test_size=0.1, random_state=42).split(all_train.labels, all_train.labels))
    assert np.array_equal(splits.eval.images, all_train.images[np.sort(val_idx)])


def test_evaluation_never_uses_the_training_augmentation(tmp_path):
    root = fx.write_food101(tmp_path / "food")
    bundle = bundle_of(dataset_cfg("food101", root, *SMALL_FILE_IMAGES))
    a = torch.cat([x for x, _ in bundle.eval])
    b = torch.cat([x for x, _ in bundle.eval])
    assert torch.equal(a, b)
    cifar = bundle_of(dataset_cfg("cifar100", fx.write_cifar100(tmp_path / "c")))
    x, _ = next(cifar.eval.data.eval_batches(3))
    raw = cifar.eval.data.images[:3].float() / 255
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(x, (raw - mean) / std)


def test_file_views_come_from_one_decode_and_do_not_depend_on_workers(tmp_path, monkeypatch):
    root = fx.write_oxford_pet(tmp_path / "pets")
    cfg = dataset_cfg("oxford_pet", root, *SMALL_FILE_IMAGES)
    calls = []
    real = files.decode_rgb
    monkeypatch.setattr(files, "decode_rgb", lambda p: calls.append(p) or real(p))
    bundle = bundle_of(cfg)
    x_orig, x_aug, y = first_batch(bundle)
    assert len(calls) == len(y)  # one decode per sample for both views
    monkeypatch.undo()
    with_workers = bundle_of(cfg, num_workers=2)
    x_orig2, x_aug2, y2 = first_batch(with_workers)
    assert torch.equal(x_aug, x_aug2) and torch.equal(x_orig, x_orig2) and torch.equal(y, y2)


def test_mini_imagenet_csv_layout_pools_and_splits_per_class(tmp_path):
    root = fx.write_mini_imagenet_csv(tmp_path / "mini", per_class=4, size=(90, 90))
    cfg = dataset_cfg("mini_imagenet", root, "dataset.train_per_class=3", "dataset.test_per_class=1")
    splits = load_splits(cfg.dataset, "test", 0.1, 0)
    assert splits.train.images.shape == (12, 3, 84, 84)  # resized from 90x90
    assert np.bincount(splits.train.labels).tolist() == [3, 3, 3, 3]
    assert splits.eval.labels.tolist() == [0, 1, 2, 3]


def test_mini_imagenet_pickle_split_is_first_per_class_in_file_order(tmp_path):
    root = fx.write_mini_imagenet_pickles(tmp_path / "mini", per_class=4)
    with open(root / "mini-imagenet-cache-train.pkl", "rb") as f:
        d = pickle.load(f)
    cfg = dataset_cfg("mini_imagenet", root, "dataset.train_per_class=3", "dataset.test_per_class=1")
    splits = load_splits(cfg.dataset, "test", 0.1, 0)
    first_class_images = d["image_data"][d["class_dict"][fx.MINI_WNIDS[0]]].transpose(0, 3, 1, 2)
    assert np.array_equal(splits.train.images[:3], first_class_images[:3])
    assert np.array_equal(splits.eval.images[0], first_class_images[3])


def test_caltech_split_uses_sorted_files_and_skips_non_images(tmp_path):
    root = fx.write_caltech256(tmp_path / "c", per_class=5)
    source = read_caltech256(root, train_per_class=3, test_per_class=2)
    first = [Path(p).name for p in source.train.paths[:3]]
    assert first == ["001_0001.jpg", "001_0002.jpg", "001_0003.jpg"]
    assert [Path(p).name for p in source.test.paths[:2]] == ["001_0004.jpg", "001_0005.jpg"]
    assert source.classes == list(fx.CALTECH_CLASSES)


def test_torchvision_layouts_are_found_under_the_root(tmp_path):
    fx.write_fashion_mnist(tmp_path / "f", torchvision_layout=True)
    assert read_fashion_mnist(tmp_path / "f").train.images.shape == (50, 1, 28, 28)
    fx.write_oxford_pet(tmp_path / "p" / "oxford-iiit-pet")
    source = read_oxford_pet(tmp_path / "p")
    assert source.classes == ["Abyssinian", "american bulldog", "Bengal"] and len(source.test.paths) == 6


def test_corrupt_image_names_the_file(tmp_path):
    root = fx.write_oxford_pet(tmp_path / "pets")
    bad = root / "images" / "Bengal_1.jpg"
    bad.write_bytes(b"\xff\xd8 truncated jpeg")
    cfg = dataset_cfg(
        "oxford_pet",
        root,
        *SMALL_FILE_IMAGES,
        *CPU_MODEL,
        "train.epochs=1",
        "train.average_last=1",
        "train.batch_size=12",
    )
    with pytest.raises(DatasetFormatError, match="Bengal_1.jpg"):
        run_training(cfg, tmp_path / "run")


def test_corrupt_pickle_and_idx_name_the_file(tmp_path):
    root = fx.write_cifar100(tmp_path / "c")
    (root / "cifar-100-python" / "train").write_bytes(b"garbage")
    with pytest.raises(DatasetFormatError, match="cifar-100-python/train"):
        load_splits(dataset_cfg("cifar100", root).dataset, "test", 0.1, 0)
    root = fx.write_fashion_mnist(tmp_path / "f")
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(DatasetFormatError, match="t10k-labels-idx1-ubyte.gz"):
        load_splits(dataset_cfg("fashion_mnist", root).dataset, "test", 0.1, 0)


def test_labels_beyond_num_classes_are_refused(tmp_path):
    root = fx.write_cifar100(tmp_path / "c")
    with pytest.raises(DatasetFormatError, match="dataset.num_classes=50 but the train labels of cifar100 span 0..99"):
        load_splits(dataset_cfg("cifar100", root, "dataset.num_classes=50").dataset, "test", 0.1, 0)


def test_class_with_too_few_images_for_the_per_class_split(tmp_path):
    root = fx.write_caltech256(tmp_path / "c", per_class=5)
    with pytest.raises(DatasetFormatError, match="class '001.ak47' has 5 images, fewer than the 60 train"):
        load_splits(dataset_cfg("caltech256", root, *SMALL_FILE_IMAGES).dataset, "test", 0.1, 0)


def test_single_image_class_in_training_split_is_named(tmp_path):
    root = fx.write_food101(tmp_path / "food")
    meta = root / "food-101" / "meta" / "train.json"
    d = json.loads(meta.read_text())
    d["baklava"] = d["baklava"][:1]
    meta.write_text(json.dumps(d))
    cfg = dataset_cfg(
        "food101", root, *SMALL_FILE_IMAGES, *CPU_MODEL, "train.epochs=1", "train.average_last=1", "train.batch_size=4"
    )
    with pytest.raises(RunError, match="class 2 has a single image"):
        run_training(cfg, tmp_path / "run")


@pytest.mark.parametrize(
    "name,expected",
    [
        (
            "cifar100",
            dict(
                num_classes=100,
                image_size=32,
                lr=0.1,
                step_size=10,
                epochs=120,
                average_last=10,
                pretrained=False,
                model="resnet18",
                augment=(4, 0.5, 16),
            ),
        ),
        (
            "food101",
            dict(
                num_classes=101,
                image_size=224,
                lr=0.1,
                step_size=10,
                epochs=120,
                average_last=10,
                pretrained=False,
                model="resnet50",
                augment=(0, 0.5, 0),
            ),
        ),
        (
            "mini_imagenet",
            dict(
                num_classes=100,
                image_size=84,
                lr=0.1,
                step_size=5,
                epochs=60,
                average_last=5,
                pretrained=False,
                model="resnet18",
                augment=(12, 0.5, 32),
            ),
        ),
        (
            "caltech256",
            dict(
                num_classes=257,
                image_size=224,
                lr=0.01,
                step_size=5,
                epochs=60,
                average_last=5,
                pretrained=True,
                model="resnet50",
                augment=(0, 0.5, 0),
            ),
        ),
        (
            "oxford_pet",
            dict(
                num_classes=37,
                image_size=224,
                lr=0.01,
                step_size=5,
                epochs=60,
                average_last=5,
                pretrained=True,
                model="resnet34",
                augment=(0, 0.5, 0),
            ),
        ),
    ],
)
def test_table1_settings(name, expected):
    cfg = make_cfg(f"dataset={name}")
    got = dict(
        num_classes=cfg.dataset.num_classes,
        image_size=cfg.dataset.image_size,
        lr=cfg.train.lr,
        step_size=cfg.train.step_size,
        epochs=cfg.train.epochs,
        average_last=cfg.train.average_last,
        pretrained=cfg.model.pretrained,
        model=cfg.model.name,
        augment=(cfg.dataset.augment.crop_padding, cfg.dataset.augment.hflip, cfg.dataset.augment.cutout),
    )
    assert got == expected
    assert (cfg.train.momentum, cfg.train.weight_decay, cfg.train.gamma) == (0.9, 5e-4, 0.5)
    mean = list(cfg.dataset.mean)
    assert mean == ([0.5] * 3 if name == "mini_imagenet" else [0.485, 0.456, 0.406])


DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="apt-get install dataset-fashion-mnist")
def test_debian_fashion_mnist_package_loads():
    splits = load_splits(make_cfg("dataset=fashion_mnist").dataset, "test", 0.1, 0)
    assert (len(splits.train.labels), len(splits.eval.labels)) == (60000, 10000)
    assert np.bincount(splits.train.labels).tolist() == [6000] * 10
    assert splits.train.images.shape[1:] == (1, 28, 28)


def test_download_is_used_only_when_asked_and_the_data_is_missing(tmp_path, monkeypatch):
    calls = []

    def fake_download(root):  # stands in for torchvision's downloader (no network here)
        calls.append("food101")
        fx.write_food101(root)

    monkeypatch.setattr(Food101, "download", staticmethod(fake_download))
    root = tmp_path / "food"
    with pytest.raises(DatasetNotFound):
        load_splits(dataset_cfg("food101", root, *SMALL_FILE_IMAGES).dataset, "test", 0.1, 0)
    assert calls == []  # nothing is downloaded silently
    splits = load_splits(
        dataset_cfg("food101", root, *SMALL_FILE_IMAGES, "dataset.download=true").dataset, "test", 0.1, 0
    )
    assert calls == ["food101"] and len(splits.train.labels) == 12
    load_splits(dataset_cfg("food101", root, *SMALL_FILE_IMAGES, "dataset.download=true").dataset, "test", 0.1, 0)
    assert calls == ["food101"]  # present now: not fetched again


def test_mini_imagenet_cannot_be_downloaded(tmp_path):
    with pytest.raises(DatasetNotFound, match="torchvision cannot download"):
        load_splits(dataset_cfg("mini_imagenet", tmp_path, "dataset.download=true").dataset, "test", 0.1, 0)


def test_mini_imagenet_authors_split_is_mlclfs_shuffled_80_20_cut(tmp_path):
    # Independent re-computation of the authors' MLclf split: pool the three cache files in order
    # (train, val, test), Python's random.seed(100) + random.shuffle, first 80% train, the rest test.
    import random

    root = fx.write_mini_imagenet_pickles(tmp_path / "mini", per_class=10)
    pooled = []
    for part in ("train", "val", "test"):
        with open(root / f"mini-imagenet-cache-{part}.pkl", "rb") as f:
            pooled.append(pickle.load(f)["image_data"])
    pooled = np.concatenate(pooled).transpose(0, 3, 1, 2)
    random.seed(100)
    order = list(range(len(pooled)))
    random.shuffle(order)
    cut = int(len(pooled) * 0.8)
    splits = load_splits(dataset_cfg("mini_imagenet", root, "dataset.split=authors").dataset, "test", 0.1, 42)
    assert (len(splits.train.labels), len(splits.eval.labels)) == (32, 8)
    assert np.array_equal(splits.train.images, pooled[order[:cut]])
    assert np.array_equal(splits.eval.images, pooled[order[cut:]])
    assert np.array_equal(
        splits.train.labels, np.repeat(np.arange(4), 10)[order[:cut]]
    )  # wnids sorted = file order here
    table1 = load_splits(
        dataset_cfg("mini_imagenet", root, "dataset.train_per_class=8", "dataset.test_per_class=2").dataset,
        "test",
        0.1,
        42,
    )
    assert np.bincount(table1.eval.labels).tolist() == [2, 2, 2, 2]  # the default stays Table 1's per-class cut
    from synermix.errors import ConfigError

    with pytest.raises(ConfigError, match="dataset.split='random' is invalid: it must be one of"):
        run_training(dataset_cfg("mini_imagenet", root, "dataset.split=random"), tmp_path / "run")
