"""A training process SIGKILLed mid-epoch resumes from its last checkpoint to exactly the
weights of an uninterrupted run with the same seed (CPU, deterministic)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pipeline.config import parse_params
from pipeline.train import checkpoint as ckpt
from pipeline.train import loop
from pipeline.train.run import run_fingerprint, will_resume
from tests.conftest import ROOT, tiny_params_dict
from tests.unit.microtrain import micro_cfg, micro_data, micro_model

SCRIPT = """
import sys, time
from pathlib import Path
import torch
from safetensors.torch import save_file
from pipeline.config import LossConfig
from pipeline.train import loop
from tests.unit.microtrain import micro_cfg, micro_data, micro_model

torch.set_num_threads(1)
ckpt, out, slow = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
real = loop.collate
def collate(*a, **k):
    time.sleep(slow)  # gives the test time to kill us mid-epoch
    return real(*a, **k)
loop.collate = collate
model = micro_model()
result = loop.fit(model, micro_data(), micro_data(16, 1),
         cfg=micro_cfg(epochs=2, batches_per_epoch=8, checkpoint_every=3, sampler_cap=2),
         sampler="proportional", seed=0, pad_id=0, in_overall={"single", "pair", "reg"},
         loss_cfg=LossConfig(combine="sampled", smart={"enabled": True, "eps": 1e-3}),
         checkpoint_dir=ckpt, fingerprint="test")
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out))
print("resumed_from", result.resumed_from)
"""


def _run(tmp: Path, ckpt: Path, out: Path, slow: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(ckpt), str(out), str(slow)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.slow  # two training subprocesses, one killed
def test_resume_after_sigkill_matches_uninterrupted(tmp_path):
    straight = _run(tmp_path, tmp_path / "ck_a", tmp_path / "a.safetensors", 0.0)
    ckpt = tmp_path / "ck_b"
    victim = _run(tmp_path, ckpt, tmp_path / "b.safetensors", 0.3)
    deadline = time.monotonic() + 120
    while not list(ckpt.glob("step-*/state.pt")) and time.monotonic() < deadline:
        assert victim.poll() is None, victim.stderr.read().decode() if victim.stderr else ""
        time.sleep(0.05)
    first = sorted(ckpt.glob("step-*"))
    assert first and first[0].name == "step-00000003"  # mid-epoch 1 (8 steps per epoch)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert not (tmp_path / "b.safetensors").exists()
    resumed = _run(tmp_path, ckpt, tmp_path / "b.safetensors", 0.0)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err.decode()
    assert "resumed_from None" not in out.decode() and "step-0000000" in out.decode()
    out, err = straight.communicate(timeout=300)
    assert straight.returncode == 0 and "resumed_from None" in out.decode(), err.decode()
    a = load_file(str(tmp_path / "a.safetensors"))
    b = load_file(str(tmp_path / "b.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_changed_code_is_not_resumed_and_the_log_says_why(tmp_path, capsys):
    """A run killed under one version of the code and rerun under another would match
    neither version's result: the fingerprint hashes the package, so it starts afresh."""
    code = tmp_path / "pipeline"
    shutil.copytree(ckpt.PACKAGE, code, ignore=shutil.ignore_patterns("__pycache__"))
    params = parse_params(tiny_params_dict())
    meta, sizes = {"pad_token_id": 0}, {"single": 48, "pair": 56, "reg": 64}
    before = run_fingerprint(params, meta, sizes, code_root=code)
    checkpoints = tmp_path / "checkpoints"
    loop.fit(micro_model(), micro_data(), micro_data(16, 1), cfg=micro_cfg(batches_per_epoch=2),
             sampler="round_robin", seed=0, pad_id=0, in_overall={"single"},
             checkpoint_dir=checkpoints, fingerprint=before)
    assert will_resume(checkpoints, before, "auto")  # same code and params: resumed

    loop_py = code / "train" / "loop.py"
    loop_py.write_text(loop_py.read_text() + "\n# a change\n")
    after = run_fingerprint(params, meta, sizes, code_root=code)
    assert not will_resume(checkpoints, after, "auto")
    err = capsys.readouterr().err
    assert f"not resuming {sorted(checkpoints.glob('step-*'))[-1]}" in err
    assert "the pipeline/ code changed" in err and "params or data" not in err
    result = loop.fit(micro_model(), micro_data(), micro_data(16, 1),
                      cfg=micro_cfg(batches_per_epoch=2), sampler="round_robin", seed=0,
                      pad_id=0, in_overall={"single"}, checkpoint_dir=checkpoints,
                      fingerprint=after)
    assert result.resumed_from is None and result.steps == 2
