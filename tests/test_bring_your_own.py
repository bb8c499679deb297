"""Bring your own model and data: any timm model, ImageFolder trees, the export script, synermix.wrap."""

import json
import subprocess
import sys

import huggingface_hub
import numpy as np
import pytest
import timm
import torch
import torchvision
from torchvision.datasets import ImageFolder

from helpers import ROOT, make_cfg
from helpers.datasets import write_image_folder
from synermix import SynerMixLoss, wrap
from synermix.data import load_splits
from synermix.data.sources import DatasetFormatError, DatasetNotFound
from synermix.errors import ConfigError, WeightsError
from synermix.models import build_model
from synermix.models.timm_models import TimmClassifier
from synermix.run.training import run_training

TIMM_E2E = {  # arch -> model.kwargs: a ResNet, a MobileNet, a ConvNeXt and a ViT, tiny variants at 32 px
    "resnet10t": {},
    "mobilenetv3_small_050": {},
    "convnext_atto": {},
    "vit_tiny_patch16_224": {"img_size": 32, "patch_size": 8},
}


def folder_cfg(root, *overrides):
    return make_cfg(
        "dataset=image_folder",
        f"dataset.root={root}",
        "dataset.recipe=cifar",
        "dataset.image_size=32",
        "train.epochs=1",
        "train.batch_size=8",
        "train.cohesion_samples=0",
        *overrides,
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("folder"), train_per_class=8, test_per_class=3)


def timm_cfg(arch, kwargs, *extra):
    kw = [f"+model.kwargs.{k}={v}" for k, v in kwargs.items()]
    return ["model=timm", f"model.arch={arch}", *kw, *extra]


@pytest.mark.parametrize("arch", list(TIMM_E2E))
def test_timm_models_train_end_to_end_with_manifold_mixing_at_their_feature_stages(arch, folder, tmp_path):
    cfg = folder_cfg(folder, *timm_cfg(arch, TIMM_E2E[arch]), "method=synermix_mm")
    summary = run_training(cfg, tmp_path)
    assert summary["status"] == "complete" and 0 <= summary["final_acc"] <= 100
    model = build_model(cfg.model, 3, 3, 32)
    net = timm.create_model(arch, num_classes=3, **TIMM_E2E[arch])
    stages = [f["module"] for f in net.feature_info if f["reduction"] > 2][:2]
    assert list(model.mix_points) == ["input", *stages]


def test_a_hooked_mix_point_changes_exactly_what_follows_it_and_the_hook_is_removed():
    torch.manual_seed(0)
    model = build_model(make_cfg(*timm_cfg("resnet10t", {})).model, 5, 3, 32).eval()
    net, x = model.net, torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        zeroed = model.features(x, mix_at="layer1", mix_fn=torch.zeros_like)
        h = torch.zeros_like(net.layer1(net.maxpool(net.act1(net.bn1(net.conv1(x))))))
        expected = net.forward_head(net.layer4(net.layer3(net.layer2(h))), pre_logits=True)
        torch.testing.assert_close(zeroed, expected)
        torch.testing.assert_close(model.features(x, "layer1", lambda t: t), model.features(x))
        assert not net.layer1._forward_hooks
        torch.testing.assert_close(model(x), net(x))  # features + head = timm's own forward
    assert model.head is net.get_classifier() and not any(k.startswith("head.") for k in model.state_dict())


def test_timm_weights_from_a_file_load_the_backbone_and_refuse_another_architecture(tmp_path):
    torch.manual_seed(1)
    source = timm.create_model("resnet10t", num_classes=7)
    torch.save(source.state_dict(), tmp_path / "r10.pt")
    model = build_model(make_cfg(*timm_cfg("resnet10t", {}), f"model.weights={tmp_path / 'r10.pt'}").model, 3, 3, 32)
    torch.testing.assert_close(model.net.layer2[0].conv1.weight, source.layer2[0].conv1.weight)
    assert model.head.out_features == 3  # the classifier is always new
    torch.save(timm.create_model("convnext_atto").state_dict(), tmp_path / "cnx.pt")
    with pytest.raises(WeightsError, match="do not fit timm resnet10t"):
        build_model(make_cfg(*timm_cfg("resnet10t", {}), f"model.weights={tmp_path / 'cnx.pt'}").model, 3, 3, 32)


def test_unknown_timm_names_small_inputs_and_missing_pretrained_weights_are_one_message(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"model.arch='resnet_17' is not a timm model.*resnet"):
        build_model(make_cfg(*timm_cfg("resnet_17", {})).model, 3, 3, 32)
    with pytest.raises(ConfigError, match=r"vit_tiny_patch16_224 cannot take the data's 32x32 images.*img_size=32"):
        build_model(make_cfg(*timm_cfg("vit_tiny_patch16_224", {})).model, 3, 3, 32)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty_cache"))
    with pytest.raises(
        WeightsError, match=r"timm resnet10t \(timm/resnet10t.*\) are not in the local Hugging Face cache"
    ):
        build_model(make_cfg(*timm_cfg("resnet10t", {}), "model.pretrained=true").model, 3, 3, 32)


def test_image_folder_classes_and_samples_are_torchvisions(folder):
    splits = load_splits(make_cfg("dataset=image_folder", f"dataset.root={folder}").dataset, "test", 0.1, 0)
    reference = ImageFolder(str(folder / "train"))
    assert splits.train.paths == [p for p, _ in reference.samples]
    assert splits.train.labels.tolist() == [c for _, c in reference.samples] and splits.num_classes == 3
    assert sorted(reference.class_to_idx, key=reference.class_to_idx.get) == ["cat", "dog", "emu"]
    assert np.bincount(splits.eval.labels).tolist() == [3, 3, 3]


def test_flat_image_folder_is_split_stratified_and_reproducibly(tmp_path):
    root = write_image_folder(tmp_path, train_per_class=10, layout="flat")
    cfg = make_cfg("dataset=image_folder", f"dataset.root={root}", "dataset.test_ratio=0.3").dataset
    first, again = load_splits(cfg, "test", 0.1, 0), load_splits(cfg, "test", 0.1, 0)
    assert np.bincount(first.eval.labels).tolist() == [3, 3, 3] and np.bincount(first.train.labels).tolist() == [
        7,
        7,
        7,
    ]
    assert first.eval.paths == again.eval.paths and not set(first.eval.paths) & set(first.train.paths)


def test_image_folder_runs_with_the_imagenet_recipe_from_files(folder, tmp_path):
    cfg = make_cfg(
        "dataset=image_folder",
        f"dataset.root={folder}",
        "dataset.image_size=24",
        "dataset.eval_resize=28",
        "model=cifar_resnet",
        "method=synermix_cutmix",
        "train.epochs=2",
        "train.batch_size=8",
        "train.label_smoothing=0.1",
    )
    summary = run_training(cfg, tmp_path)
    assert summary["status"] == "complete" and summary["final_ece"] is not None
    assert (cfg.dataset.augment.crop_padding, cfg.dataset.augment.cutout) == (0, 0)  # the imagenet recipe
    assert (
        make_cfg("dataset=image_folder", "dataset.recipe=cifar", "dataset.image_size=32").dataset.augment.cutout == 16
    )


@pytest.mark.parametrize(
    "damage,message",
    [
        ("empty_class", "no image file in the class folder(s) ['emu']. Expected layout"),
        ("missing_test_class", "only in train: ['emu']"),
        ("no_layout", "holds no image folders"),
        ("unreadable", "img_001.JPG"),
    ],
)
def test_bad_image_folders_are_named_with_the_expected_layout(damage, message, tmp_path):
    root = write_image_folder(tmp_path / "data", train_per_class=2, test_per_class=2)
    if damage == "empty_class":
        for f in (root / "train" / "emu").iterdir():
            f.unlink()
    elif damage == "missing_test_class":
        for f in (root / "test" / "emu").iterdir():
            f.unlink()
        (root / "test" / "emu").rmdir()
    elif damage == "no_layout":
        root = tmp_path / "empty"
        root.mkdir()
    else:
        (root / "train" / "dog" / "img_001.JPG").write_bytes(b"not a jpeg")
    cfg = make_cfg(
        "dataset=image_folder", f"dataset.root={root}", "dataset.recipe=cifar", "dataset.image_size=16"
    ).dataset
    with pytest.raises((DatasetFormatError, DatasetNotFound)) as info:
        load_splits(cfg, "test", 0.1, 0)
    assert message in str(info.value) and "\n" not in str(info.value)
    if damage != "unreadable":
        assert "Expected layout" in str(info.value)


def test_export_script_writes_a_tree_that_reads_back_as_the_same_images(tmp_path):
    out = tmp_path / "digits_folder"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "export_image_folder.py"),
            "digits",
            "-",
            str(out),
            "--max-per-class",
            "4",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (out / "train").iterdir()) == [f"{i}_{i}" for i in range(10)]
    back = load_splits(
        make_cfg("dataset=image_folder", f"dataset.root={out}", "dataset.recipe=cifar", "dataset.image_size=8").dataset,
        "test",
        0.1,
        0,
    )
    original = load_splits(make_cfg("dataset=digits", "dataset.max_per_class=4").dataset, "test", 0.1, 0)
    order = np.argsort(original.train.labels, kind="stable")  # the tree is read class by class
    assert back.train.labels.tolist() == original.train.labels[order].tolist()
    assert np.array_equal(back.train.images, np.repeat(original.train.images[order], 3, axis=1))  # PNG is lossless
    assert (
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "export_image_folder.py"), "digits", "-", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).returncode
        == 2
    )  # never overwrites


def test_wrap_gives_torchvision_and_timm_classifiers_what_the_loss_needs():
    torch.manual_seed(0)
    x, y = torch.randn(6, 3, 32, 32), torch.tensor([0, 0, 1, 1, 2, 2])
    resnet = torchvision.models.resnet18(num_classes=3)
    wrapped = wrap(resnet)
    assert wrapped.head is resnet.fc and wrapped.mix_points == ("input", "layer1", "layer2")
    resnet.eval()
    torch.testing.assert_close(wrapped.eval()(x), resnet(x))  # same modules, same function
    vit = timm.create_model("vit_tiny_patch16_224", num_classes=3, img_size=32, patch_size=8)
    assert isinstance(wrap(vit), TimmClassifier) and wrap(vit, ["input", "blocks.1"]).mix_points == (
        "input",
        "blocks.1",
    )
    for model in (wrapped.train(), wrap(vit)):
        terms = SynerMixLoss("original", "manifold", 0.1, num_classes=3)(model, x, x.flip(3), y, torch.Generator())
        terms.total.backward()
    with pytest.raises(TypeError, match="cannot split a Sequential"):
        wrap(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3, 2)))
    assert json.dumps(list(wrapped.mix_points))
