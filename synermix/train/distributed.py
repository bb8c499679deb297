"""Multi-GPU runs under torchrun: process group set-up and the few collectives the training loop needs."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import List, Optional

import torch
import torch.distributed as dist

from synermix.method.sampling import shard_bounds


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands in a (possibly single-process) run."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """Whether there is more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes logs, checkpoints and results."""
        return self.rank == 0

    def max(self, tensor: torch.Tensor) -> torch.Tensor:
        """Element-wise maximum over all processes (identity when single-process)."""
        if self.enabled:
            tensor = tensor.clone()
            dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return tensor

    def sum_(self, *tensors: torch.Tensor) -> None:
        """Sum each tensor over all processes, in place (no-op when single-process)."""
        if self.enabled:
            for tensor in tensors:
                dist.all_reduce(tensor, op=dist.ReduceOp.SUM)

    def max_(self, *tensors: torch.Tensor) -> None:
        """The maximum of each tensor over all processes, in place (no-op when single-process)."""
        if self.enabled:
            for tensor in tensors:
                dist.all_reduce(tensor, op=dist.ReduceOp.MAX)

    def broadcast_(self, *tensors: torch.Tensor) -> None:
        """Rank 0's value of each tensor on every process, in place (no-op when single-process)."""
        if self.enabled:
            for tensor in tensors:
                dist.broadcast(tensor, src=0)

    def gather_objects(self, obj) -> list:
        """Every process's `obj` (picklable), in rank order, on every process ([obj] when single-process)."""
        if not self.enabled:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """Mean over all processes (identity when single-process)."""
        if self.enabled:
            tensor = tensor.clone()
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
            tensor /= self.world_size
        return tensor


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by `scale`."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:  # noqa: D102
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: D102
        return grad * ctx.scale, None


@dataclass
class GlobalBatch:
    """This process's part of one step's global batch: what the loss needs to compute the single-process loss.

    `global_size` is the supplemented global batch's size; the parts are cut as `sampling.shard_bounds` cuts
    them. `intra_generator` is seeded alike on every process, so all of them draw the same Eq. 1 weights.
    """

    env: DistEnv
    global_size: int
    intra_generator: Optional[torch.Generator] = None

    @property
    def sizes(self) -> List[int]:
        """The sizes of all processes' parts, in rank order."""
        return [
            b - a
            for a, b in (shard_bounds(self.global_size, self.env.world_size, r) for r in range(self.env.world_size))
        ]

    @property
    def share(self) -> float:
        """world size x this part's share of the batch: scales a per-sample mean so that DDP's gradient average
        equals the gradient of the global batch's mean."""
        return self.env.world_size * self.sizes[self.env.rank] / self.global_size

    def gather(self, features: torch.Tensor, labels: torch.Tensor):
        """(features, labels) of the whole global batch, in the single process's order, on every process.

        This process's rows keep their autograd graph, the others arrive detached; every process computes the
        same loss from them, so its rows' gradient is scaled by the world size: summed over processes that is
        the gradient `torch.distributed.nn.functional.all_gather` would give (the all-gathered copies' sum),
        and DDP's average turns it into the single-process gradient. No collective runs in the backward.
        """
        sizes, rank = self.sizes, self.env.rank
        width = sizes[0]  # the first parts are the longest
        pad = width - features.shape[0]
        dtype = torch.promote_types(features.dtype, torch.float32)  # holds the labels exactly (< 2**24 classes)
        both = torch.cat((features.detach().to(dtype), labels.unsqueeze(1).to(dtype)), dim=1)
        both = torch.nn.functional.pad(both, (0, 0, 0, pad))
        parts = [torch.empty_like(both) for _ in sizes]
        dist.all_gather(parts, both)
        rows = [p[:n] for p, n in zip(parts, sizes)]
        gathered_labels = torch.cat([r[:, -1] for r in rows]).round().long()
        own = _ScaleGrad.apply(features, float(self.env.world_size))
        gathered = torch.cat([own if r == rank else rows[r][:, :-1].to(features.dtype) for r in range(len(rows))])
        return gathered, gathered_labels


def _task_job_environment():
    """submitit's view of a job that started one process per task (None when there is no such job): a submitit
    job (SUBMITIT_EXECUTOR: slurm or local, tasks_per_node), or srun's tasks (SLURM_STEP_NUM_TASKS)."""
    if os.environ.get("SUBMITIT_EXECUTOR"):
        from submitit import JobEnvironment  # submitit: only inside a SLURM job

        return JobEnvironment()
    if "SLURM_PROCID" in os.environ and int(os.environ.get("SLURM_STEP_NUM_TASKS", "1")) > 1:
        from submitit.slurm.slurm import SlurmJobEnvironment  # submitit: only inside a SLURM job

        return SlurmJobEnvironment()
    return None


def export_task_environment() -> None:
    """Without torchrun, in a job of several tasks (srun, or submitit's tasks_per_node), set what torch's env://
    rendezvous reads: MASTER_ADDR (the job's first node, from submitit's node-list parsing), MASTER_PORT (kept if
    set, else derived from the job id as submitit does), RANK, WORLD_SIZE and LOCAL_RANK."""
    if "WORLD_SIZE" in os.environ:
        return
    job = _task_job_environment()
    if job is None or job.num_tasks <= 1:
        return
    port = os.environ.get("MASTER_PORT") or str(random.Random(job.job_id).randint(20000, 60000))
    os.environ.update(
        MASTER_ADDR=job.hostnames[0],
        MASTER_PORT=port,
        RANK=str(job.global_rank),
        WORLD_SIZE=str(job.num_tasks),
        LOCAL_RANK=str(job.local_rank),
    )


def setup_distributed(device: torch.device) -> tuple[DistEnv, torch.device]:
    """Join the process group torchrun (or a job's tasks, once export_task_environment has run) describe: NCCL
    on CUDA, gloo on CPU.

    Returns the environment and this process's device (cuda:LOCAL_RANK on GPUs)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistEnv(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistEnv(world, rank, local_rank), device


def teardown_distributed(env: DistEnv) -> None:
    """Leave the process group (no-op when single-process)."""
    if env.enabled and dist.is_initialized():
        dist.destroy_process_group()
