"""Reading what the trackers logged back through their own libraries: W&B's offline run files (its transaction log,
decoded with wandb's own protobuf Record) and MLflow's client."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

HEADER = 7  # ":W&B", magic 0xBEE1, version
BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _records(path: Path) -> Iterator[bytes]:
    """The records of one .wandb file (LevelDB log framing: 32 KiB blocks of [crc32, length, type] chunks)."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    pos, pending = HEADER, b""
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # the rest of a block too short for a chunk header is padding
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 0 and length == 0:
            break
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            yield pending


def wandb_history(run_dir: Path) -> List[Tuple[int, Dict[str, float]]]:
    """Every history entry (step, {key: value}) logged under `run_dir`/wandb, in the order the offline runs were
    written (a resumed run adds an offline-run folder of the same id)."""
    from wandb.proto.wandb_internal_pb2 import Record  # type: ignore[attr-defined]  # generated protobuf module

    entries = []
    for log in sorted(Path(run_dir).glob("wandb/offline-run-*/run-*.wandb")):
        for raw in _records(log):
            record = Record()
            record.ParseFromString(raw)
            if record.WhichOneof("record_type") == "history":
                items = {
                    item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item
                }
                entries.append(
                    (int(record.history.step.num), {k: v for k, v in items.items() if not k.startswith("_")})
                )
    return entries


def wandb_run_ids(run_dir: Path) -> List[str]:
    """The W&B run id of each offline run folder under `run_dir`/wandb."""
    return [p.name.rsplit("-", 1)[1] for p in sorted(Path(run_dir).glob("wandb/offline-run-*"))]
