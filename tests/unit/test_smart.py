"""SMART (Jiang et al., 2020): the embedding-path forward matches the model; the smoothness
term is the paper's divergence (symmetric KL / squared error) at a perturbation found by one
inf-norm-normalised ascent step inside the eps ball; the penalty is lambda_s R_s + mu R_b; and
the training step adds it to each task's loss, whatever the loss combination."""

import copy

import numpy as np
import pytest
import torch

from pipeline.config import LossConfig, SmartConfig
from pipeline.data.batching import collate
from pipeline.precision import PRECISIONS
from pipeline.train import loop
from pipeline.train import smart as smart_module
from pipeline.train.smart import Smart, forward_embeds, smoothness, word_embeddings
from tests.unit.microtrain import micro_cfg, micro_data, micro_model, weights

CPU = torch.device("cpu")


def _batch(data, task):
    return collate(data[task], np.arange(8), 0, task == "reg")


def test_embedding_forward_matches_the_model():
    model, data = micro_model().eval(), micro_data()
    for task in ("single", "pair", "reg"):
        batch = _batch(data, task)
        with torch.no_grad():
            assert torch.allclose(forward_embeds(model, task, batch,
                                                 word_embeddings(model, batch)),
                                  model(task, batch), atol=1e-6)


def test_smoothness_positive_when_perturbed_and_zero_with_eps_zero():
    model, data = micro_model(dropout=0.0).eval(), micro_data()
    for task in ("single", "pair", "reg"):
        batch = _batch(data, task)
        clean = model(task, batch)
        big = smoothness(model, task, batch, clean, SmartConfig(eps=1.0, step_size=1.0))
        zero = smoothness(model, task, batch, clean, SmartConfig(eps=0.0))
        assert float(big.detach()) > 1e-6, task
        assert abs(float(zero.detach())) < 1e-7, task


def test_teacher_is_an_exponential_moving_average():
    model = micro_model()
    smart = Smart(SmartConfig(enabled=True, ema_momentum=0.5), model)
    before = weights(smart.teacher)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    smart.update_teacher(model)
    k = "encoder.embeddings.word_embeddings.weight"
    assert torch.allclose(smart.teacher.state_dict()[k], before[k] + 0.5)


def _paper_divergence(task: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Jiang et al. (2020), written out here rather than taken from the code under test:
    symmetric KL between the class distributions (summed over classes, mean over the batch)
    for classification; the squared error (mean over the batch) for regression."""
    if task == "reg":
        return ((a.float() - b.float()) ** 2).mean()
    p, q = a.float().log_softmax(-1), b.float().log_softmax(-1)
    return (p.exp() * (p - q) + q.exp() * (q - p)).sum(-1).mean()


@pytest.mark.parametrize("task", ["single", "pair", "reg"])
def test_the_adversarial_term_is_an_ascent_step_in_the_inf_norm_ball(monkeypatch, task):
    """The perturbation starts at noise, takes one step of ``step_size`` up the divergence's
    gradient normalised in inf-norm, is projected onto the eps ball, and the term is the
    paper's divergence at that point: larger than at the (projected) starting noise."""
    model, batch = micro_model(dropout=0.0).eval(), _batch(micro_data(), task)
    cfg = SmartConfig(eps=1e-3, step_size=1e-3)
    seen: list[dict[str, torch.Tensor]] = []
    forward = smart_module.forward_embeds

    def spy(m, t, b, embeds):  # type: ignore[no-untyped-def]
        seen.append({k: v.detach().clone() for k, v in embeds.items()})
        return forward(m, t, b, embeds)

    monkeypatch.setattr(smart_module, "forward_embeds", spy)
    clean = model(task, batch).detach()
    base = {k: v.detach() for k, v in word_embeddings(model, batch).items()}
    value = float(smoothness(model, task, batch, clean, cfg).detach())
    assert len(seen) == 2  # the noisy point, then the adversarial one
    noise = {k: (seen[0][k] - base[k]).requires_grad_() for k in base}
    delta = {k: seen[1][k] - base[k] for k in base}

    def term(perturbation: dict[str, torch.Tensor]) -> torch.Tensor:
        return _paper_divergence(task, forward(model, task, batch,
                                               {k: base[k] + perturbation[k] for k in base}),
                                 clean)

    grads = torch.autograd.grad(term(noise), list(noise.values()))
    for (k, n), g in zip(noise.items(), grads, strict=True):
        ascent = (n.detach() + cfg.step_size * g / g.abs().max()).clamp(-cfg.eps, cfg.eps)
        assert torch.allclose(delta[k], ascent, rtol=0, atol=1e-6), k
        assert float(delta[k].abs().max()) <= cfg.eps * (1 + 1e-4), k
    with torch.no_grad():
        at_delta = float(term(delta))
        at_start = float(term({k: n.detach().clamp(-cfg.eps, cfg.eps)
                               for k, n in noise.items()}))
    assert value == pytest.approx(at_delta, rel=1e-4, abs=1e-12)  # the paper's scale
    assert at_delta > at_start > 0


def test_penalty_is_lambda_times_smoothness_plus_mu_times_the_proximal_term():
    model, batch = micro_model(dropout=0.0).eval(), _batch(micro_data(), "single")
    cfg = SmartConfig(enabled=True, eps=1e-3, step_size=1e-3, lambda_s=7.0, mu=3.0)
    reg = Smart(cfg, model)
    assert reg.teacher is not None
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)  # the model moves away from its teacher (a copy of the start)
    clean = model("single", batch)
    torch.manual_seed(5)
    penalty = float(reg.penalty(model, "single", batch, clean).detach())
    torch.manual_seed(5)
    r_s = float(smoothness(model, "single", batch, clean, cfg).detach())
    with torch.no_grad():
        r_b = float(_paper_divergence("single", clean, reg.teacher("single", batch)))
    assert r_s > 0 and r_b > 0
    assert penalty == pytest.approx(7.0 * r_s + 3.0 * r_b, rel=1e-5)


class _Fixed:
    """A SMART stand-in whose penalty is a known constant, counting its calls."""

    def __init__(self, value: float) -> None:
        self.value, self.calls = value, 0

    def penalty(self, model, task, batch, clean):  # type: ignore[no-untyped-def]
        self.calls += 1
        return torch.tensor(self.value, requires_grad=True)


@pytest.mark.parametrize("combine", ["sampled", "pcgrad"])
def test_the_training_step_adds_the_penalty_to_each_task_loss(combine):
    """SMART composes with every combination (pcgrad included): each task's loss is its
    plain loss PLUS the penalty, before the combiner sees it."""
    model = micro_model(dropout=0.0)
    cfg = micro_cfg()
    loop.prepare_model(model, cfg, CPU, 0)
    _, step, _ = loop.build(model, micro_data(), cfg=cfg,
                            loss_cfg=LossConfig(combine=combine, smart={"enabled": True}),
                            sampler="round_robin", seed=0, pad_id=0,
                            precision=PRECISIONS["fp32"], device=CPU,
                            dist_ctx=loop.dist.SINGLE)
    streams = copy.deepcopy(step.batches.streams)
    step.smart = _Fixed(5.0)  # type: ignore[assignment]
    losses, _ = step.losses("single")
    tasks = ["single"] if combine == "sampled" else ["single", "pair", "reg"]
    assert list(losses) == tasks and step.smart.calls == len(tasks)
    for task in tasks:
        plain = collate(step.batches.sets[task], next(streams[task]), 0, task == "reg")
        expected = loop.output_loss(model.tasks[task], model(task, plain), plain["labels"])
        got, plain_loss = float(losses[task].detach()), float(expected.detach())
        assert got == pytest.approx(plain_loss + 5.0, rel=1e-6), task
