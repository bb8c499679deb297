"""Mixers are plug-ins: a mixer class outside the package, named by `_target_`, trains with no edit to the package."""

import pytest

from helpers import ROOT, make_cfg, metrics_without_time
from synermix.errors import ConfigError
from synermix.method.mixers import MIXERS, build_mixer
from synermix.run.training import run_training

FAST = (
    "method=synermix",
    "train.epochs=2",
    "train.average_last=1",
    "train.batch_size=16",
    "dataset.max_per_class=8",
    "train.cohesion_samples=0",
)


def test_a_mixer_copied_into_a_users_module_and_renamed_trains_as_the_built_in_one(tmp_path, monkeypatch):
    source = (ROOT / "synermix" / "method" / "mixers" / "mixup.py").read_text()
    (tmp_path / "my_mixers.py").write_text(source.replace("class MixUp:", "class MyMixUp:"))
    monkeypatch.syspath_prepend(str(tmp_path))
    mine = run_training(make_cfg(*FAST, "method.inter={_target_:my_mixers.MyMixUp,alpha:1.0}"), tmp_path / "mine")
    run_training(make_cfg(*FAST), tmp_path / "built_in")
    assert mine["inter"] == "my_mixers.MyMixUp" and mine["status"] == "complete"
    assert metrics_without_time(tmp_path / "mine") == metrics_without_time(tmp_path / "built_in")  # same draws


def test_a_switch_schedule_takes_a_mixer_of_your_own_beside_a_built_in_one(tmp_path, monkeypatch):
    source = (ROOT / "synermix" / "method" / "mixers" / "mixup.py").read_text()
    (tmp_path / "my_switch_mixers.py").write_text(source.replace("class MixUp:", "class MyMixUp:"))
    monkeypatch.syspath_prepend(str(tmp_path))
    mine = run_training(
        make_cfg(*FAST, "method.switch_prob=0.5", "method.inter=[mixup,{_target_:my_switch_mixers.MyMixUp,alpha:1.0}]"),
        tmp_path / "mine",
    )
    run_training(make_cfg(*FAST, "method.switch_prob=0.5", "method.inter=[mixup,mixup]"), tmp_path / "built_in")
    assert mine["inter"] == "mixup+my_switch_mixers.MyMixUp" and mine["status"] == "complete"
    assert metrics_without_time(tmp_path / "mine") == metrics_without_time(tmp_path / "built_in")


@pytest.mark.parametrize(
    "spec, match",
    [
        ("cutout", "inter must be 'none', one of"),
        ({"_target_": "no_such_module.Mixer"}, "cannot be instantiated"),
        ({"_target_": "collections.OrderedDict"}, "has no draw"),
    ],
)
def test_a_mixer_that_cannot_be_built_is_refused_by_name(spec, match):
    with pytest.raises(ValueError, match=match):
        build_mixer(spec)


def test_an_unknown_mixer_name_is_refused_before_any_data_is_read():
    from synermix.run.validation import validate_config

    with pytest.raises(ConfigError, match=r"method.inter='cutout' is invalid: it must be one of \['none', 'mixup'"):
        validate_config(make_cfg("method.inter=cutout"))
    assert sorted(MIXERS.names()) == ["cutmix", "fmix", "manifold", "mixup", "resizemix", "saliencymix"]


def test_a_users_mixer_that_cannot_be_built_is_refused_before_any_data_is_read():
    from synermix.run.validation import validate_config

    with pytest.raises(ConfigError, match=r"method.inter=\{_target_: no_such_module.Mixer\} cannot be instantiated"):
        validate_config(make_cfg("method.inter={_target_:no_such_module.Mixer}"))
