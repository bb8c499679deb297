"""What identifies a run (the summary's keys, TensorBoard's hyper-parameters, the report's grouping) and
where its directory is: the one place that names them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, List

from omegaconf import DictConfig, OmegaConf

from synermix.config.checks import NAME, is_num
from synermix.errors import ConfigError

# Keys that do not change a run's results: they may change between a run and its resumption and are
# not part of its identity.
RESUME_FREE_KEYS = (
    "device",
    "train.num_workers",
    "train.log_interval",
    "train.checkpoint_every_steps",
    "method.beta_grid",
    "train.channels_last",
    "train.compile",
    "train.keep_checkpoints",
    "hooks",
    "metrics",
    "train.default_average_last",  # only a default: the train.average_last it resolves to is identity
    "dataset.root",
    "dataset.download",
    "out_root",
    "logger",
)
# Training keys added after runs were recorded, with the value that reproduces those runs: at that value a key
# is left out of the config id, so adding it did not move any existing run directory.
# train.view_order's neutral value is the order those runs were trained in; its default (the authors' order)
# gives every run a new config id, so a run trained in the other order is never resumed in this one.
NEUTRAL_DEFAULTS: Dict[str, Any] = {
    "train.label_smoothing": 0.0,
    "train.sync_bn": False,
    "model.norm": "batch",
    "train.view_order": "augmented_first",
    "train.optimizer": "sgd",
    "train.betas": [0.9, 0.999],
    "train.eps": 1e-8,
    "train.decay_norm_and_bias": True,
    "train.scheduler": "step",
    "train.milestones": [],
    "train.warmup_epochs": 0,
    "train.warmup_start_factor": 0.01,
    "train.min_lr": 0.0,
    "train.clip_grad_norm": None,
    "train.ema.decay": None,
    "train.ema.every": 1,
    "dataset.augment.policy": "none",
    "dataset.augment.random_erasing": 0.0,
    "method.mix_prob": 1.0,
    "method.switch_prob": None,
    "method.mix_off_epoch": None,
}
# Training keys that were removed, with the one value runs may have trained with now: still hashed into the config
# id (directory names stay) and read as that value in an older run's config (another value is refused on resume).
RETIRED_KEYS: Dict[str, Any] = {"train.concat_views": False}
# Keys of protocol.yaml that run a protocol (scripts/protocol.py), not a training.
PROTOCOL_KEYS = ("seeds", "protocol_subdir", "search", "optuna")
# Keys that place a run (run_subdir, protocol_subdir) or run a protocol, not a training.
LOCATION_KEYS = ("run_subdir", *PROTOCOL_KEYS, "hydra")
# Keys spelled out in the run directory's name; the config id covers every other training key.
NAMED_KEYS = (
    "dataset.name",
    "model.name",
    "method.name",
    "train.batch_size",
    "method.beta",
    "run_tag",
    "phase",
    "seed",
)

# summary.json / report column -> config key. Everything but `seed` groups runs in the report.
IDENTITY_KEYS: Dict[str, str] = {
    "dataset": "dataset.name",
    "model": "model.name",
    "method": "method.name",
    "intra": "method.intra",
    "inter": "method.inter",
    "beta": "method.beta",
    "alpha": "method.alpha",
    "lam_mode": "method.lam_mode",
    "num_per_class": "method.num_per_class",
    "batch_size": "train.batch_size",
    "lr": "train.lr",
    "epochs": "train.epochs",
    "seed": "seed",
    "phase": "phase",
    "tag": "run_tag",
    "data": "dataset.fingerprint",  # image_folder: the folder's contents (None for named data sets)
}
IDENTITY_COLUMNS = (*IDENTITY_KEYS, "config_id")  # summary.json's identity: the keys above + config_id


def _flatten(value: Any, prefix: str, out: Dict[str, Any]) -> Dict[str, Any]:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    else:
        out[prefix] = value
    return out


def _matches(key: str, prefixes) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def training_values(cfg: DictConfig) -> Dict[str, Any]:
    """Every value that can change a run's results, as dotted keys (resume-free and location keys left out)."""
    plain: Dict[str, Any] = {}
    for key in map(str, cfg.keys()):
        if key not in LOCATION_KEYS:  # run_subdir itself asks for the config id: not resolved here
            value = cfg[key]
            plain[key] = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
    flat = _flatten(plain, "", {})
    return {k: v for k, v in sorted(flat.items()) if not _matches(k, RESUME_FREE_KEYS)}


def config_id(cfg: DictConfig) -> str:
    """8 hex digits naming the training values that the run directory's name does not spell out: two
    configs share a directory exactly when they train the same thing (numbers compared as floats)."""
    values = {
        k: (float(v) if isinstance(v, int) and not isinstance(v, bool) else v)
        for k, v in training_values(cfg).items()
        if not _matches(k, NAMED_KEYS)
    }
    values = {k: v for k, v in values.items() if k not in NEUTRAL_DEFAULTS or v != NEUTRAL_DEFAULTS[k]}
    values = {**RETIRED_KEYS, **values}
    return hashlib.sha1(json.dumps(values, sort_keys=True).encode()).hexdigest()[:8]


def path_name_problems(cfg: DictConfig) -> List[str]:
    """The values spelled out in the run directory's name that are not one safe path component each (a '/' or
    '..' would place the run outside out_root)."""
    found = []
    for key in NAMED_KEYS:
        value = OmegaConf.select(cfg, key, default=None)
        if value is None or is_num(value) or (key == "run_tag" and value == "") or NAME.match(str(value)):
            continue
        found.append(
            f"{key}={value!r} is invalid: it becomes part of the run directory's name, so it must be one "
            "name of letters, digits, '_', '.', '+', '-' (no path separator, not starting with '.' or '-')"
        )
    return found


def _config_id_resolver(*, _root_: DictConfig) -> str:
    """${config_id:} in run_subdir: refuses unsafe path names here, before Hydra creates the run's folder."""
    found = path_name_problems(_root_)
    if found:
        raise ConfigError("Invalid configuration: " + "; ".join(found) + ".")
    return config_id(_root_)


def _min_int_resolver(a: Any, b: Any) -> Any:
    """min(a, b) for integers (train.average_last's default); anything else is passed on for validation to name."""
    both_int = all(isinstance(v, int) and not isinstance(v, bool) for v in (a, b))
    return min(a, b) if both_int else a


# dataset.recipe's augmentation (image_folder): Table 1's CIFAR-100 settings scaled to the image size, or
# ImageNet's (RandomResizedCrop + flip, no padded crop, no cutout)
RECIPE_AUGMENT = {
    "cifar": {
        "crop_padding": lambda size: max(size // 8, 1),
        "hflip": lambda size: 0.5,
        "cutout": lambda size: size // 2,
    },
    "imagenet": {"crop_padding": lambda size: 0, "hflip": lambda size: 0.5, "cutout": lambda size: 0},
}


def _recipe_augment_resolver(key: str, recipe: Any, size: Any) -> Any:
    """An augmentation default of `recipe` at image size `size` (anything unknown passes on for validation to name)."""
    table = RECIPE_AUGMENT.get(recipe)
    return table[key](int(size)) if table and isinstance(size, int) else recipe


OmegaConf.register_new_resolver("config_id", _config_id_resolver, replace=True)
OmegaConf.register_new_resolver("recipe_augment", _recipe_augment_resolver, replace=True)
OmegaConf.register_new_resolver("min_int", _min_int_resolver, replace=True)


def freeze_data_fingerprint(cfg: DictConfig) -> None:
    """Replace `dataset.fingerprint`'s interpolation by its value, so the whole run (its config id, config.yaml,
    summary) names the data as it was when the run started, however often the config is read."""
    if "fingerprint" in cfg.dataset and OmegaConf.is_interpolation(cfg.dataset, "fingerprint"):
        cfg.dataset.fingerprint = cfg.dataset.fingerprint


def run_identity(cfg: DictConfig) -> Dict[str, Any]:
    """The identifying values of the run `cfg` describes, keyed as in summary.json (missing keys are None):
    the named keys, the main hyper-parameters, and `config_id` for everything else."""
    values = {name: OmegaConf.select(cfg, key, default=None) for name, key in IDENTITY_KEYS.items()}
    values["tag"] = values["tag"] or ""
    if isinstance(values["inter"], DictConfig):  # a user's mixer: named by its class
        values["inter"] = str(values["inter"].get("_target_"))
    elif OmegaConf.is_list(values["inter"]):  # two mixers chosen between by method.switch_prob
        values["inter"] = "+".join(
            str(m.get("_target_")) if isinstance(m, DictConfig) else str(m) for m in values["inter"]
        )
    values["config_id"] = config_id(cfg)
    return values


def run_dir_of(cfg: DictConfig) -> Path:
    """The run directory of `cfg` (out_root/run_subdir): what scripts/train.py, the protocol and figures use."""
    return Path(cfg.out_root) / cfg.run_subdir


def protocol_dir_of(cfg: DictConfig) -> Path:
    """Where scripts/protocol.py writes protocol.json for a protocol config (out_root/protocol_subdir)."""
    return Path(cfg.out_root) / cfg.protocol_subdir


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
