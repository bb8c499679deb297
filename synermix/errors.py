"""The errors a user can act on: each carries one paragraph saying what is wrong and what to do."""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Iterator, Optional, Type, TypeVar

E = TypeVar("E", bound=BaseException)


# torch re-raises an exception of a DataLoader worker as the same type, its message the worker's traceback
_WORKER_TRACEBACK = re.compile(r"^Caught \w+ in DataLoader worker process \d+\.\nOriginal Traceback")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message ("" when it has none): what a one-paragraph error quotes of it."""
    text = str(exc)
    return text.splitlines()[0] if text else ""


def cause_of(exc: Optional[BaseException], kind: Type[E], depth: int = 10) -> Optional[E]:
    """The first exception of type `kind` in `exc`'s chain (itself, then its cause or context), None if none."""
    for _ in range(depth):
        if exc is None or isinstance(exc, kind):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def describe(exc: BaseException) -> str:
    """ "Type: first line of the message" (just the type when there is no message)."""
    line = first_line(exc)
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


class SynerMixError(Exception):
    """Base class: the entry point prints the message (no traceback) and exits non-zero."""

    def __init__(self, message: object = "", *args: object) -> None:
        text = str(message)
        if _WORKER_TRACEBACK.match(text):  # keep our one paragraph: the traceback's last line, less the type
            message = re.sub(r"^[\w.]+: ", "", text.rstrip().splitlines()[-1], count=1)
        super().__init__(message, *args)


class ConfigError(SynerMixError, ValueError):
    """A configuration value is invalid; the message names the key, the value and what is allowed."""


class RunError(SynerMixError, RuntimeError):
    """The run cannot continue; the message says why and what to do."""


class Interrupted(RunError):
    """A stop signal (SIGTERM, SIGINT, SIGUSR2) stopped the run after a checkpoint was written."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


class DatasetNotFound(SynerMixError, FileNotFoundError):
    """The dataset is not where the config says; the message names the path, layout and remedy."""


class DatasetFormatError(SynerMixError, ValueError):
    """A dataset file exists but cannot be read as the expected format; the message names the file."""


class WeightsError(SynerMixError, ValueError):
    """Weights are missing, unreadable or of another architecture; the message says what to do."""


@contextmanager
def value_errors_as_config_errors(prefix: str = "") -> Iterator[None]:
    """Re-raise a plain ValueError from a builder as a ConfigError (`prefix` + its message); ours pass through."""
    try:
        yield
    except SynerMixError:
        raise
    except ValueError as exc:
        raise ConfigError(f"{prefix}{exc}") from None
