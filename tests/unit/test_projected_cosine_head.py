"""The ``projected_cosine`` pair head: ``scale * cos(P u, P v) + shift`` with P the identity at
init, so step 0 is the plain cosine head (and its zero-shot fit), and a task can learn its own
metric in P instead of bending the shared encoder to it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.model.head_init import HeadFeatures, fit_cosine_head
from pipeline.model.heads import CosineHead, Encoded, HeadSpec, ProjectedCosineHead

HIDDEN = 16


def spec(task_type: str) -> HeadSpec:
    return HeadSpec(hidden=HIDDEN, out=1 if task_type == "regression" else 2,
                    task_type=task_type, siamese=True, dropout=0.0, mlp_hidden=8,
                    min_label=0.0, max_label=5.0)


def encoded(pooled: torch.Tensor) -> Encoded:
    return Encoded(states=pooled[:, None, :], mask=torch.ones(len(pooled), 1), pooled=pooled)


def pairs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, HIDDEN, generator=g), torch.randn(n, HIDDEN, generator=g)


@pytest.mark.parametrize("task_type", ["regression", "classification"])
def test_at_init_it_computes_exactly_the_cosine_head(task_type):
    torch.manual_seed(0)
    plain, projected = CosineHead(spec(task_type)), ProjectedCosineHead(spec(task_type))
    with torch.no_grad():
        for head in (plain, projected):
            head.scale.fill_(3.7)
            head.shift.fill_(-0.4)
    u, v = pairs(64, 1)
    assert torch.equal(projected(encoded(u), encoded(v)), plain(encoded(u), encoded(v)))


@pytest.mark.parametrize("task_type", ["regression", "classification"])
def test_zero_shot_fit_at_init_equals_the_cosine_heads(task_type):
    u, v = pairs(200, 2)
    cos = torch.nn.functional.cosine_similarity(u, v, dim=-1).numpy()
    rng = np.random.default_rng(0)
    labels = (np.clip(2.5 + 2.0 * cos + rng.normal(0, 0.3, len(cos)), 0, 5)
              if task_type == "regression" else (cos + rng.normal(0, 0.2, len(cos)) > 0)
              .astype(np.float64))
    f = HeadFeatures(a=u.numpy(), b=v.numpy(), labels=labels)
    plain, projected = CosineHead(spec(task_type)), ProjectedCosineHead(spec(task_type))
    fit_cosine_head(plain, f)
    fit_cosine_head(projected, f)
    assert projected.scale.item() == pytest.approx(plain.scale.item(), rel=1e-6)
    assert projected.shift.item() == pytest.approx(plain.shift.item(), rel=1e-6, abs=1e-9)


def test_zero_shot_fit_reads_the_projected_cosine():
    """The fit describes the head as it computes: after P has changed, the least-squares fit
    is on cos(P u, P v), not on the raw cosine."""
    u, v = pairs(300, 3)
    head = ProjectedCosineHead(spec("regression"))
    with torch.no_grad():
        head.projection.weight.copy_(torch.diag(torch.linspace(0.1, 3.0, HIDDEN)))
        projected_cos = head.similarity(u, v).double().numpy()
    labels = 1.0 + 3.0 * projected_cos  # exact in the projected cosine
    fit_cosine_head(head, HeadFeatures(a=u.numpy(), b=v.numpy(), labels=labels))
    assert head.scale.item() == pytest.approx(3.0, rel=1e-4)
    assert head.shift.item() == pytest.approx(1.0, rel=1e-4)


def subspace_similarity_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pairs whose score is the cosine of their first 4 dimensions; the other 12 carry
    label-free noise three times larger, as features another task needs would."""
    g = torch.Generator().manual_seed(seed)
    u, v = torch.randn(n, HIDDEN, generator=g), torch.randn(n, HIDDEN, generator=g)
    v[:, :4] = torch.where(torch.rand(n, 1, generator=g) < 0.5, u[:, :4], v[:, :4])
    u[:, 4:] *= 3.0
    v[:, 4:] *= 3.0
    score = 2.5 + 2.5 * torch.nn.functional.cosine_similarity(u[:, :4], v[:, :4], dim=-1)
    return u, v, score


def train_on_fixed_features(head: CosineHead, steps: int = 300) -> float:
    """Pearson r on held-out pairs after Adam on the head alone (the features stay fixed)."""
    u, v, y = subspace_similarity_data(512, 4)
    opt = torch.optim.Adam(head.parameters(), lr=0.02)
    for _ in range(steps):
        opt.zero_grad()
        loss = ((head(encoded(u), encoded(v)).squeeze(-1) - y) ** 2).mean()
        loss.backward()
        opt.step()
    tu, tv, ty = subspace_similarity_data(512, 5)
    with torch.no_grad():
        pred = head(encoded(tu), encoded(tv)).squeeze(-1)
    return float(np.corrcoef(pred.numpy(), ty.numpy())[0, 1])


def test_it_learns_a_metric_the_plain_cosine_cannot_express():
    """On fixed features whose similarity lives in a subspace, the plain cosine head can only
    rescale the full cosine; the projected head learns to weight the subspace."""
    torch.manual_seed(0)
    plain_r = train_on_fixed_features(CosineHead(spec("regression")))
    projected_r = train_on_fixed_features(ProjectedCosineHead(spec("regression")))
    assert plain_r < 0.6
    assert projected_r > 0.9


def test_untrained_model_predicts_as_with_the_plain_cosine_head():
    """Through the model and the zero-shot init: a projected_cosine model and a cosine model
    on the same encoder weights fit the same scale and shift and predict the same dev
    scores (sts) and probabilities (para) before any step."""
    import random

    import pyarrow as pa

    from pipeline.config import EncoderConfig, ModelConfig, TaskConfig
    from pipeline.data.batching import task_data_from_table
    from pipeline.data.synthetic import generate_rows
    from pipeline.data.tokenize import tokenize_table
    from pipeline.inference import predict
    from pipeline.model.encoder import load_encoder
    from pipeline.model.head_init import init_heads_zero_shot
    from pipeline.model.multitask import MultitaskModel, TaskSpec
    from pipeline.model.stage_tokenizer import load_stage_tokenizer

    encoder_cfg = EncoderConfig(name="tiny-random")
    tasks = {"para": TaskConfig(type="classification", num_labels=2, pair=True),
             "sts": TaskConfig(type="regression", pair=True, min_label=0.0, max_label=5.0)}
    tok = load_stage_tokenizer(encoder_cfg)
    cpu = torch.device("cpu")

    def split(task: str, name: str, n: int):
        rows = generate_rows(task, n, random.Random(f"{task}-{name}"))
        table = pa.table({k: [r.get(k, "") for r in rows] for k in ("id", "text_a", "text_b")}
                         | {"label": [float(r["label"]) for r in rows]})
        return task_data_from_table(tokenize_table(table, tasks[task], tok, 32), task, "siamese")

    train = {t: split(t, "train", 120) for t in tasks}
    dev = {t: split(t, "dev", 60) for t in tasks}
    results = {}
    for head in ("cosine", "projected_cosine"):
        model_cfg = ModelConfig(pair_head=head)
        specs = [TaskSpec.from_config(n, c, model_cfg) for n, c in tasks.items()]
        model = MultitaskModel(load_encoder(encoder_cfg, 0), specs, model_cfg, encoder_cfg.name)
        assert all(s.encoding == "siamese" for s in specs)
        notes = init_heads_zero_shot(model, train, tok.pad_token_id, cpu, max_rows=1000, seed=0)
        assert all("fit" in notes[t] for t in tasks), notes
        results[head] = {t: predict(model, dev[t], 16, tok.pad_token_id, cpu) for t in tasks}
    sts = results["cosine"]["sts"].pred
    assert sts.std() > 0.01  # a fit, not a constant both heads would share
    np.testing.assert_allclose(results["projected_cosine"]["sts"].pred, sts, atol=1e-5)
    np.testing.assert_allclose(results["projected_cosine"]["para"].scores,
                               results["cosine"]["para"].scores, atol=1e-5)


def test_zero_shot_fit_runs_in_the_heads_dtype():
    """Features are collected as float32; a float64 head (P included) still fits."""
    u, v = pairs(100, 6)
    head = ProjectedCosineHead(spec("regression")).double()
    labels = 2.0 + 2.0 * torch.nn.functional.cosine_similarity(u, v, dim=-1).double().numpy()
    fit_cosine_head(head, HeadFeatures(a=u.numpy(), b=v.numpy(), labels=labels))
    assert head.scale.item() == pytest.approx(2.0, rel=1e-5)
