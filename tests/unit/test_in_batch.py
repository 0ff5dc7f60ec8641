"""``loss.in_batch_negatives``: the multiple negatives ranking loss (Henderson et al. 2017)
on a siamese binary pair task, from the formula through the training step to the params
check."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from pipeline.config import LossConfig, parse_params
from pipeline.data.batching import collate
from pipeline.errors import UserError
from pipeline.precision import PRECISIONS
from pipeline.train import loop
from pipeline.train.in_batch import in_batch_negatives_loss
from tests.conftest import deep_merge, default_params_dict
from tests.unit.microtrain import micro_cfg, micro_data, micro_model

CPU = torch.device("cpu")


def test_the_loss_by_hand():
    """Each positive row i: -log of the softmax over j of scale * cos(u_i, v_j) at j = i;
    the mean over the positive rows; every row's v is a candidate, the negatives' too."""
    torch.manual_seed(0)
    u, v = torch.randn(5, 4), torch.randn(5, 4)
    labels = torch.tensor([1, 0, 1, 1, 0])
    scale = 7.0
    terms = []
    for i in (0, 2, 3):
        sims = torch.stack([scale * F.cosine_similarity(u[i], v[j], dim=0) for j in range(5)])
        terms.append(-sims.log_softmax(0)[i])
    by_hand = torch.stack(terms).mean()
    got = in_batch_negatives_loss(u, v, labels, scale)
    assert float(got) == pytest.approx(float(by_hand), rel=1e-5)
    assert got.dtype == torch.float32
    assert in_batch_negatives_loss(u.bfloat16(), v.bfloat16(), labels, scale).dtype == \
        torch.float32


def test_the_loss_falls_as_duplicates_move_together():
    """Aligned duplicates rank first (a low loss); the same vectors with the second
    sentences shuffled rank last (a high one)."""
    u = torch.eye(4) * 3
    labels = torch.ones(4, dtype=torch.long)
    aligned = in_batch_negatives_loss(u, u + 0.01, labels, 20.0)
    shuffled = in_batch_negatives_loss(u, u[[1, 2, 3, 0]], labels, 20.0)
    assert float(aligned) < 1e-3
    assert float(shuffled) > math.log(4)


def test_a_batch_without_duplicates_adds_nothing():
    u, v = torch.randn(3, 4), torch.randn(3, 4)
    assert float(in_batch_negatives_loss(u, v, torch.zeros(3, dtype=torch.long), 20.0)) == 0.0


def _step(in_batch: dict[str, float], scale: float = 20.0):
    model = micro_model(dropout=0.0)
    cfg = micro_cfg()
    loop.prepare_model(model, cfg, CPU, 0)
    _, step, _ = loop.build(model, micro_data(), cfg=cfg,
                            loss_cfg=LossConfig(in_batch_negatives=in_batch,
                                                in_batch_scale=scale),
                            sampler="round_robin", seed=0, pad_id=0,
                            precision=PRECISIONS["fp32"], device=CPU,
                            dist_ctx=loop.dist.SINGLE)
    return model, step


def test_the_step_adds_the_weighted_term_to_the_named_task_only():
    """The named pair task's loss is its cross-entropy plus weight times the ranking loss of
    the very batch's pooled vectors; the other tasks keep their plain loss; gradients reach
    the encoder through both terms."""
    model, step = _step({"pair": 0.5}, scale=10.0)
    streams = copy.deepcopy(step.batches.streams)
    for task in ("pair", "single", "reg"):
        got, _ = step.losses(task)
        batch = collate(step.batches.sets[task], next(streams[task]), 0,
                        model.tasks[task].type == "regression")
        expected = loop.output_loss(model.tasks[task], model(task, batch), batch["labels"])
        if task == "pair":
            a, b = model.encode_inputs(task, batch)
            assert int(batch["labels"].sum()) > 0  # the term is not trivially 0
            expected = expected + 0.5 * in_batch_negatives_loss(a.pooled, b.pooled,
                                                                batch["labels"], 10.0)
        assert float(got[task].detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


def _grads(model: torch.nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters()
            if n.startswith(prefix) and p.grad is not None}


def test_the_term_moves_the_encoder_and_leaves_the_head_alone():
    """On the same batch from the same weights, the term changes the encoder's gradient and
    not the pair head's: it reads the encoder's sentence vectors, not the head."""
    grads = []
    for in_batch in ({}, {"pair": 1.0}):
        model, step = _step(in_batch)
        got, _ = step.losses("pair")
        got["pair"].backward()
        grads.append((_grads(model, "encoder."), _grads(model, "heads.pair.")))
    (enc_plain, head_plain), (enc_ranked, head_ranked) = grads
    assert head_plain and head_plain.keys() == head_ranked.keys()
    assert all(torch.allclose(head_plain[n], head_ranked[n]) for n in head_plain)
    assert any(not torch.allclose(enc_plain[n], enc_ranked[n]) for n in enc_plain)


def test_in_batch_negatives_in_params():
    p = parse_params(deep_merge(default_params_dict(),
                                {"loss": {"in_batch_negatives": {"para": 1.0},
                                          "in_batch_scale": 10}}))
    assert p.loss.in_batch_negatives == {"para": 1.0}
    assert p.loss.in_batch_scale == 10.0
    defaults = parse_params(default_params_dict()).loss
    assert defaults.in_batch_negatives == {} and defaults.in_batch_scale == 20.0


@pytest.mark.parametrize("loss,expected", [
    ({"in_batch_negatives": {"para": -1.0}},
     "loss.in_batch_negatives: the weight must be a finite number >= 0"),
    ({"in_batch_negatives": {"nli": 1.0}},
     "loss.in_batch_negatives: unknown task(s) nli; tasks: sst, para, sts"),
    ({"in_batch_negatives": {"sts": 1.0}},
     "loss.in_batch_negatives: sts is not a siamese binary pair task"),
    ({"in_batch_negatives": {"sst": 1.0}}, "tasks it fits: para"),
    ({"in_batch_scale": 0}, "in_batch_scale"),
])
def test_invalid_in_batch_negatives_say_what_is_valid(loss, expected):
    with pytest.raises(UserError) as err:
        parse_params(deep_merge(default_params_dict(), {"loss": loss}))
    assert expected in str(err.value)


def test_a_cross_encoded_pair_task_is_refused():
    """Cross-encoding has no sentence vectors to rank."""
    with pytest.raises(UserError) as err:
        parse_params(deep_merge(default_params_dict(),
                                {"model": {"pair_encoding": "cross"},
                                 "loss": {"in_batch_negatives": {"para": 1.0}}}))
    assert "para is not a siamese binary pair task" in str(err.value)
    assert "tasks it fits: none" in str(err.value)
