"""``loss.label_smoothing``: Szegedy et al. 2016's smoothed cross-entropy target, per
classification task, from the param through the training step."""

import copy

import pytest
import torch

from pipeline.config import LossConfig, parse_params
from pipeline.data.batching import collate
from pipeline.errors import UserError
from pipeline.model.multitask import TaskSpec
from pipeline.precision import PRECISIONS
from pipeline.train import loop
from tests.conftest import deep_merge, default_params_dict
from tests.unit.microtrain import micro_cfg, micro_data, micro_model

CPU = torch.device("cpu")
FIVE = TaskSpec("sst", "classification", False, 5, "linear", 0.0, 4.0)


def test_the_smoothed_target_is_the_papers_mixture():
    """Loss = -sum_k q_k log p_k with q = (1 - eps) one-hot + eps / K (section 7 of the
    paper), computed by hand; eps 0 is the plain cross-entropy."""
    logits = torch.tensor([[2.0, 0.5, -1.0, 0.0, 1.0], [0.0, 3.0, 0.1, -2.0, 0.3]])
    gold = torch.tensor([0, 3])
    eps = 0.1
    target = torch.full((2, 5), eps / 5)
    target[torch.arange(2), gold] += 1 - eps
    by_hand = -(target * logits.log_softmax(-1)).sum(-1).mean()
    assert float(loop.output_loss(FIVE, logits, gold, label_smoothing=eps)) == pytest.approx(
        float(by_hand), rel=1e-6)
    plain = float(torch.nn.functional.cross_entropy(logits, gold))
    assert float(loop.output_loss(FIVE, logits, gold)) == pytest.approx(plain, rel=1e-6)
    # A smoothed target can no longer be matched by ever-larger logits: the loss of a
    # confidently right prediction grows with eps.
    sure = torch.tensor([[20.0, 0.0, 0.0, 0.0, 0.0]])
    assert float(loop.output_loss(FIVE, sure, gold[:1], label_smoothing=eps)) > 1.0 > float(
        loop.output_loss(FIVE, sure, gold[:1]))


def test_the_training_step_smooths_only_the_named_task():
    """Through ``build``: the sampled task named in ``loss.label_smoothing`` gets the
    smoothed loss of the very batch the step drew; another classification task keeps the
    plain one."""
    model = micro_model(dropout=0.0)
    cfg = micro_cfg()
    loop.prepare_model(model, cfg, CPU, 0)
    _, step, _ = loop.build(model, micro_data(), cfg=cfg,
                            loss_cfg=LossConfig(label_smoothing={"single": 0.3}),
                            sampler="round_robin", seed=0, pad_id=0,
                            precision=PRECISIONS["fp32"], device=CPU,
                            dist_ctx=loop.dist.SINGLE)
    streams = copy.deepcopy(step.batches.streams)
    for task, eps in (("single", 0.3), ("pair", 0.0)):
        got, _ = step.losses(task)
        batch = collate(step.batches.sets[task], next(streams[task]), 0, False)
        out = model(task, batch)
        expected = loop.output_loss(model.tasks[task], out, batch["labels"], label_smoothing=eps)
        assert float(got[task].detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
        unsmoothed = loop.output_loss(model.tasks[task], out, batch["labels"])
        assert (float(got[task].detach()) != pytest.approx(float(unsmoothed.detach()))) == (
            eps > 0), task


def test_a_smoothed_task_in_params():
    p = parse_params(deep_merge(default_params_dict(),
                                {"loss": {"label_smoothing": {"sst": 0.1, "para": 0.0}}}))
    assert p.loss.label_smoothing == {"sst": 0.1, "para": 0.0}
    assert parse_params(default_params_dict()).loss.label_smoothing == {}


@pytest.mark.parametrize("smoothing,expected", [
    ({"sst": 1.0}, "label smoothing must be in [0, 1)"),
    ({"sst": -0.1}, "label smoothing must be in [0, 1)"),
    ({"nli": 0.1}, "loss.label_smoothing: unknown task(s) nli; tasks: sst, para, sts"),
    ({"sts": 0.1}, "loss.label_smoothing: sts is a regression task (no classes to smooth "
                   "over); classification tasks: sst, para"),
])
def test_invalid_smoothing_says_what_is_valid(smoothing, expected):
    with pytest.raises(UserError) as err:
        parse_params(deep_merge(default_params_dict(), {"loss": {"label_smoothing": smoothing}}))
    assert expected in str(err.value)
