"""Safety (issue 9, item 6): what the pipeline loads cannot run code, services stay local.

- Weights are written and read only as safetensors: a model folder holds no pickle, and an
  encoder folder that only has a pickled ``pytorch_model.bin`` is refused.
- The other torch state (checkpoint ``state.pt``) is loaded with ``weights_only=True``: a
  crafted checkpoint that would run code on unpickling is rejected and runs nothing.
- ``trust_remote_code`` is off unless ``encoder.trust_remote_code`` names the model
  (``tests/unit/test_wrong_inputs.py::test_remote_code_is_trusted_only_for_the_named_model``).
- The Prefect server, the runner and DDP's rendezvous bind to 127.0.0.1 by default.
- No secret or environment dump in outputs: ``tests/pipeline/test_determinism.py`` runs the
  whole pipeline with canary secrets in the environment and searches every file and log.
"""

from __future__ import annotations

import ast
import pickle
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import BertConfig, BertModel

from pipeline.config import EncoderConfig, parse_params
from pipeline.errors import UserError
from pipeline.model.encoder import TINY_RANDOM, load_encoder
from pipeline.train import checkpoint as ckpt
from pipeline.train.run import build_model, save_inference_files
from tests.conftest import ROOT, tiny_params_dict

PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"}


class _Exploit:
    """Unpickling this writes a file: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def test_a_crafted_checkpoint_state_cannot_run_code(tmp_path):
    marker = tmp_path / "pwned"
    step = tmp_path / "ckpt" / "step-00000001"
    step.mkdir(parents=True)
    torch.save({"fingerprint": "run", "payload": _Exploit(marker)}, step / ckpt.STATE)
    with pytest.raises(pickle.UnpicklingError):
        ckpt.latest(tmp_path / "ckpt", "run")
    with pytest.raises(pickle.UnpicklingError):
        ckpt.load(step)
    assert not marker.exists()


def test_checkpoints_and_model_folders_keep_weights_in_safetensors(tmp_path):
    params = parse_params(tiny_params_dict())
    model = build_model(params)
    out = tmp_path / "model"
    model.save(out)
    save_inference_files(params, {"encoder": "tiny-random", "max_length": 16,
                                  "pad_token_id": 0}, out)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in PICKLE_SUFFIXES]
    weights = load_file(str(out / "model.safetensors"))
    assert set(weights) == set(model.state_dict())

    step = ckpt.save(tmp_path / "ckpt", 3, {"model": model.state_dict()},
                     {"fingerprint": "run", "step": 3, "rng": torch.get_rng_state()})
    assert sorted(p.name for p in step.iterdir()) == ["model.safetensors", ckpt.STATE]
    weights, state = ckpt.load(step)  # state.pt: plain data, loadable with weights_only=True
    assert set(weights["model"]) == set(model.state_dict())
    assert state["step"] == 3


def test_an_encoder_folder_with_only_pickled_weights_is_refused(tmp_path):
    cfg = BertConfig(vocab_size=100, **TINY_RANDOM)
    pickled, safe = tmp_path / "pickled", tmp_path / "safe"
    model = BertModel(cfg, add_pooling_layer=False)
    model.save_pretrained(safe)
    cfg.save_pretrained(pickled)
    torch.save(model.state_dict(), pickled / "pytorch_model.bin")  # the legacy pickle format
    assert (pickled / "pytorch_model.bin").is_file()
    assert not list(pickled.glob("*.safetensors"))
    with pytest.raises(UserError, match="cannot load encoder"):
        load_encoder(EncoderConfig(name=str(pickled)), seed=0)
    assert load_encoder(EncoderConfig(name=str(safe)), seed=0).config.hidden_size == 64


def _calls(name: str) -> list[tuple[Path, ast.Call]]:
    """Every call of ``torch.<name>`` / ``<x>.<name>`` in pipeline/ and stages/."""
    found = []
    for path in [*(ROOT / "pipeline").rglob("*.py"), *(ROOT / "stages").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == name:
                found.append((path, node))
    return found


def _kw(call: ast.Call, name: str) -> object:
    for kw in call.keywords:
        if kw.arg == name:
            return ast.literal_eval(kw.value) if isinstance(kw.value, ast.Constant) else kw.value
    return None


def test_every_torch_load_is_weights_only_and_nothing_unpickles():
    loads = _calls("load")
    torch_loads = [(p, c) for p, c in loads if isinstance(c.func.value, ast.Name)
                   and c.func.value.id == "torch"]
    assert torch_loads, "expected the checkpoint loader to call torch.load"
    for path, call in torch_loads:
        assert _kw(call, "weights_only") is True, f"{path}:{call.lineno}"
    for path in [*(ROOT / "pipeline").rglob("*.py"), *(ROOT / "stages").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(import|from)\s+(pickle|dill|joblib)\b", text, re.M), path
    for path, call in _calls("from_pretrained"):
        assert _kw(call, "trust_remote_code") in (None,), f"{path}:{call.lineno}: use params"


def test_services_bind_to_localhost_by_default():
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    assert settings.server.api.host == "127.0.0.1"
    assert settings.runner.server.host in ("127.0.0.1", "localhost")
    script = (ROOT / "scripts" / "prefect-up.sh").read_text(encoding="utf-8")
    starts = [line for line in script.splitlines() if "prefect server start" in line]
    assert starts and all("--host 127.0.0.1" in line for line in starts)
    for path in [*(ROOT / "pipeline").rglob("*.py"), *(ROOT / "scripts").rglob("*.sh")]:
        assert "0.0.0.0" not in path.read_text(encoding="utf-8"), path
    for path, call in _calls("serve"):  # the runner's webserver stays off
        assert _kw(call, "webserver") in (None, False), f"{path}:{call.lineno}"
    dist_src = (ROOT / "pipeline" / "train" / "distributed.py").read_text(encoding="utf-8")
    assert '"MASTER_ADDR": "127.0.0.1"' in dist_src
