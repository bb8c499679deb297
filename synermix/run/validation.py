"""Start-up validation of the composed Hydra config: every bad value is named before data is touched.

Each group's checks are declared next to the code that uses the values (synermix.config.checks): the dataset group in
synermix.data, the model group in synermix.models, the method group in synermix.method.loss (with its mixers' and
L_intra's); the training and top-level keys, which only the run uses, here.
"""

from __future__ import annotations

import os
from typing import Any, List, Sequence, Tuple

from omegaconf import DictConfig, OmegaConf

from synermix.config.checks import NAME, Check, is_bool, is_int, is_num, one_of, problems
from synermix.config.presets import method_presets
from synermix.data import dataset_checks
from synermix.errors import ConfigError
from synermix.method.loss import METHOD_CHECKS, TRAIN_LOSS_CHECKS, uses_original_view
from synermix.method.mixers import build_mixer
from synermix.models import known_model_entry, model_checks
from synermix.run.trackers import logger_problems
from synermix.train.ema import EMA_CHECKS
from synermix.train.recipes import recipe_checks

METHOD_NAMES = tuple(method_presets())
PHASES = ("val", "test")
DEVICES = ("auto", "cpu", "cuda")


def _train_checks(epochs: Any, warmup_epochs: Any) -> tuple:
    """The checks of the `train` group (the recipe's, the EMA's, the loop's options)."""
    positive_int = lambda v: is_int(v) and v >= 1  # noqa: E731
    return (
        Check("batch_size", lambda v: is_int(v) and v >= 2, "an integer >= 2"),
        Check("epochs", positive_int, "an integer >= 1"),
        Check("lr", lambda v: is_num(v) and v > 0, "a number > 0"),
        Check("momentum", lambda v: is_num(v) and 0 <= v < 1, "a number in [0, 1)"),
        *TRAIN_LOSS_CHECKS,
        Check("weight_decay", lambda v: is_num(v) and v >= 0, "a number >= 0"),
        Check("nesterov", is_bool, "true or false"),
        *recipe_checks(epochs, warmup_epochs),
        Check("step_size", positive_int, "an integer >= 1"),
        Check("gamma", lambda v: is_num(v) and 0 < v <= 1, "a number in (0, 1]"),
        Check(
            "average_last",
            lambda v: is_int(v) and 1 <= v <= (epochs if is_int(epochs) else v),
            f"an integer in [1, train.epochs={epochs}]",
        ),
        Check("default_average_last", positive_int, "an integer >= 1", optional=True),
        Check("num_workers", lambda v: is_int(v) and v >= 0, "an integer >= 0"),
        Check("supplement", is_bool, "true or false"),
        Check("eval_batch_size", positive_int, "an integer >= 1"),
        Check("cohesion_samples", lambda v: is_int(v) and v >= 0, "an integer >= 0 (0: off)"),
        Check("log_interval", positive_int, "an integer >= 1"),
        Check("checkpoint_every_steps", lambda v: is_int(v) and v >= 0, "an integer >= 0 (0: epoch ends only)"),
        Check("keep_checkpoints", is_bool, "true or false", optional=True),
        Check("channels_last", is_bool, "true or false"),
        Check("compile", is_bool, "true or false"),
        Check("sync_bn", is_bool, "true or false"),
    )


RUN_CHECKS = (
    Check(
        "hooks", lambda v: v is None or isinstance(v, DictConfig), "a mapping name -> {_target_: ...}", optional=True
    ),
    Check(
        "metrics",
        lambda v: v is None or isinstance(v, DictConfig),
        "a mapping name -> grad_norm or {_target_: ...}",
        optional=True,
    ),
    Check("seed", lambda v: is_int(v) and 0 <= v < 2**32, "an integer in [0, 2^32)"),
    Check("phase", one_of(PHASES), f"one of {list(PHASES)}"),
    Check(
        "run_tag",
        lambda v: isinstance(v, str) and (v == "" or NAME.match(v) is not None),
        "\"\" or a name of letters, digits, '_', '.', '+', '-' (no path separator)",
        optional=True,
    ),
    Check("val_ratio", lambda v: is_num(v) and 0 < v < 1, "a number in (0, 1)"),
    Check("val_seed", lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    Check("device", one_of(DEVICES), f"one of {list(DEVICES)}"),
    Check("amp", is_bool, "true or false"),
    Check("amp_dtype", one_of(("bfloat16", "float16")), "bfloat16 or float16"),
)


def _group_checks(cfg: DictConfig) -> List[Tuple[str, Any, Sequence[Check]]]:
    """(key prefix, values, checks) of every group: each key a run reads, declared once."""
    train = cfg.get("train") or {}
    return [
        ("dataset.", cfg.dataset, dataset_checks(cfg.dataset)),
        ("model.", cfg.model, model_checks(cfg.model)),
        ("method.", cfg.method, METHOD_CHECKS),
        (
            "train.",
            train,
            _train_checks(OmegaConf.select(cfg, "train.epochs"), OmegaConf.select(cfg, "train.warmup_epochs")),
        ),
        ("train.ema.", train.get("ema") or {}, EMA_CHECKS),
        ("", cfg, RUN_CHECKS),
    ]


# mappings whose keys are the user's own: a model's constructor arguments, hooks by name, a tracker's settings
OPEN_MAPPINGS = ("model.kwargs.", "hooks.", "metrics.", "logger.")


def declared_keys(cfg: DictConfig) -> List[str]:
    """Every dotted key some group's checks read (optional keys included): what `+key=value` may add."""
    return [prefix + check.key for prefix, _, checks in _group_checks(cfg) for check in checks]


def _value_problems(cfg: DictConfig) -> List[str]:
    """Every key's own check, group by group."""
    found = [p for prefix, values, checks in _group_checks(cfg) for p in problems(values, checks, prefix)]
    return found + logger_problems(cfg.get("logger"))


def world_size() -> int:
    """The number of processes torchrun launched (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _cross_checks(cfg: DictConfig) -> List[str]:
    """Problems that involve more than one key."""
    problems = []
    method = cfg.method
    if method.intra == "none" and is_num(method.beta) and method.beta != 0:
        problems.append(
            f"method.beta={method.beta} weights the intra-class loss, but method.intra=none disables it "
            f"(method {method.name}); use method.beta=0 or a method with an intra-class term "
            "(intra, intra_aug, synermix, synermix_mm)"
        )
    for spec in method.inter if OmegaConf.is_list(method.inter) else [method.inter]:
        if isinstance(spec, DictConfig) and "_target_" in spec:
            try:  # a user's mixer: built once here, so a bad one is named before any data is read
                build_mixer(spec)
            except ValueError as exc:
                problems.append(f"method.{exc}".rstrip("."))
    problems += _schedule_problems(method, cfg.train.epochs)
    needs_original = is_num(method.beta) and uses_original_view(method.intra, method.beta)
    if cfg.train.compile is True and world_size() > 1 and needs_original:
        problems.append(
            f"train.compile=true under torchrun cannot train method {method.name} (compiled BatchNorm stages cannot "
            "run the two views' forwards before one shared backward); set train.compile=false"
        )
    model = known_model_entry(cfg.model)
    if model is not None:
        problems += model.problems(cfg.model)  # e.g. timm: an architecture timm does not know
    width = cfg.model.get("width")
    if cfg.model.get("norm") == "group" and is_int(width) and width % 8:
        problems.append(
            f"model.norm=group splits channels into 8 groups, so model.width={width} must be a multiple of 8"
        )
    if cfg.model.pretrained is True and model is not None and not model.pretrained:
        problems.append(
            f"model.pretrained=true but no pretrained weights exist for model.name={cfg.model.name}; "
            "set model.pretrained=false"
        )
    return problems


def _schedule_problems(method: DictConfig, epochs: Any) -> List[str]:
    """The mixing schedule against the mixers and the run's length."""
    found = []
    two = OmegaConf.is_list(method.inter)
    switch, off = method.get("switch_prob"), method.get("mix_off_epoch")
    if two and switch is None:
        found.append(
            f"method.inter={OmegaConf.to_container(method.inter)} names two mixers, so method.switch_prob (the "
            "probability of the second, e.g. 0.5) must be set"
        )
    if switch is not None and not two:
        found.append(
            f"method.switch_prob={switch} chooses between two mixers, but method.inter={method.inter} names "
            "one; use method.inter=[mixup,cutmix] or method.switch_prob=null"
        )
    if is_int(off) and is_int(epochs) and off > epochs:
        found.append(
            f"method.mix_off_epoch={off} is past train.epochs={epochs}: mixing would never be turned off; "
            f"use an epoch in [1, {epochs}] or null"
        )
    if (off is not None or method.get("mix_prob", 1.0) != 1) and method.inter == "none":
        found.append(
            "method.mix_prob / method.mix_off_epoch schedule the inter-class mixing, but method.inter=none "
            "mixes nothing; choose a mixer or leave them at 1.0 / null"
        )
    return found


def validate_config(cfg: DictConfig) -> None:
    """Raise ConfigError (one paragraph listing every problem) if any value is out of its allowed set."""
    found = _value_problems(cfg) or _cross_checks(cfg)
    if found:
        raise ConfigError("Invalid configuration: " + "; ".join(found) + ".")
