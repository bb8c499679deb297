"""Checks made before Hydra creates a run's folder: a refused command leaves no trace on disk.

`Preflight` is the first of train.yaml's Hydra callbacks (protocol.yaml inherits it). Before a single run it
refuses a `+key` that no group defines, a run directory outside out_root, an unwritable output folder and every
invalid value (synermix.run.validation.validate_config); before a sweep, the `+key`s of its overrides. The path
names of a
run directory are checked again where they are resolved (synermix.config.identity), which covers each job of a sweep.
"""

from __future__ import annotations

import copy
import difflib
import os
from pathlib import Path
from typing import Any, Callable, Iterable, List

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from synermix.cli.app import refuse
from synermix.errors import ConfigError, SynerMixError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
SUBDIR_KEYS = ("run_subdir", "protocol_subdir")


def _flat_keys(value: Any, prefix: str = "") -> List[str]:
    """Every dotted key of a plain (unresolved) config container."""
    if not isinstance(value, dict):
        return [prefix]
    return [k for key, sub in value.items() for k in _flat_keys(sub, f"{prefix}.{key}" if prefix else str(key))]


def _is_group(key: str) -> bool:
    """Whether `key` of an override names a config group (`+logger=wandb` adds a group's option, not a key)."""
    return key.startswith("hydra") or (CONFIG_DIR / key.replace(".", "/")).is_dir()


def added_key_problems(cfg: DictConfig, overrides: Iterable[str]) -> List[str]:
    """One phrase per `+key=value` of `overrides` whose key no group's checks read (nor an open mapping holds):
    nothing would read it, so the run would silently train without it."""
    # on use: the callback runs in every command, --help included
    from hydra.core.override_parser.overrides_parser import OverridesParser

    # on use: the callback runs in every command, --help included
    from synermix.run.validation import OPEN_MAPPINGS, declared_keys

    declared = set(declared_keys(cfg))
    plain = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(plain, dict)  # a composed config is a mapping
    known = [k for k in _flat_keys({k: v for k, v in plain.items() if k != "hydra"})]
    found = []
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.key_or_group
        if not override.is_add() or _is_group(key) or key in declared or key.startswith(OPEN_MAPPINGS):
            continue
        close = difflib.get_close_matches(key, [k for k in {*known, *declared} if k != key], n=3, cutoff=0.6)
        hint = (
            f"did you mean {' or '.join(close)}? Set an existing key without the + ({close[0]}=...); " if close else ""
        )
        found.append(
            f"{override.input_line} adds the key {key}, which no config group defines, so nothing would read "
            f"it and the run would train without it; {hint}to add a key that code of your own reads on "
            f"purpose, write ++{key}=..."
        )
    return found


def location_problems(cfg: DictConfig) -> List[str]:
    """A run_subdir / protocol_subdir that would leave out_root (absolute, or climbing out with '..')."""
    found = []
    for key in SUBDIR_KEYS:
        if key not in cfg:
            continue
        value = str(cfg[key])
        normal = os.path.normpath(value)
        if os.path.isabs(value) or normal == ".." or normal.startswith(".." + os.sep):
            found.append(
                f"{key}={value!r} is invalid: it must be a relative path inside out_root (no leading / and "
                "no '..' leaving it); set out_root or hydra.run.dir to write elsewhere"
            )
    return found


def check_single_run(config: DictConfig) -> None:
    """Everything refusable about a single run before its folder exists (ConfigError / RunError)."""
    # on use: imports torch, which --help does not need
    from synermix.models.normalization import resolve_auto_normalization
    from synermix.run.validation import validate_config  # on use: the callback runs in every command, --help included
    from synermix.store.io import check_writable  # on use: imports torch, which --help does not need

    overrides = list(config.hydra.overrides.task)
    found = added_key_problems(config, overrides)
    if not found:
        cfg = copy.deepcopy(config)  # resolving `auto` statistics writes into the config: the run does it again
        resolve_auto_normalization(cfg)
        validate_config(cfg)
        found = location_problems(cfg)
        if "seeds" in cfg:  # scripts/protocol.py
            from synermix.results.protocol import protocol_problems  # on use: only protocol configs

            found += protocol_problems(cfg)
    if found:
        raise ConfigError("Invalid configuration: " + "; ".join(found) + ".")
    check_writable(
        Path(config.hydra.run.dir),
        "the run directory (hydra.run.dir)",
        "Choose a writable out_root (or hydra.run.dir).",
    )


def check_sweep(config: DictConfig) -> None:
    """Everything refusable about a sweep as a whole: its `+key`s (each job's values are checked as it starts)."""
    found = added_key_problems(config, list(config.hydra.overrides.task))
    if found:
        raise ConfigError("Invalid configuration: " + "; ".join(found) + ".")


def refusing(check: Callable[[DictConfig], None], config: DictConfig) -> None:
    """Run `check`; its SynerMixError ends the command (one paragraph, exit 2). Hydra turns an exception raised in
    a callback into a warning and goes on, so the refusal is a SystemExit, which it lets through."""
    try:
        check(config)
    except SynerMixError as exc:
        refuse(str(exc))


class Preflight(Callback):
    """Hydra callback: refuses a bad command before Hydra creates (or rewrites) anything on disk."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Before a single run."""
        refusing(check_single_run, config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Before a sweep."""
        refusing(check_sweep, config)


__all__ = ["Preflight", "added_key_problems", "check_single_run", "check_sweep", "location_problems", "refusing"]
