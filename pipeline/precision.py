"""Numeric precision of the forward pass (``train.precision``): auto, fp32, bf16 or fp16.

bf16 has fp32's exponent range, so it needs no loss scaling and runs on CPU and CUDA alike.
fp16 needs a GradScaler against underflow and CPU autocast does not support it well, so it is
CUDA only and refused on CPU with a clear message instead of silently running in fp32.

``auto`` (the default) picks bf16 autocast where the device multiplies bf16 matrices in
hardware (a CUDA GPU that supports bf16; a CPU with AMX-BF16 tiles, e.g. Xeon Sapphire Rapids
and later, where training runs about 1.5x and scoring about 2x faster than in fp32, see
benchmarks/results.md) and fp32 everywhere else (an older CPU would only emulate bf16, which
is slower than fp32). The resolved name is recorded in the training summary; the saved model
keeps the param as set. Set ``fp32`` to get the same bits on every machine.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

from pipeline import names
from pipeline.errors import UserError


@dataclass(frozen=True)
class Precision:
    name: str
    dtype: torch.dtype | None  # autocast dtype; None = plain fp32
    needs_scaler: bool
    cuda_only: bool

    def autocast(self, device: torch.device) -> AbstractContextManager[object]:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.dtype)

    def scaler(self, device: torch.device) -> torch.amp.GradScaler | None:
        return torch.amp.GradScaler(device.type) if self.needs_scaler else None


PRECISIONS: dict[str, Precision] = {
    "fp32": Precision("fp32", None, needs_scaler=False, cuda_only=False),
    "bf16": Precision("bf16", torch.bfloat16, needs_scaler=False, cuda_only=False),
    "fp16": Precision("fp16", torch.float16, needs_scaler=True, cuda_only=True),
}
AUTO = names.AUTO
# The names params accept: ``auto`` plus every concrete precision.
CHOICES: dict[str, Precision | None] = {AUTO: None, **PRECISIONS}
names.check_registry("precision", CHOICES, names.PRECISION_CHOICES)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 matrix products in hardware."""
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return bool(torch.cpu.get_capabilities().get("amx_bf16", False))
    return False


def resolve_precision(name: str, device: torch.device) -> Precision:
    """The precision for ``device``; fp16 on a CPU is a user error, raised before training."""
    if name == AUTO:
        return PRECISIONS["bf16" if native_bf16(device) else "fp32"]
    p = PRECISIONS[name]
    if p.cuda_only and device.type != "cuda":
        raise UserError(f"train.precision={name} needs a CUDA device (this run is on "
                        f"{device.type}); use bf16 or fp32 on CPU")
    return p
