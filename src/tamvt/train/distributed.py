"""Process-group setup for data-parallel training under ``torchrun`` (SPEC §4: batch 1 per process).

``torchrun --nproc_per_node K -m tamvt.cli train ...`` sets ``RANK`` / ``WORLD_SIZE`` /
``LOCAL_RANK``; :func:`setup` reads them (at call time, never at import) and initialises gloo on CPU
or NCCL on GPU. Without them the run is a single process and nothing is initialised.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from tamvt.devices import resolve_device


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: str = "auto", timeout_s: float = 1800.0) -> DistInfo:
    """Initialise the process group if launched by torchrun; returns this process's :class:`DistInfo`."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(
            backend=backend, timeout=timedelta(seconds=timeout_s), device_id=dev if dev.type == "cuda" else None
        )
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=dev)


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean over processes of a float tensor (a no-op in a single process); returns a new tensor."""
    out = values.detach().clone()
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        out /= dist.get_world_size()
    return out


def broadcast_object(obj: object, src: int = 0) -> object:
    """``obj`` of rank ``src`` on every rank (identity in a single process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def rank_seed(seed: int, rank: int) -> int:
    """The seed of process ``rank``: different per rank so dropout / augmentation draws differ."""
    return seed + 100_003 * rank
