"""The entry points' one way of failing: a problem the user can fix is one paragraph on stderr and exit code 2.

scripts/train.py and scripts/protocol.py wrap their Hydra app in `run_hydra_app`: Hydra's own composition errors
(an unknown key, an unknown group choice, an override it cannot parse) and ours come out as one paragraph, where
Hydra alone would print several and exit 1. Setting HYDRA_FULL_ERROR=1 yourself keeps Hydra's full tracebacks.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Callable, NoReturn

from synermix.errors import SynerMixError, cause_of

FULL_ERROR_ENV = "HYDRA_FULL_ERROR"
USAGE_EXIT = 2


def one_paragraph(text: str) -> str:
    """`text` on one line: lines joined by spaces, a tab-indented list (Hydra's options) joined by commas."""
    lines = [line for line in text.splitlines() if line.strip()]
    out = ""
    for line in lines:
        if line.startswith("\t") and out and not out.endswith(":"):
            out += ", " + line.strip()
        else:
            out += (" " if out else "") + line.strip()
    return re.sub(r"\s+", " ", out).strip()


_NOT_IN_STRUCT = re.compile(r"Could not override '([^']+)'")
_CANNOT_APPEND = re.compile(r"Could not append to config\. An item is already at '([^']+)'")


def hydra_message(exc: BaseException) -> str:
    """One paragraph for a Hydra or OmegaConf error: the key or choice, the value and what to do instead."""
    text = str(exc).split("Config search path:")[0]
    text = re.sub(r"See https://hydra\.cc/\S+ for details", "", text)
    key = _NOT_IN_STRUCT.search(text)
    if key:
        name = key.group(1)
        return (
            f"{name} is not a key of the configuration, so the override was refused (`python scripts/train.py "
            f"--cfg job` lists every key); check its spelling. A key that code of your own reads can be added "
            f"on purpose with ++{name}=VALUE."
        )
    key = _CANNOT_APPEND.search(text)
    if key:
        return (
            f"{key.group(1)} is already a key of the configuration, so +{key.group(1)}=... (which adds a new key) "
            f"was refused; set it without the +: {key.group(1)}=VALUE."
        )
    return one_paragraph(text)


def refuse(message: str) -> NoReturn:
    """Print `error: message` (one paragraph) on stderr and exit with code 2."""
    print(f"error: {one_paragraph(message)}", file=sys.stderr)
    raise SystemExit(USAGE_EXIT)


def run_hydra_app(app: Callable[[], object]) -> None:
    """Run a @hydra.main `app`, turning Hydra's composition errors and our SynerMixErrors into one paragraph."""
    from hydra.errors import HydraException  # Hydra: only when a Hydra app fails
    from omegaconf.errors import OmegaConfBaseException  # OmegaConf: only when a Hydra app fails

    if os.environ.get(FULL_ERROR_ENV):  # asked for: Hydra prints its full tracebacks
        app()
        return
    os.environ[FULL_ERROR_ENV] = "1"  # Hydra re-raises instead of printing its own report and exiting 1
    try:
        app()
    except SynerMixError as exc:
        refuse(str(exc))
    except (HydraException, OmegaConfBaseException) as exc:
        ours = cause_of(exc, SynerMixError)  # ours, raised in a resolver and wrapped by OmegaConf
        refuse(str(ours) if ours is not None else hydra_message(exc))
