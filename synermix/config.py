"""Start-up validation of the composed Hydra config: every bad value is named before data is touched."""
from __future__ import annotations

import math
import numbers
import os
import re
from typing import Any, List

from omegaconf import DictConfig, ListConfig, OmegaConf

from synermix.data import DATASET_NAMES
from synermix.data.sources import MINI_SPLITS
from synermix.data.tree import BAD_IMAGE_ACTIONS
from synermix.errors import ConfigError
from synermix.identity import NEUTRAL_DEFAULTS, RESUME_FREE_KEYS, RETIRED_KEYS
from synermix.loss import INTRA_CHOICES, VIEW_ORDERS, uses_original_view
from synermix.mixers import MIXERS, build_mixer
from synermix.presets import method_presets
from synermix.mixup import LAM_MODES
from synermix.models import MIX_POINT_SETS, MODEL_NAMES, PRETRAINED_NAMES
from synermix.models.cifar_resnet import NORMS

METHOD_NAMES = tuple(method_presets())
PHASES = ("val", "test")
DEVICES = ("auto", "cpu", "cuda")



OPTIONAL = "optional"  # marks a key that only some config group options define


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    """A finite real number (NaN and infinities are refused everywhere)."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _is_numbers(v: Any, ok=lambda x: True) -> bool:
    return isinstance(v, ListConfig) and len(v) >= 1 and all(_is_num(x) and ok(x) for x in v)


NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")  # safe as one folder name
MAX_PER_CLASS_SYNTHESES = 256


def _checks(cfg: DictConfig) -> List[tuple]:
    """(key, predicate, allowed-description[, OPTIONAL]) for every user-facing key."""
    return [*_dataset_checks(cfg), *_model_and_method_checks(), *_run_checks(cfg)]


def _dataset_checks(cfg: DictConfig) -> List[tuple]:
    """The checks of the dataset group."""
    size = OmegaConf.select(cfg, "dataset.image_size", default=None)
    return [
        ("dataset.name", lambda v: v in DATASET_NAMES, f"one of {list(DATASET_NAMES)}"),
        (
            "dataset.root",
            lambda v: cfg.dataset.name == "digits" or (isinstance(v, str) and v.strip() != ""),
            f"the folder holding the data set (dataset.root=/path/to/{cfg.dataset.name})",
        ),
        ("dataset.num_classes", lambda v: (v is None and cfg.dataset.name == "image_folder") or (_is_int(v) and v >= 2),
         "an integer >= 2 (null for image_folder: the number of class folders)"),
        ("dataset.recipe", lambda v: v in ("imagenet", "cifar"), "imagenet or cifar", OPTIONAL),
        ("dataset.on_bad_image", lambda v: v in BAD_IMAGE_ACTIONS,
         "error (refuse unreadable images, listing them) or skip (train without them, with a warning)", OPTIONAL),
        ("dataset.test_ratio", lambda v: _is_num(v) and 0 < v < 1, "a number in (0, 1)", OPTIONAL),
        ("dataset.image_size", lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        ("dataset.download", lambda v: isinstance(v, bool), "true or false"),
        ("dataset.max_per_class", lambda v: v is None or (_is_int(v) and v >= 2), "null or an integer >= 2", OPTIONAL),
        ("dataset.train_per_class", lambda v: _is_int(v) and v >= 1, "an integer >= 1", OPTIONAL),
        ("dataset.test_per_class", lambda v: _is_int(v) and v >= 1, "an integer >= 1", OPTIONAL),
        ("dataset.verify_md5", lambda v: isinstance(v, bool), "true or false", OPTIONAL),
        (
            "dataset.split",
            lambda v: v in MINI_SPLITS,
            f"one of {list(MINI_SPLITS)} (table1: 500/100 per class as Table 1; authors: the released code's split)",
            OPTIONAL,
        ),
        ("dataset.mean", _is_numbers, "a list of numbers (one per image channel)"),
        ("dataset.std", lambda v: _is_numbers(v, lambda x: x > 0), "a list of numbers > 0 (one per image channel)"),
        ("dataset.augment.crop_padding", lambda v: _is_int(v) and v >= 0, "an integer >= 0 (0: no padded crop)"),
        ("dataset.augment.hflip", lambda v: _is_num(v) and 0 <= v <= 1, "a probability in [0, 1]"),
        (
            "dataset.augment.cutout",
            lambda v: _is_int(v) and 0 <= v <= (size if _is_int(size) else v),
            f"an integer in [0, dataset.image_size={size}] (0: no cutout)",
        ),
        (
            "dataset.eval_resize",
            lambda v: _is_int(v) and v >= (size if _is_int(size) else v),
            f"an integer >= dataset.image_size={size}",
            OPTIONAL,
        ),
        ("model.depth", lambda v: _is_int(v) and v >= 8 and (v - 2) % 6 == 0, "an integer 6n+2 >= 8 (8, 14, 20, ...)", OPTIONAL),
        ("model.width", lambda v: _is_int(v) and v >= 1, "an integer >= 1", OPTIONAL),
        ("model.norm", lambda v: v in NORMS, f"one of {list(NORMS)}", OPTIONAL),
    ]


def _model_and_method_checks() -> List[tuple]:
    """The checks of the model and method groups."""
    return [
        ("model.name", lambda v: v in MODEL_NAMES, f"one of {list(MODEL_NAMES)}"),
        ("model.pretrained", lambda v: isinstance(v, bool), "true or false"),
        ("model.weights", lambda v: v is None or (isinstance(v, str) and v.strip() != ""), "null or the path of a weights file"),
        ("model.download", lambda v: isinstance(v, bool), "true or false", OPTIONAL),
        ("model.small_input_below", lambda v: _is_int(v) and v >= 1, "an integer >= 1", OPTIONAL),
        (
            "model.mix_points",
            lambda v: v in (*MIX_POINT_SETS, "feature_info") or (
                isinstance(v, (list, ListConfig)) and len(v) > 0 and all(isinstance(p, str) for p in v)),
            f"one of {list(MIX_POINT_SETS)} for the paper's models (paper: Sec. 4.1.2's sets; authors: the released "
            "code's draws), or for model=timm 'feature_info' or a list of 'input' and module names",
            OPTIONAL,
        ),
        ("model.arch", lambda v: isinstance(v, str) and v.strip() != "", "a timm model name", OPTIONAL),
        (
            "method.name",
            lambda v: isinstance(v, str) and NAME.match(v) is not None,
            "a name of letters, digits, '_', '.', '+', '-' (it names a folder; presets: " + ", ".join(METHOD_NAMES) + ")",
        ),
        ("method.intra", lambda v: v in INTRA_CHOICES, f"one of {list(INTRA_CHOICES)}"),
        ("method.inter", lambda v: v in ("none", *MIXERS) or (isinstance(v, DictConfig) and "_target_" in v),
         f"one of {['none', *MIXERS]}, or a mapping with _target_ naming your mixer class (see synermix.mixers)"),
        ("method.beta", lambda v: _is_num(v) and 0 <= v <= 1, "a number in [0, 1]"),
        ("method.alpha", lambda v: _is_num(v) and v > 0, "a number > 0"),
        ("method.lam_mode", lambda v: v in LAM_MODES, f"one of {list(LAM_MODES)}"),
        (
            "method.num_per_class",
            lambda v: _is_int(v) and 1 <= v <= MAX_PER_CLASS_SYNTHESES,
            f"an integer in [1, {MAX_PER_CLASS_SYNTHESES}] (synthesized features per class and step)",
        ),
        (
            "method.beta_grid",
            lambda v: all(_is_num(b) and 0 <= b <= 1 for b in v),
            "a list of numbers in [0, 1]",
            OPTIONAL,
        ),
    ]


def _run_checks(cfg: DictConfig) -> List[tuple]:
    """The checks of train.* and the top-level keys."""
    epochs = cfg.train.epochs
    return [
        ("train.batch_size", lambda v: _is_int(v) and v >= 2, "an integer >= 2"),
        ("train.epochs", lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        ("train.lr", lambda v: _is_num(v) and v > 0, "a number > 0"),
        ("train.momentum", lambda v: _is_num(v) and 0 <= v < 1, "a number in [0, 1)"),
        ("train.label_smoothing", lambda v: _is_num(v) and 0 <= v < 1,
         "a number in [0, 1) (0: hard targets, the paper's setting)", OPTIONAL),
        ("train.weight_decay", lambda v: _is_num(v) and v >= 0, "a number >= 0"),
        ("train.nesterov", lambda v: isinstance(v, bool), "true or false"),
        ("train.step_size", lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        ("train.gamma", lambda v: _is_num(v) and 0 < v <= 1, "a number in (0, 1]"),
        (
            "train.average_last",
            lambda v: _is_int(v) and 1 <= v <= (epochs if _is_int(epochs) else v),
            f"an integer in [1, train.epochs={epochs}]",
        ),
        ("train.default_average_last", lambda v: _is_int(v) and v >= 1, "an integer >= 1", OPTIONAL),
        ("train.num_workers", lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
        ("train.supplement", lambda v: isinstance(v, bool), "true or false"),
        ("train.eval_batch_size", lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        ("train.cohesion_samples", lambda v: _is_int(v) and v >= 0, "an integer >= 0 (0: off)"),
        ("train.log_interval", lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        ("train.checkpoint_every_steps", lambda v: _is_int(v) and v >= 0, "an integer >= 0 (0: epoch ends only)"),
        ("train.keep_checkpoints", lambda v: isinstance(v, bool), "true or false", OPTIONAL),
        ("hooks", lambda v: v is None or isinstance(v, DictConfig), "a mapping name -> {_target_: ...}", OPTIONAL),
        ("seed", lambda v: _is_int(v) and 0 <= v < 2**32, "an integer in [0, 2^32)"),
        ("phase", lambda v: v in PHASES, f"one of {list(PHASES)}"),
        (
            "run_tag",
            lambda v: isinstance(v, str) and (v == "" or NAME.match(v) is not None),
            "\"\" or a name of letters, digits, '_', '.', '+', '-' (no path separator)",
            OPTIONAL,
        ),
        ("val_ratio", lambda v: _is_num(v) and 0 < v < 1, "a number in (0, 1)"),
        ("val_seed", lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
        ("device", lambda v: v in DEVICES, f"one of {list(DEVICES)}"),
        ("amp", lambda v: isinstance(v, bool), "true or false"),
        ("amp_dtype", lambda v: v in ("bfloat16", "float16"), "bfloat16 or float16"),
        ("train.channels_last", lambda v: isinstance(v, bool), "true or false"),
        ("train.compile", lambda v: isinstance(v, bool), "true or false"),
        ("train.sync_bn", lambda v: isinstance(v, bool), "true or false"),
        ("train.view_order", lambda v: v in VIEW_ORDERS,
         f"one of {list(VIEW_ORDERS)} (original_first: the authors' order)", OPTIONAL),
    ]


def world_size() -> int:
    """The number of processes torchrun launched (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _cross_checks(cfg: DictConfig) -> List[str]:
    """Problems that involve more than one key."""
    problems = []
    method = cfg.method
    if method.intra == "none" and _is_num(method.beta) and method.beta != 0:
        problems.append(
            f"method.beta={method.beta} weights the intra-class loss, but method.intra=none disables it "
            f"(method {method.name}); use method.beta=0 or a method with an intra-class term "
            "(intra, intra_aug, synermix, synermix_mm)"
        )
    if isinstance(method.inter, DictConfig) and "_target_" in method.inter:
        try:  # a user's mixer: built once here, so a bad one is named before any data is read
            build_mixer(method.inter)
        except ValueError as exc:
            problems.append(f"method.{exc}".rstrip("."))
    needs_original = _is_num(method.beta) and uses_original_view(method.intra, method.beta)
    if cfg.train.compile is True and world_size() > 1 and needs_original:
        problems.append(
            f"train.compile=true under torchrun cannot train method {method.name} (compiled BatchNorm stages cannot "
            "run the two views' forwards before one shared backward); set train.compile=false"
        )
    width = cfg.model.get("width")
    if cfg.model.get("norm") == "group" and _is_int(width) and width % 8:
        problems.append(f"model.norm=group splits channels into 8 groups, so model.width={width} must be a multiple of 8")
    if cfg.model.pretrained is True and cfg.model.name not in PRETRAINED_NAMES:
        problems.append(
            f"model.pretrained=true but no pretrained weights exist for model.name={cfg.model.name}; "
            "set model.pretrained=false"
        )
    return problems


def validate_config(cfg: DictConfig) -> None:
    """Raise ConfigError (one paragraph listing every problem) if any value is out of its allowed set."""
    problems = []
    for key, ok, allowed, *optional in _checks(cfg):
        value = OmegaConf.select(cfg, key, default="<missing>", throw_on_missing=False)
        if optional and value == "<missing>":
            continue
        try:
            good = value != "<missing>" and bool(ok(value))
        except TypeError:
            good = False
        if not good:
            shown = f"{key} is not set" if value == "<missing>" else f"{key}={value!r} is invalid"
            problems.append(f"{shown}: it must be {allowed}")
    if not problems:
        problems = _cross_checks(cfg)
    if problems:
        raise ConfigError("Invalid configuration: " + "; ".join(problems) + ".")


def config_differences(saved: dict, current: dict, ignore=RESUME_FREE_KEYS) -> List[str]:
    """Dotted keys whose values differ between two plain config dicts (keys in `ignore` skipped)."""

    def flatten(d: Any, prefix: str = "") -> dict:
        if not isinstance(d, dict):
            return {prefix: d}
        out = {}
        for k, v in d.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out

    # A key added later with a neutral default (same config id) reads as that default in an older run's config.
    a, b = ({**NEUTRAL_DEFAULTS, **RETIRED_KEYS, **flatten(config)} for config in (saved, current))
    keys = sorted(set(a) | set(b))
    return [
        f"{k}: {a.get(k, '<absent>')!r} -> {b.get(k, '<absent>')!r}"
        for k in keys
        if a.get(k, "<absent>") != b.get(k, "<absent>") and not any(k == i or k.startswith(i + ".") for i in ignore)
    ]

