"""Value checks, each declared once next to the code that uses the value, and run from both entry points: the
constructor (library use: ValueError) and `synermix.run.validation.validate_config` (a run's config, every problem named
together before any data is read: ConfigError)."""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from typing import Any, Callable, List, Mapping, Sequence

from omegaconf import ListConfig, OmegaConf

MISSING = "<missing>"
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")  # safe as one folder name


def is_int(v: Any) -> bool:
    """An integer (not a bool)."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def is_num(v: Any) -> bool:
    """A finite real number (NaN and infinities are refused everywhere)."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def is_bool(v: Any) -> bool:
    """true or false."""
    return isinstance(v, bool)


def is_numbers(v: Any, ok: Callable[[Any], bool] = lambda x: True) -> bool:
    """A non-empty list of finite numbers, each passing `ok`."""
    return isinstance(v, (list, tuple, ListConfig)) and len(v) >= 1 and all(is_num(x) and ok(x) for x in v)


def one_of(choices: Sequence[Any]) -> Callable[[Any], bool]:
    """A predicate: the value is one of `choices`."""
    return lambda v: isinstance(v, str) and v in choices


@dataclass(frozen=True)
class Check:
    """One key's check: the predicate and what is allowed, in words; `optional` keys may be absent."""

    key: str
    ok: Callable[[Any], bool]
    allowed: str
    optional: bool = False


def _value(values: Any, key: str) -> Any:
    if isinstance(values, Mapping) and not OmegaConf.is_config(values):
        return values.get(key, MISSING)
    return OmegaConf.select(values, key, default=MISSING, throw_on_missing=False)


def problems(values: Any, checks: Sequence[Check], prefix: str = "") -> List[str]:
    """What is wrong with `values` (a dict or a config group), one phrase per key, keys named `prefix + key`."""
    found = []
    for check in checks:
        value = _value(values, check.key)
        if check.optional and value == MISSING:
            continue
        try:
            good = value != MISSING and bool(check.ok(value))
        except TypeError:
            good = False
        if not good:
            name = prefix + check.key
            shown = f"{name} is not set" if value == MISSING else f"{name}={value!r} is invalid"
            found.append(f"{shown}: it must be {check.allowed}")
    return found


def require(values: Mapping[str, Any], checks: Sequence[Check]) -> None:
    """ValueError naming every problem of `values` (a constructor's arguments)."""
    found = problems(values, checks)
    if found:
        raise ValueError("; ".join(found) + ".")


def plain_dict(config: Any) -> dict[str, Any]:
    """A config mapping as a plain dict, interpolations resolved (TypeError for a list or a scalar)."""
    container = OmegaConf.to_container(config, resolve=True)
    if not isinstance(container, dict):
        raise TypeError(f"expected a mapping, got {type(container).__name__}")
    return {str(k): v for k, v in container.items()}
