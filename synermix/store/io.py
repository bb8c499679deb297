"""Atomic file writes: a reader (or a kill) never sees a half-written result or checkpoint."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from synermix.errors import RunError, cause_of


def fsync_dir(folder: Path) -> None:
    """Make the renames inside `folder` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic(path: Path, write: Callable[[Any], None], mode: str, previous: Optional[Path] = None) -> None:
    """Write via `write(fileobj)` into a temp file beside `path` (unique to this call), fsync it, then rename
    over `path` (first moving the old `path` to `previous`, when given) and fsync the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if previous is not None and path.exists():
            os.replace(path, previous)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # a full disk surfaces in write() without a file name: name the file
        Path(tmp).unlink(missing_ok=True)
        cause = cause_of(exc, OSError)  # torch's zip writer wraps the write's OSError in a RuntimeError
        if cause is None:
            raise
        if cause is not exc or cause.filename is None:
            raise OSError(cause.errno, cause.strerror, str(path)) from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def check_writable(folder: Path, what: str, remedy: str) -> None:
    """RunError (one paragraph naming `folder`, `what` is written there and `remedy`) unless a file can be created
    in `folder` (or, while it does not exist yet, in the nearest folder above it): checked before work whose result
    would otherwise be computed and then lost. Writes nothing that stays."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise OSError(errno.ENOTDIR, "a file stands where a folder is needed", str(existing))
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        code = errno.errorcode.get(exc.errno or 0, "OSError")
        raise RunError(
            f"Cannot write {what} in {folder}: {existing}: {exc.strerror or exc} ({code}). {remedy} "
            "Nothing was computed or written."
        ) from None


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """`text` as a CSV cell a spreadsheet shows as text: one starting like a formula (= + - @, tab, CR) gets a
    leading apostrophe (the OWASP CSV-injection advice)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def write_text_atomic(path: Path, text: str) -> None:
    """Atomically replace `path` with `text`."""
    _atomic(path, lambda f: f.write(text), "w")


def write_json_atomic(path: Path, obj: Any) -> None:
    """Atomically write `obj` as indented, key-sorted JSON."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_csv_atomic(path: Path, rows: List[Dict[str, Any]], columns: Sequence[str]) -> None:
    """Atomically write `rows` as CSV with a header of `columns` (None becomes an empty cell)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: "" if row.get(c) is None else row[c] for c in columns})
    write_text_atomic(path, buf.getvalue())


def write_png_atomic(path: Path, fig, dpi: int = 130) -> None:
    """Atomically write a matplotlib figure as a PNG."""
    _atomic(path, lambda f: fig.savefig(f, format="png", dpi=dpi), "wb")


def save_checkpoint_atomic(path: Path, state: Dict[str, Any], previous: Optional[Path] = None) -> None:
    """Atomically torch.save `state` to `path`; the file it replaces becomes `previous` (when given)."""
    _atomic(path, lambda f: torch.save(state, f), "wb", previous)


def save_npz_atomic(path: Path, **arrays: Any) -> None:
    """Atomically write `arrays` as an uncompressed .npz file."""
    _atomic(path, lambda f: np.savez(f, **arrays), "wb")
