"""Data-parallel training under ``torchrun`` with no code change beyond the launcher.

    torchrun --standalone --nproc_per_node 2 -m distill.abr_student --env abr ...   # 2 GPUs (NCCL) or 2 CPU procs (gloo)

When ``WORLD_SIZE`` > 1 the trainers initialise the process group (NCCL on CUDA, gloo on CPU), put
each rank on ``cuda:LOCAL_RANK``, wrap the model in ``DistributedDataParallel`` and draw the *global*
batch from the same seeded generator on every rank, each rank keeping its slice. Averaged gradients
then equal the single-process gradient of the same global batch, so a DDP run follows the same
loss curve. Closed-loop steps (DAgger rollouts, teacher labels) are deterministic and run on every
rank, so ranks keep identical data without communication. Only rank 0 logs, evaluates and writes.
"""

from __future__ import annotations

import atexit
import gc
import os
from dataclasses import dataclass

import torch


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: str = "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def setup(device: str) -> Dist:
    """Join the ``torchrun`` process group if there is one; returns this rank's view."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(device=device)
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        device = f"cuda:{local}"
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        atexit.register(_at_exit)
    return Dist(rank=dist.get_rank(), world=dist.get_world_size(), device=device)


def wrap(model: torch.nn.Module, d: Dist) -> torch.nn.Module:
    if not d.active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [int(d.device.split(":")[1])] if d.device.startswith("cuda") else None
    return DistributedDataParallel(model, device_ids=ids)


def my_slice(global_batch: int, d: Dist) -> slice:
    if global_batch % d.world:
        raise SystemExit(f"--batch-size {global_batch} must be a multiple of the {d.world} processes")
    per = global_batch // d.world
    return slice(d.rank * per, (d.rank + 1) * per)


def mean(value: float, d: Dist) -> float:
    """The mean of a scalar over ranks (for logging the global-batch loss)."""
    if not d.active:
        return value
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64, device=d.device if d.device.startswith("cuda") else "cpu")
    dist.all_reduce(t)
    return float(t) / d.world


def barrier(d: Dist) -> None:
    if d.active:
        import torch.distributed as dist

        dist.barrier()


def _at_exit() -> None:
    """Before the interpreter is torn down: collect what still holds the process group (a DDP wrapper's
    reducer sits in reference cycles) and close the group if a trainer did not. Left to finalization,
    gloo's worker threads can free tensors after Python is gone and abort the process (SIGABRT,
    "terminate called without an active exception" — seen at exit on the second rank)."""
    import torch.distributed as dist

    gc.collect()
    if dist.is_initialized():
        dist.destroy_process_group()


def cleanup(d: Dist) -> None:
    if d.active:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
