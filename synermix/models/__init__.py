"""Models: `model.name` (or `model._target_`) -> a StagedClassifier with features(), a linear head and mix points,
through the one registry (synermix.models.registry.MODELS)."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from synermix.config.checks import Check, is_bool, is_int
from synermix.errors import WeightsError, value_errors_as_config_errors
from synermix.models.cifar_resnet import cifar_resnet
from synermix.models.registry import MIX_POINT_SETS, MODELS, ModelEntry, as_entry
from synermix.models.staged import StagedClassifier
from synermix.models.weights import read_state_dict

ENTRY = "a synermix.models.registry.ModelEntry"


def model_entry(group) -> ModelEntry:
    """The registry entry of the `model` group: by `model.name`, or `model._target_` (ConfigError if neither)."""
    return as_entry(MODELS.entry_of(group, ENTRY))


def known_model_entry(group) -> ModelEntry | None:
    """The entry of `group`, or None for a name no entry has (the name's check reports it)."""
    found = MODELS.known(group, ENTRY)
    return None if found is None else as_entry(found)


def _mix_points_ok(v) -> bool:
    return (
        v in (*MIX_POINT_SETS, "feature_info")
        if isinstance(v, str)
        else (len(v) > 0 and all(isinstance(p, str) for p in v))
    )


def model_checks(group) -> tuple:
    """The checks of the `model` config group: every model's keys, then the entry's own."""
    entry = known_model_entry(group)
    return (
        *MODELS.group_checks(group, ENTRY),
        Check("pretrained", is_bool, "true or false"),
        Check(
            "weights",
            lambda v: v is None or (isinstance(v, str) and v.strip() != ""),
            "null or the path of a weights file",
        ),
        Check("download", is_bool, "true or false", optional=True),
        Check("small_input_below", lambda v: is_int(v) and v >= 1, "an integer >= 1", optional=True),
        Check(
            "mix_points",
            _mix_points_ok,
            f"one of {list(MIX_POINT_SETS)} for the paper's models (paper: Sec. 4.1.2's sets; authors: the released "
            "code's draws), or for model=timm 'feature_info' or a list of 'input' and module names",
            optional=True,
        ),
        Check("arch", lambda v: isinstance(v, str) and v.strip() != "", "a timm model name", optional=True),
        *(entry.checks if entry is not None else ()),
    )


def build_model(cfg, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """Instantiate the `model` group's entry for the data's classes/channels/size, with weights from
    `model.weights` or (when `model.pretrained`) ImageNet weights from torchvision's (timm: Hugging Face's) local
    cache; the head is always new. `model=timm` builds any timm architecture (`model.arch`)."""
    entry = model_entry(cfg)
    with value_errors_as_config_errors():  # bad architecture settings
        path = Path(str(cfg.weights)).expanduser() if cfg.get("weights") else None
        state = read_state_dict(path) if path else None
        return entry.build(cfg, num_classes, in_channels, image_size, state, str(path))


__all__ = [
    "MIX_POINT_SETS",
    "MODELS",
    "StagedClassifier",
    "WeightsError",
    "build_model",
    "cifar_resnet",
    "model_checks",
    "model_entry",
]
