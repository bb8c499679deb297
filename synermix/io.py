"""Atomic file writes: a reader (or a kill) never sees a half-written result or checkpoint."""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence

import numpy as np
import torch


def _atomic(path: Path, write: Callable[[Any], None], mode: str) -> None:
    """Write via `write(fileobj)` into a temp file beside `path`, fsync it, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Atomically replace `path` with `text`."""
    _atomic(path, lambda f: f.write(text), "w")


def write_json_atomic(path: Path, obj: Dict[str, Any]) -> None:
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


def save_checkpoint_atomic(path: Path, state: Dict[str, Any]) -> None:
    """Atomically torch.save `state` to `path`."""
    _atomic(path, lambda f: torch.save(state, f), "wb")


def save_npz_atomic(path: Path, **arrays: Any) -> None:
    """Atomically write `arrays` as an uncompressed .npz file."""
    _atomic(path, lambda f: np.savez(f, **arrays), "wb")
