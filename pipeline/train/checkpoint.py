"""Resumable training checkpoints (``train.checkpoint_every``, ``train.resume``).

A checkpoint is a folder ``step-NNNNNNNN`` under the checkpoint dir (``checkpoints/train``,
git-ignored and not a DVC out: it is scratch state, the DVC output stays the best model):
weights as safetensors (model, best-so-far model, the running mean of
``train.average_last_epochs``, SMART teacher) and everything else (optimizer,
scheduler, combiner, batch streams, the epoch's task plan, torch/numpy/python RNG states,
history) in ``state.pt``, loaded with ``weights_only=True`` so a checkpoint cannot run code.
Each folder is written via ``atomic_path``, so one that exists is complete; older ones are
removed after a newer one lands. A ``fingerprint`` guards against resuming a different run: it
names its parts (``run``: the params and data; ``code``: the ``pipeline`` package's sources),
so a checkpoint that is skipped can say which part changed. A run resumed under changed code
would match neither version's result, so changed code means a fresh start.
"""

from __future__ import annotations

import hashlib
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from pipeline.io import atomic_path

STATE = "state.pt"
PACKAGE = Path(__file__).resolve().parents[1]  # the `pipeline` package
WHY = {"code": "the pipeline/ code changed since it was written",
       "run": "params or data changed since it was written"}


def code_digest(root: Path = PACKAGE) -> str:
    """sha256 of every ``.py`` file under ``root`` (path and bytes, in path order): the code
    a checkpoint was written by. All of the package, not just train/: a change anywhere in
    what training imports (data, model, evaluate) can change the trajectory."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" not in path.parts:
            h.update(path.relative_to(root).as_posix().encode() + b"\0")
            h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def compose_fingerprint(parts: dict[str, str]) -> str:
    """``name=value;...``: one string to compare, whose parts can still be told apart."""
    return ";".join(f"{k}={v}" for k, v in sorted(parts.items()))


def _parts(fingerprint: str) -> dict[str, str]:
    return dict(p.split("=", 1) for p in fingerprint.split(";") if "=" in p)


def skip_reason(found: Path, fingerprint: str, written: str) -> str:
    """One line saying why checkpoint ``found`` (fingerprint ``written``) is not resumed."""
    ours, theirs = _parts(fingerprint), _parts(written)
    changed = [k for k in sorted(ours.keys() | theirs.keys()) if ours.get(k) != theirs.get(k)]
    why = "; ".join(WHY.get(k, f"its {k} differs") for k in changed) or "fingerprint differs"
    return f"not resuming {found}: {why}; starting from scratch"


def _tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in state.items()}


def rng_state(generators: dict[str, np.random.Generator]) -> dict[str, Any]:
    """Every RNG the run uses, as plain ints/lists/tensors (weights_only-loadable)."""
    py = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": [py[0], list(py[1]), py[2]],
        "numpy": {k: g.bit_generator.state for k, g in generators.items()},
    }


def set_rng_state(state: dict[str, Any], generators: dict[str, np.random.Generator]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    v, internal, gauss = state["python"]
    random.setstate((v, tuple(internal), gauss))
    for k, g in generators.items():
        g.bit_generator.state = state["numpy"][k]


def save(ckpt_dir: Path, step: int, weights: dict[str, dict[str, torch.Tensor]],
         state: dict[str, Any]) -> Path:
    """Write ``step-{step}`` atomically, then drop older checkpoints."""
    target = ckpt_dir / f"step-{step:08d}"
    with atomic_path(target) as staged:
        staged.mkdir(parents=True)
        for name, tensors in weights.items():
            save_file(_tensors(tensors), str(staged / f"{name}.safetensors"))
        torch.save(state, staged / STATE)
    for old in ckpt_dir.glob("step-*"):
        if old != target and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return target


def latest(ckpt_dir: Path, fingerprint: str) -> Path | None:
    """The newest complete checkpoint of this run (same fingerprint), if any."""
    found = sorted(p for p in ckpt_dir.glob("step-*") if (p / STATE).is_file())
    for path in reversed(found):
        meta = torch.load(path / STATE, weights_only=True, map_location="cpu")
        if meta.get("fingerprint") == fingerprint:
            return path
    return None


def explain_skip(ckpt_dir: Path, fingerprint: str) -> str | None:
    """Why the newest checkpoint in ``ckpt_dir`` will not be resumed (None: there is none,
    or one of this run's fingerprint exists)."""
    found = sorted(p for p in ckpt_dir.glob("step-*") if (p / STATE).is_file())
    if not found or latest(ckpt_dir, fingerprint) is not None:
        return None
    meta = torch.load(found[-1] / STATE, weights_only=True, map_location="cpu")
    return skip_reason(found[-1], fingerprint, str(meta.get("fingerprint", "")))


def load(path: Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]:
    weights = {p.stem: load_file(str(p)) for p in path.glob("*.safetensors")}
    return weights, torch.load(path / STATE, weights_only=True, map_location="cpu")


def clear(ckpt_dir: Path) -> None:
    """Remove the run's checkpoints once its final model is saved."""
    shutil.rmtree(ckpt_dir, ignore_errors=True)
