"""Numeric precision of the forward pass (``train.precision``): fp32, bf16 or fp16 autocast.

bf16 has fp32's exponent range, so it needs no loss scaling and runs on CPU and CUDA alike.
fp16 needs a GradScaler against underflow and CPU autocast does not support it well, so it is
CUDA only and refused on CPU with a clear message instead of silently running in fp32.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

from pipeline.errors import UserError


@dataclass(frozen=True)
class Precision:
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
    "fp32": Precision(None, needs_scaler=False, cuda_only=False),
    "bf16": Precision(torch.bfloat16, needs_scaler=False, cuda_only=False),
    "fp16": Precision(torch.float16, needs_scaler=True, cuda_only=True),
}


def resolve_precision(name: str, device: torch.device) -> Precision:
    """The precision for ``device``; fp16 on a CPU is a user error, raised before training."""
    p = PRECISIONS[name]
    if p.cuda_only and device.type != "cuda":
        raise UserError(f"train.precision={name} needs a CUDA device (this run is on "
                        f"{device.type}); use bf16 or fp32 on CPU")
    return p


