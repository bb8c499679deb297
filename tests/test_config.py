"""Start-up validation: each bad value is refused with a message naming the key, value and allowed set."""

import subprocess
import sys

import pytest
import torch

from helpers import ROOT, make_cfg
from synermix.config.identity import config_differences
from synermix.config.presets import method_presets, preset_switches
from synermix.run.training import resolve_device, run_training
from synermix.run.validation import ConfigError, validate_config

METHODS = ["baseline", "intra", "intra_aug", "mixup", "manifold_mixup", "synermix", "synermix_mm"]


@pytest.mark.parametrize("method", METHODS)
def test_every_preset_composes_and_validates(method):
    cfg = make_cfg(f"method={method}")
    validate_config(cfg)
    assert cfg.method.name == method
    assert cfg.dataset.name == "digits" and cfg.train.epochs == 8  # the dataset's settings win over defaults


def test_the_library_reads_its_presets_from_the_method_configs():
    assert set(method_presets()) == {p.stem for p in (ROOT / "configs" / "method").glob("*.yaml")}
    for name in method_presets():
        method = make_cfg(f"method={name}").method
        assert (method.intra, method.inter, method.beta) == preset_switches(name)


def test_preset_switches_match_the_paper_table():
    table = {m: (make_cfg(f"method={m}").method.intra, make_cfg(f"method={m}").method.inter) for m in METHODS}
    assert table == {
        "baseline": ("none", "none"),
        "intra": ("original", "none"),
        "intra_aug": ("augmented", "none"),
        "mixup": ("none", "mixup"),
        "manifold_mixup": ("none", "manifold"),
        "synermix": ("original", "mixup"),
        "synermix_mm": ("original", "manifold"),
    }
    assert {m: make_cfg(f"method={m}").method.inter for m in ("cutmix", "synermix_cutmix")} == {
        "cutmix": "cutmix",
        "synermix_cutmix": "cutmix",
    }
    assert list(make_cfg("method=synermix_cutmix").method.beta_grid) == [0.05, 0.1, 0.2, 0.4]


def test_label_smoothing_at_zero_keeps_every_run_directory_and_any_other_value_moves_it():
    from omegaconf import OmegaConf, open_dict

    from synermix.config.identity import config_id

    cfg = make_cfg("method=synermix")
    without = OmegaConf.create(OmegaConf.to_container(cfg))
    with open_dict(without):
        del without.train["label_smoothing"]  # a config from before the key existed
    assert config_id(cfg) == config_id(without)
    assert config_id(make_cfg("method=synermix", "train.label_smoothing=0.1")) != config_id(cfg)


@pytest.mark.parametrize(
    "override,expected",
    [
        ("method.beta=1.5", "method.beta=1.5 is invalid: it must be a number in [0, 1]"),
        ("method.beta=-0.2", "method.beta=-0.2"),
        ("method.alpha=0", "method.alpha=0 is invalid: it must be a number > 0"),
        ("method.intra=orig", "method.intra='orig' is invalid: it must be one of ['none', 'original', 'augmented']"),
        (
            "method.inter=cutout",
            "method.inter='cutout' is invalid: it must be one of ['none', 'mixup', 'manifold', "
            "'cutmix', 'saliencymix', 'resizemix', 'fmix']",
        ),
        ("train.label_smoothing=1.0", "train.label_smoothing=1.0 is invalid: it must be a number in [0, 1)"),
        ("method.lam_mode=pair", "method.lam_mode='pair'"),
        ("method.num_per_class=0", "method.num_per_class=0 is invalid: it must be an integer in [1, 256]"),
        ("train.batch_size=1", "train.batch_size=1 is invalid: it must be an integer >= 2"),
        ("train.epochs=0", "train.epochs=0 is invalid"),
        ("train.average_last=20", "train.average_last=20 is invalid: it must be an integer in [1, train.epochs=8]"),
        ("train.lr=0", "train.lr=0"),
        ("train.gamma=1.5", "train.gamma=1.5"),
        ("train.supplement=maybe", "train.supplement='maybe'"),
        ("phase=train", "phase='train' is invalid: it must be one of ['val', 'test']"),
        ("val_ratio=1.0", "val_ratio=1.0"),
        ("device=tpu", "device='tpu'"),
        ("seed=-1", "seed=-1"),
    ],
)
def test_bad_values_are_named(override, expected):
    with pytest.raises(ConfigError) as info:
        validate_config(make_cfg(override))
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_cross_key_problems():
    with pytest.raises(ConfigError, match="method.beta=0.3 weights the intra-class loss"):
        validate_config(make_cfg("method=mixup", "method.beta=0.3"))
    with pytest.raises(ConfigError, match="no pretrained weights exist for model.name=cifar_resnet"):
        validate_config(make_cfg("model.pretrained=true"))


def test_several_problems_are_reported_together():
    with pytest.raises(ConfigError) as info:
        validate_config(make_cfg("method.beta=2", "train.batch_size=1"))
    assert "method.beta=2" in str(info.value) and "train.batch_size=1" in str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU messages")
def test_device_and_amp_without_gpu():
    with pytest.raises(ConfigError, match="device='cuda' but no CUDA device"):
        resolve_device("cuda", False)
    assert resolve_device("auto", True).type == "cpu"  # amp on CPU: bfloat16/float16 autocast
    assert resolve_device("auto", False).type == "cpu"


def test_config_differences_names_changed_keys_and_ignores_free_ones():
    a = {"train": {"lr": 0.1, "num_workers": 0}, "seed": 0, "device": "cpu"}
    b = {"train": {"lr": 0.2, "num_workers": 4}, "seed": 0, "device": "cuda"}
    assert config_differences(a, b) == ["train.lr: 0.1 -> 0.2"]


def test_config_differences_reads_a_key_added_later_as_its_neutral_default():
    older = {"train": {"lr": 0.1}}  # written before train.label_smoothing existed
    assert config_differences(older, {"train": {"lr": 0.1, "label_smoothing": 0.0}}) == []
    assert config_differences(older, {"train": {"lr": 0.1, "label_smoothing": 0.1}}) == [
        "train.label_smoothing: 0.0 -> 0.1"
    ]


def test_cli_refuses_bad_value_with_one_paragraph_and_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "method.beta=1.5", f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "method.beta=1.5 is invalid" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "metrics.csv").exists()


def test_cli_unknown_preset_lists_choices(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "method=synermixx", f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "synermixx" in proc.stderr and "synermix_mm" in proc.stderr


def test_image_size_must_match_the_data(tmp_path):
    with pytest.raises(ConfigError, match="dataset.image_size=32 but digits images are 8x8"):
        run_training(make_cfg("dataset.image_size=32"), tmp_path)


def test_the_default_average_last_shortens_to_a_short_run_but_an_explicit_one_does_not():
    short = make_cfg("train.epochs=1")
    validate_config(short)  # `python scripts/train.py train.epochs=1` is valid
    assert short.train.average_last == 1
    cifar = make_cfg("dataset=cifar100", "dataset.root=/data", "train.epochs=5")
    assert (cifar.train.average_last, make_cfg("dataset=cifar100", "dataset.root=/data").train.average_last) == (5, 10)
    assert make_cfg("dataset=mini_imagenet", "dataset.root=/data").train.average_last == 5  # Sec. 4.1.3's values stay
    with pytest.raises(
        ConfigError, match=r"train.average_last=3 is invalid: it must be an integer in \[1, train.epochs=1\]"
    ):
        validate_config(make_cfg("train.epochs=1", "train.average_last=3"))


def test_a_run_trained_in_the_former_view_order_is_neither_reused_nor_resumed_in_the_authors_order(tmp_path):
    from omegaconf import OmegaConf, open_dict

    from helpers.hooks import CrashAt
    from synermix.config.identity import config_id
    from synermix.run.training import run_training
    from synermix.store.rundir import ForeignRunDir

    fast = (
        "method=intra",
        "train.epochs=2",
        "train.average_last=1",
        "dataset.max_per_class=6",
        "train.cohesion_samples=0",
    )
    old = make_cfg(*fast, "train.view_order=augmented_first")
    older = OmegaConf.create(OmegaConf.to_container(old))
    with open_dict(older):
        del older.train["view_order"]  # a config written before the key existed
    assert config_id(older) == config_id(old) != config_id(make_cfg(*fast))  # a new directory for the new order
    with pytest.raises(KeyboardInterrupt):  # stopped after epoch 1's checkpoint
        run_training(old, tmp_path / "run", hooks=[CrashAt(epoch=2, step=1)])
    OmegaConf.save(older, tmp_path / "run" / "config.yaml")
    with pytest.raises(ForeignRunDir, match=r"train.view_order: 'augmented_first' -> 'original_first'"):
        run_training(make_cfg(*fast), tmp_path / "run")
    assert run_training(old, tmp_path / "run")["status"] == "complete"  # given back, it resumes


def test_the_presets_come_in_the_papers_table_order():
    assert list(method_presets()) == [
        "baseline",
        "intra",
        "intra_aug",
        "mixup",
        "manifold_mixup",
        "synermix",
        "synermix_mm",
        "cutmix",
        "saliencymix",
        "resizemix",
        "fmix",
        "synermix_cutmix",
        "synermix_saliencymix",
        "synermix_resizemix",
        "synermix_fmix",
    ]
