"""Mixers by name or `_target_`: what cannot be built is refused by name (a mixer of your own trains:
tests/test_plugins_from_outside.py)."""

import pytest

from helpers import make_cfg
from synermix.errors import ConfigError
from synermix.method.mixers import MIXERS, build_mixer

FAST = (
    "method=synermix",
    "train.epochs=2",
    "train.average_last=1",
    "train.batch_size=16",
    "dataset.max_per_class=8",
    "train.cohesion_samples=0",
)


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
