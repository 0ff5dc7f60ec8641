"""``loss.rdrop``: R-Drop (Liang et al. 2021) per classification task, from the formula
through the training step to the params check."""

import copy
import math

import numpy as np
import pytest
import torch

from pipeline.config import LossConfig, parse_params
from pipeline.data.batching import collate, stack_twice
from pipeline.errors import UserError
from pipeline.precision import PRECISIONS
from pipeline.train import loop
from pipeline.train.rdrop import first_copy, rdrop_loss, symmetric_kl
from tests.conftest import deep_merge, default_params_dict
from tests.unit.microtrain import micro_cfg, micro_data, micro_model

CPU = torch.device("cpu")


def test_the_kl_term_is_the_papers_bidirectional_kl_by_hand():
    """KL(p||q) + KL(q||p) = sum_k (p_k - q_k)(log p_k - log q_k), per row, then the batch
    mean; zero for equal logits, whatever their scale."""
    a = torch.tensor([[2.0, 0.5, -1.0], [0.0, 3.0, 0.1]])
    b = torch.tensor([[1.0, 1.5, -0.5], [0.2, 2.0, 0.3]])
    p, q = a.softmax(-1), b.softmax(-1)
    by_hand = ((p - q) * (p.log() - q.log())).sum(-1).mean()
    assert float(symmetric_kl(a, b)) == pytest.approx(float(by_hand), rel=1e-6)
    assert float(symmetric_kl(a, b)) == pytest.approx(float(symmetric_kl(b, a)), rel=1e-6)
    assert float(symmetric_kl(a, a + 7.0)) == pytest.approx(0.0, abs=1e-6)
    # bf16 logits are compared in float32
    assert symmetric_kl(a.bfloat16(), b.bfloat16()).dtype == torch.float32


def test_the_loss_is_the_papers_halved():
    """[CE1 + CE2] / 2 + alpha / 4 (KL12 + KL21): half of the paper's eq. 3, so alpha keeps
    the paper's ratio of the KL term to the cross-entropy."""
    a = torch.tensor([[2.0, 0.5, -1.0]])
    b = torch.tensor([[1.0, 1.5, -0.5]])
    gold = torch.tensor([0])
    ce_a = torch.nn.functional.cross_entropy(a, gold)
    ce_b = torch.nn.functional.cross_entropy(b, gold)
    alpha = 0.5
    papers = ce_a + ce_b + alpha / 2 * symmetric_kl(a, b)
    assert float(rdrop_loss(ce_a, ce_b, a, b, alpha)) == pytest.approx(float(papers) / 2,
                                                                      rel=1e-6)
    assert float(rdrop_loss(ce_a, ce_b, a, b, 0.0)) == pytest.approx(
        float(ce_a + ce_b) / 2, rel=1e-6)


def _step(rdrop: dict[str, float], dropout: float):
    model = micro_model(dropout=dropout)
    cfg = micro_cfg()
    loop.prepare_model(model, cfg, CPU, 0)
    _, step, _ = loop.build(model, micro_data(), cfg=cfg, loss_cfg=LossConfig(rdrop=rdrop),
                            sampler="round_robin", seed=0, pad_id=0,
                            precision=PRECISIONS["fp32"], device=CPU,
                            dist_ctx=loop.dist.SINGLE)
    return model, step


def test_without_dropout_the_two_draws_agree_and_the_loss_is_the_cross_entropy():
    """With dropout 0 both copies see the same model: the KL term is 0 and R-Drop's loss is
    the plain loss of the very batch the step drew, for the named tasks (a single-sentence
    one and a siamese pair one, whose distinct sentences are stacked) and the others."""
    model, step = _step({"single": 1.0, "pair": 1.0}, dropout=0.0)
    streams = copy.deepcopy(step.batches.streams)
    for task in ("single", "pair", "reg"):
        got, _ = step.losses(task)
        batch = collate(step.batches.sets[task], next(streams[task]), 0, task == "reg")
        expected = loop.output_loss(model.tasks[task], model(task, batch), batch["labels"])
        assert float(got[task].detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


def test_with_dropout_each_row_is_drawn_twice_in_one_pass_and_pays_for_disagreement():
    """With dropout on, the named task's batch goes through the encoder once, stacked on
    itself, so every row gets two dropout draws; its loss is the two copies' mean
    cross-entropy plus alpha / 4 of their KL, which is > 0. An unnamed task's batch runs once,
    as drawn."""
    torch.manual_seed(0)
    model, step = _step({"single": 1.0}, dropout=0.3)
    calls: list[tuple[str, int]] = []
    outputs: list[torch.Tensor] = []
    encode, score = model.encode_inputs, model.score

    def counting(task, batch, *args, **kwargs):  # every pass of the encoder goes through it
        calls.append((task, len(batch["labels"])))
        return encode(task, batch, *args, **kwargs)

    def scoring(task, *args):
        outputs.append(score(task, *args))
        return outputs[-1]

    model.encode_inputs, model.score = counting, scoring
    streams = copy.deepcopy(step.batches.streams)
    got, _ = step.losses("single")
    labels = collate(step.batches.sets["single"], next(streams["single"]), 0, False)["labels"]
    assert calls == [("single", 2 * len(labels))]
    first, second = outputs[0].chunk(2)
    assert not torch.allclose(first, second)  # two dropout draws of the same rows
    spec = model.tasks["single"]
    ce = [loop.output_loss(spec, o, labels) for o in (first, second)]
    kl = symmetric_kl(first, second).detach()
    assert float(kl) > 0
    expected = ((ce[0] + ce[1]) / 2 + kl / 4).detach()
    assert float(got["single"].detach()) == pytest.approx(float(expected), rel=1e-5)
    got["single"].backward()  # both draws carry gradients
    assert all(p.grad is not None for p in model.heads["single"].parameters()
               if p.requires_grad)
    calls.clear()
    got, _ = step.losses("pair")
    assert [t for t, _ in calls] == ["pair"] and calls[0][1] == len(outputs[-1])


def test_a_stacked_siamese_batch_encodes_each_copy_like_the_batch():
    """stack_twice on a batch of distinct sentences: the copy's chunks come after the
    originals' and its positions point at them, so without dropout both copies' sentence
    vectors equal the batch's own."""
    model = micro_model(dropout=0.0).eval()
    data = micro_data()["pair"]
    batch = collate(data, np.arange(12), 0, False)
    assert "a_unit" in batch
    stacked = stack_twice(batch)
    chunks = sum(1 for k in batch if k.endswith("_input_ids") and k.startswith("u"))
    assert f"u{2 * chunks - 1}_input_ids" in stacked and f"u{2 * chunks}_input_ids" not in stacked
    a, b = model.encode_inputs("pair", batch)
    a2, b2 = model.encode_inputs("pair", stacked)
    for one, two in ((a, a2), (b, b2)):
        assert torch.allclose(two.pooled, torch.cat([one.pooled, one.pooled]), atol=1e-6)
        assert torch.allclose(first_copy(two).pooled, one.pooled, atol=1e-6)
    assert torch.equal(stacked["labels"], torch.cat([batch["labels"], batch["labels"]]))


def test_rdrop_in_params():
    p = parse_params(deep_merge(default_params_dict(), {"loss": {"rdrop": {"sst": 1.0}}}))
    assert p.loss.rdrop == {"sst": 1.0}
    assert parse_params(default_params_dict()).loss.rdrop == {}


@pytest.mark.parametrize("rdrop,expected", [
    ({"sst": -0.5}, "loss.rdrop: alpha must be a finite number >= 0"),
    ({"sst": math.inf}, "loss.rdrop: alpha must be a finite number >= 0"),
    ({"nli": 1.0}, "loss.rdrop: unknown task(s) nli; tasks: sst, para, sts"),
    ({"sts": 1.0}, "loss.rdrop: sts is a regression task (no class distributions to "
                   "compare); classification tasks: sst, para"),
])
def test_invalid_rdrop_says_what_is_valid(rdrop, expected):
    with pytest.raises(UserError) as err:
        parse_params(deep_merge(default_params_dict(), {"loss": {"rdrop": rdrop}}))
    assert expected in str(err.value)
