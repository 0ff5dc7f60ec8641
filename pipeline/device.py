"""Which torch device a run uses: the one rule for training, MLM, evaluation and prediction.

``auto`` is CUDA when a GPU is visible, else the CPU; ``cuda`` without a GPU is the user's
mistake and says which param to change instead of failing deep inside torch.
"""

from __future__ import annotations

import torch

from pipeline.errors import UserError


def select_device(name: str = "auto", param: str = "train.device") -> torch.device:
    """The device for a ``*.device`` param value (``auto``, ``cpu``, ``cuda``); ``param`` names
    the setting in the error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError(f"{param}=cuda but no CUDA device is available; use auto or cpu")
    return torch.device(name)
