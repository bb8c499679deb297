"""The one registry mechanism of every pluggable kind: dataset, model, inter-class mixer, tracker, hook, metric.

A Registry maps built-in names to "module:attribute" (imported on first use, so `--help` and `--cfg` import
nothing heavy) and takes an entry of your own, with no edit to this package, as `_target_` naming it by its
dotted path (`my_module.MyMixer`). An entry carries its own facts and config checks as attributes (a dataset
entry says whether it is held in memory, a model entry whether it has pretrained weights), so no second list
of names exists anywhere. Unknown names are refused in one sentence listing the known ones and how to name
your own (docs/extending.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from typing import Any

from synermix.config.checks import NAME, Check
from synermix.errors import ConfigError

TARGET = "_target_"


def locate(path: str) -> Any:
    """The object at `path`: "package.module:attr" or "package.module.attr" (the longest importable module)."""
    if ":" in path:
        module, _, attr = path.partition(":")
        obj: Any = import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = import_module(".".join(parts[:cut]))
        except ModuleNotFoundError as exc:
            if exc.name is not None and not ".".join(parts[:cut]).startswith(exc.name):
                raise  # the module exists but imports something missing: that is the user's error to see
            continue
        for part in parts[cut:]:
            obj = getattr(obj, part)
        return obj
    return import_module(path)


def target_of(spec: Any) -> str | None:
    """The `_target_` of a mapping spec (None for a name or an object)."""
    if isinstance(spec, Mapping) or hasattr(spec, "keys"):
        target = spec.get(TARGET)
        return None if target is None else str(target)
    return None


class UnknownEntry(ValueError):
    """A name that no registry entry has (the message lists the known ones)."""


class Registry:
    """The entries of one pluggable `kind`, configured under `key`: built-in names, or your own by `_target_`."""

    def __init__(self, kind: str, key: str, builtins: Mapping[str, str], example: str) -> None:
        self.kind, self.key, self.builtins, self.example = kind, key, dict(builtins), example

    def names(self) -> tuple[str, ...]:
        """The built-in names, in registration order."""
        return tuple(self.builtins)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.builtins

    def allowed(self) -> str:
        """What `key` may be, in words (for a check's message)."""
        return (
            f"one of {list(self.builtins)}, or your own {self.kind} named by {self.key}._target_ "
            f"(e.g. {self.example}; docs/extending.md)"
        )

    def unknown(self, value: Any) -> UnknownEntry:
        """The error for a name no entry has."""
        return UnknownEntry(f"{self.key}={value!r} is not a known {self.kind}: it must be {self.allowed()}")

    def load(self, spec: Any) -> Any:
        """The entry `spec` names: a built-in name, a mapping with `_target_` (or with `name`), or a dotted path."""
        target = target_of(spec)
        if target is not None:
            return locate(target)
        name = spec.get("name") if hasattr(spec, "keys") else spec
        if isinstance(name, str) and name in self.builtins:
            return locate(self.builtins[name])
        raise self.unknown(name)

    def group_checks(self, group: Any, base: str) -> tuple[Check, ...]:
        """The checks of a config group's `_target_` and `name`: a built-in name, or any safe name beside your own
        `_target_` (`base`: what the entry must be, for the message)."""
        own = target_of(group) is not None
        return (
            Check(
                "_target_",
                lambda v: isinstance(v, str) and v.strip() != "",
                f"the dotted path of {base}",
                optional=True,
            ),
            Check(
                "name",
                lambda v: v in self if not own else isinstance(v, str) and NAME.match(v) is not None,
                self.allowed() if not own else f"a name of your {self.kind} (letters, digits, '_', '.', '+', '-')",
            ),
        )

    def entry_of(self, spec: Any, base: str) -> Any:
        """`load(spec)` for a config group, every failure a ConfigError naming the key (`base`: what the entry must
        be, for the message)."""
        try:
            return self.load(spec)
        except UnknownEntry as exc:
            raise ConfigError(f"Invalid configuration: {exc}.") from None
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"Invalid configuration: {self.key.split('.')[0]}._target_={target_of(spec)!r} cannot be imported "
                f"({type(exc).__name__}: {exc}); it must name {base}."
            ) from None

    def known(self, spec: Any, base: str) -> Any:
        """`entry_of(spec)`, or None where there is none (the group's name check reports it)."""
        try:
            return self.entry_of(spec, base)
        except ConfigError:
            return None

    def build(self, spec: Any, **defaults: Any) -> Any:
        """An instance of the entry `spec` names: a name gets `defaults`; a mapping is instantiated with its own
        arguments (Hydra's instantiate for `_target_`, so nested `_target_`s work too)."""
        if target_of(spec) is not None:
            from hydra.utils import instantiate  # Hydra: only for entries of your own

            return instantiate(spec)
        if hasattr(spec, "keys"):
            arguments = {k: v for k, v in spec.items() if k != "name"}
            return self.load(spec)(**arguments)
        return self.load(spec)(**defaults)
