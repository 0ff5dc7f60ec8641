"""Data-parallel training across processes (``train.devices`` > 1, or launched by torchrun).

Every rank holds a full model and trains on its own shard of each task's batches (see
``BatchStream(rank=, world_size=)``); after each backward the gradients are averaged across
ranks, so every rank takes the same optimizer step and the weights stay identical.

The averaging is exactly what one process training on the union of the ranks' batches would
compute (up to float summation order; ``tests/unit/test_ddp.py`` pins it): a parameter that no
rank used this step (another task's head, or its adapters) keeps ``grad=None``, so AdamW skips
it as it does in one process (no momentum step, no weight decay); filling it with zeros would
move it. We do this by hand rather than wrapping the model in ``DistributedDataParallel``:
pcgrad and SMART take several backward passes (and ``autograd.grad`` calls) per step, which
DDP's one-backward reducer does not fit, and DDP's ``find_unused_parameters`` costs a graph
walk per step to learn what the presence flags below tell in one small all-reduce. The same
code runs on CPU with the gloo backend (how it is tested) and on GPUs with nccl. Only rank 0
writes outputs, logs and checkpoints.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


SINGLE = DistContext()


def from_env() -> DistContext:
    """The context torchrun (or :func:`spawn`) describes in the environment; single otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    return DistContext(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def init(ctx: DistContext, device_type: str) -> None:
    """Join the process group (nccl on CUDA, gloo on CPU) if not already joined."""
    if ctx.active and not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo",
                                rank=ctx.rank, world_size=ctx.world_size)


def device_for(ctx: DistContext, device: torch.device) -> torch.device:
    if device.type == "cuda" and ctx.active:
        torch.cuda.set_device(ctx.local_rank)
        return torch.device("cuda", ctx.local_rank)
    return device


def broadcast_parameters(module: torch.nn.Module, ctx: DistContext) -> None:
    """Start every rank from rank 0's weights (cheap insurance against init differences)."""
    if ctx.active:
        for t in module.state_dict().values():
            dist.broadcast(t, src=0)


def used_on_any_rank(params: list[torch.nn.Parameter], ctx: DistContext) -> list[bool]:
    """Whether each parameter got a gradient this step on at least one rank (one small
    all-reduce of presence flags), so every rank agrees on which gradients exist."""
    device = params[0].device if params else torch.device("cpu")
    flags = torch.tensor([p.grad is not None for p in params], dtype=torch.float32,
                         device=device)
    if ctx.active:
        dist.all_reduce(flags)
    return [bool(f > 0) for f in flags.tolist()]


def average_gradients(params: list[torch.nn.Parameter], ctx: DistContext) -> None:
    """Mean of each parameter's gradient over the ranks, as one flat all-reduce of the
    parameters some rank used. A rank that did not use such a parameter contributes zeros
    (its loss does not depend on it); a parameter no rank used keeps ``grad=None``, exactly as
    in single-process training, so the optimizer leaves it alone this step."""
    if not ctx.active:
        return
    params = [p for p in params if p.requires_grad]
    used = [p for p, u in zip(params, used_on_any_rank(params, ctx), strict=True) if u]
    if not used:
        return
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                      for p in used])
    dist.all_reduce(flat)
    flat /= ctx.world_size
    offset = 0
    for p in used:
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _entry(rank: int, world_size: int, port: int, fn: Callable[..., Any],
           args: tuple[Any, ...]) -> None:
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world_size),
                       "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": str(port)})
    try:
        fn(*args)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def spawn(fn: Callable[..., Any], world_size: int, *args: Any) -> None:
    """Run ``fn(*args)`` in ``world_size`` fresh processes set up as torchrun would."""
    import torch.multiprocessing as mp

    mp.spawn(_entry, args=(world_size, _free_port(), fn, args), nprocs=world_size, join=True)
