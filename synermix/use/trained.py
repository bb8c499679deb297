"""A trained run read back for use: its resolved config (with evaluation overrides), class names, and its model
holding the run's final weights (an unfinished run's newest checkpoint, said so)."""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import torch
from omegaconf import DictConfig, OmegaConf

from synermix.config.checks import MISSING, problems
from synermix.data import dataset_checks
from synermix.errors import ConfigError, RunError
from synermix.models import build_model
from synermix.store.rundir import CONFIG, RunDir

log = logging.getLogger(__name__)

# What an evaluation may change: the data it reads and how; never the model or how it was trained
OVERRIDABLE = (
    "dataset.",
    "phase",
    "val_ratio",
    "val_seed",
    "train.eval_batch_size",
    "train.num_workers",
    "device",
    "amp",
    "amp_dtype",
)


@dataclass
class TrainedRun:
    """A run directory's config (overrides applied), class names, and model with the run's weights."""

    rundir: RunDir
    cfg: DictConfig
    classes: List[str]
    weights: str  # which file the weights came from
    model: torch.nn.Module


def run_config(run_dir: Path, overrides: Sequence[str] = ()) -> DictConfig:
    """The run's resolved config.yaml with `overrides` (key=value, data keys only) applied and checked."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise RunError(
            f"{run_dir} is not a run directory: it has no {CONFIG} (a run writes it when it starts). "
            "Pass the folder of one run, e.g. outputs/runs/<dataset>/<model>/<method>/<...>/test_seed0."
        )
    cfg = OmegaConf.load(path)
    if not isinstance(cfg, DictConfig):
        raise RunError(f"{path} is not a run's config (not a mapping).")
    for override in overrides:
        key, sep, _ = override.partition("=")
        if not sep or not any(key == k or key.startswith(k) for k in OVERRIDABLE):
            raise ConfigError(
                f"Cannot apply the override {override!r}: an evaluation changes only the data it reads and how "
                f"(key=value with a key under {', '.join(OVERRIDABLE)}); the model and its training are the run's."
            )
        _check_known_key(cfg, key, override)
    merged = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    assert isinstance(merged, DictConfig)  # a mapping merged with a mapping
    cfg = merged
    found = problems(cfg.dataset, dataset_checks(cfg.dataset), "dataset.")
    if found:
        raise ConfigError("Invalid configuration: " + "; ".join(found) + ".")
    return cfg


def _check_known_key(cfg: DictConfig, key: str, override: str) -> None:
    """Refuse an override of a key the run's config does not have and its dataset does not read (a typo would
    otherwise evaluate the run's own data under another name)."""
    read = {"dataset." + c.key for c in dataset_checks(cfg.dataset)}
    if key in read or OmegaConf.select(cfg, key, default=MISSING) is not MISSING:
        return
    plain = [k for k in OVERRIDABLE if not k.endswith(".")]
    known = sorted(read | {f"dataset.{k}" for k in cfg.dataset} | set(plain))
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    others = ", ".join(plain)
    raise ConfigError(
        f"Cannot apply the override {override!r}: the run's config has no key {key} and its dataset "
        f"({cfg.dataset.name}) reads none of that name, so it would change nothing; {hint}an evaluation "
        f"sets the dataset.* keys of the run's config.yaml, and {others}."
    )


def load_run(
    run_dir: Path, cfg: DictConfig, device: torch.device = torch.device("cpu"), averaged: Optional[str] = None
) -> TrainedRun:
    """The run in `run_dir` with its config `cfg` (`run_config`), its model built as trained (no pretrained
    download) holding its newest weights (with `averaged="ema"`: its EMA of the weights)."""
    rundir = RunDir(Path(run_dir))
    rundir.attach(cfg)
    found = rundir.latest_weights(averaged)
    if found is None and averaged is not None:
        raise RunError(
            f"{run_dir} holds no {averaged} weights: the run was trained without train.{averaged} "
            f"(its weights.pt holds the trained weights; evaluate those without --weights {averaged})."
        )
    if found is None and (rundir.read_summary() or {}).get("status") == "complete":
        raise RunError(
            f"{run_dir} is complete, but its weights.pt is missing (and no checkpoint is kept), so there "
            f"is nothing to evaluate. Restore {Path(run_dir) / 'weights.pt'} from a copy, or delete "
            f"{Path(run_dir) / 'summary.json'} and re-run the run's command to train it again."
        )
    if found is None:
        raise RunError(
            f"{run_dir} holds no weights yet (neither weights.pt nor a checkpoint): the run has not "
            "finished an epoch. Train it first (re-running its command resumes it)."
        )
    state, source, finished = found
    classes = rundir.read_classes() or [str(i) for i in range(_head_size(state))]
    model_cfg = OmegaConf.merge(cfg.model, {"pretrained": False, "weights": None})
    model = build_model(model_cfg, len(classes), len(cfg.dataset.mean), int(cfg.dataset.image_size))
    model.load_state_dict(state)
    if not finished:
        log.warning("%s has not finished: using its %s.", run_dir, source)
    return TrainedRun(rundir, cfg, classes, source, model.to(device).eval())


def _head_size(state: dict) -> int:
    """The number of classes of a state_dict: the rows of its last 2-D weight (the classifier head)."""
    matrices = [v for v in state.values() if getattr(v, "ndim", 0) == 2]
    return int(matrices[-1].shape[0])
