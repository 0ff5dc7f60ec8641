"""Which torch device a run uses: the one rule for training, MLM, evaluation and prediction.

``auto`` is CUDA when a GPU is visible, else the CPU; ``cuda`` without a GPU is the user's
mistake and says which param to change instead of failing deep inside torch.

On CUDA the cuDNN backend of ``scaled_dot_product_attention`` is switched off: PyTorch picks
it for bf16/fp16 attention on recent GPUs, and it builds an execution plan per input shape.
Length-bucketed batches have a new shape almost every step, so bf16 training spent ~1 s per
step building plans (measured on an H200: 39 examples/s in bf16 against 234 in fp32,
benchmarks/results.md "perf-gpu"); the memory-efficient and flash kernels have no such cost.
"""

from __future__ import annotations

import torch

from pipeline.errors import UserError


def select_device(name: str = "auto", param: str = "train.device") -> torch.device:
    """The device for a ``*.device`` param value (``auto``, ``cpu``, ``cuda``); ``param`` names
    the setting in the error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError(f"{param}=cuda but no CUDA device is available; use auto or cpu")
    if name == "cuda":
        torch.backends.cuda.enable_cudnn_sdp(False)  # per-shape plans: see the module doc
    return torch.device(name)
