"""Run a function in several gloo processes on this machine and collect what each returns."""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Callable, List

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _entry(rank: int, world: int, fn: Callable, args: tuple, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank))
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        result = fn(rank, world, *args)
    finally:
        dist.destroy_process_group()
    Path(out_dir, f"{rank}.pkl").write_bytes(pickle.dumps(result))


def run_in_processes(fn: Callable, world: int, *args: Any) -> List[Any]:
    """fn(rank, world, *args) in `world` spawned processes joined in one gloo group; their results in rank order.

    `fn`'s result must be picklable."""
    with tempfile.TemporaryDirectory() as tmp:
        init_file = os.path.join(tmp, "init")
        # fork: the children inherit the imported modules (spawn re-imports torch and the tests: seconds each)
        mp.start_processes(_entry, args=(world, fn, args, init_file, tmp), nprocs=world, join=True, start_method="fork")
        return [pickle.loads(Path(tmp, f"{r}.pkl").read_bytes()) for r in range(world)]
