"""Data-parallel training under torchrun: one process per rank, gradients averaged by DDP.

`torchrun --nproc-per-node N -m lmcore train ...` starts N copies of `lmcore train`; each finds
its rank in the environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT).
Every rank draws the same global batch of window offsets from the same seeded generator and
reads only its own rows of it (rank r takes rows r, r + N, ...), so the global batch and the
averaged gradient are those of single-process training with the same flags: losses match to
float tolerance. Rank 0 alone logs, evaluates, checkpoints and records the run.

The process group has a timeout: a rank that dies makes the others fail their next collective
with a clear message instead of hanging forever. gloo on the CPU, NCCL on CUDA.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch

DEFAULT_TIMEOUT_S = 120.0  # LMCORE_DDP_TIMEOUT_S: how long a rank waits for a silent peer


@dataclass(frozen=True)
class World:
    """This process's place among the ranks of one training run."""

    rank: int
    size: int
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world_from_env() -> World | None:
    """The World torchrun describes in the environment, or None when not under torchrun."""
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        return None
    try:
        size, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError as exc:
        raise ValueError(f"torchrun's RANK/WORLD_SIZE are not numbers: {exc}") from None
    if not 0 <= rank < size:
        raise ValueError(f"RANK={rank} is outside WORLD_SIZE={size}")
    return World(rank, size, local)


def timeout_s() -> float:
    raw = os.environ.get("LMCORE_DDP_TIMEOUT_S", "")
    try:
        value = float(raw) if raw.strip() else DEFAULT_TIMEOUT_S
    except ValueError:
        raise ValueError(f"LMCORE_DDP_TIMEOUT_S={raw!r} is not a number of seconds") from None
    if not value > 0:
        raise ValueError(f"LMCORE_DDP_TIMEOUT_S must be positive, got {raw!r}")
    return value


def init(world: World, device: str) -> None:
    """Join the process group (gloo on CPU, NCCL on CUDA) with the lmcore timeout."""
    import torch.distributed as dist

    if dist.is_initialized():
        return
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group(backend=backend, rank=world.rank, world_size=world.size,
                            timeout=timedelta(seconds=timeout_s()))


def shutdown() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def device_for(world: World, device: str) -> str:
    """Each rank's own GPU under CUDA ('cuda' -> 'cuda:LOCAL_RANK'); the CPU as asked."""
    return f"cuda:{world.local_rank}" if device == "cuda" else device


def check_batch(world: World, batch_size: int) -> None:
    if batch_size % world.size:
        raise ValueError(f"--batch-size {batch_size} does not split evenly over "
                         f"{world.size} ranks: use a multiple of {world.size}")


def global_mean(value: torch.Tensor, world: World) -> torch.Tensor:
    """The mean of a scalar over every rank (each rank's share of the batch is equal)."""
    import torch.distributed as dist

    out = value.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / world.size


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()


def readable(exc: BaseException) -> str:
    """A one-line reason for a failed collective (a peer died or went silent)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return (f"another rank stopped answering ({text[:200]}): a rank died or hung; the run "
            f"stops (process-group timeout {timeout_s():g} s, LMCORE_DDP_TIMEOUT_S)")
