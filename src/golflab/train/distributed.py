"""Process setup: single process, or `torchrun` (RANK / WORLD_SIZE / LOCAL_RANK) with NCCL on CUDA and
gloo on CPU."""

from __future__ import annotations

import datetime
import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistEnv:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed() -> DistEnv:
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        cuda = device.type == "cuda"
        dist.init_process_group(backend="nccl" if cuda else "gloo", timeout=datetime.timedelta(minutes=30),
                                device_id=device if cuda else None)
    return DistEnv(rank, world, local_rank, device)


def agree(env: DistEnv, seconds: float, stop: bool) -> tuple[float, bool]:
    """(rank 0's training seconds, whether any rank was asked to stop): the one collective of each step.
    Every rank then computes lr_scale and the budget from the same clock and stops at the same step."""
    if not env.distributed:
        return seconds, stop
    t = torch.tensor([seconds if env.is_main else 0.0, float(stop)], dtype=torch.float64, device=env.device)
    dist.all_reduce(t)
    shared, any_stop = t.tolist()
    return shared, any_stop > 0


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


def shutdown(env: DistEnv) -> None:
    """Destroy the process group while the interpreter is fully alive. Callers drop what holds it (the
    trainer and its DDP reducer) first: a group left for interpreter exit is torn down with gloo's work
    still referencing Python objects, and the process aborts ("terminate called without an active
    exception", SIGABRT) after a run that succeeded."""
    if env.distributed and dist.is_initialized():
        gc.collect()  # reference cycles that still hold the reducer, and through it the group
        dist.destroy_process_group()
