"""Loss combinations: PCGrad's projection against hand-computed values, uncertainty weights
as optimizer parameters, and which tasks a step draws."""

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.config import LossConfig, TrainConfig
from pipeline.data.batching import collate
from pipeline.model.adapters import adapter_task
from pipeline.train.combine import (
    COMBINERS,
    BackwardContext,
    build_combiner,
    project_conflicting,
    split_parameters,
)
from pipeline.train.loop import make_optimizer, task_loss
from tests.unit.microtrain import micro_data, micro_model

TYPES = {"a": "classification", "b": "regression"}


def test_projection_of_conflicting_gradients_by_hand():
    g1, g2 = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])  # g1 . g2 = -1 < 0
    p1, p2 = project_conflicting([g1, g2], [[1], [0]])
    # g1 - (g1.g2 / |g2|^2) g2 = [1, 0] + 0.5 [-1, 1];  g2 - (g2.g1 / |g1|^2) g1 = [-1, 1] + [1, 0]
    assert torch.allclose(p1, torch.tensor([0.5, 0.5]))
    assert torch.allclose(p2, torch.tensor([0.0, 1.0]))
    assert torch.dot(p1, g2) == pytest.approx(0.0) and torch.dot(p2, g1) == pytest.approx(0.0)


def test_non_conflicting_gradients_are_unchanged():
    g1, g2 = torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0])
    p1, p2 = project_conflicting([g1, g2], [[1], [0]])
    assert torch.equal(p1, g1) and torch.equal(p2, g2)


def _toy(g1: list[float], g2: list[float]):
    """Shared w (2,) and one head scalar per task; loss_i = (g_i . w) * head_i, heads = 1."""
    w = nn.Parameter(torch.zeros(2))
    heads = {"a": nn.Parameter(torch.ones(())), "b": nn.Parameter(torch.ones(()))}
    losses = {"a": torch.dot(torch.tensor(g1), w) * heads["a"],
              "b": torch.dot(torch.tensor(g2), w) * heads["b"] + heads["b"] ** 2}
    ctx = BackwardContext([w], list(heads.values()), 1.0, None, np.random.default_rng(0))
    return w, heads, losses, ctx


def test_pcgrad_combiner_projects_shared_and_keeps_head_gradients():
    w, heads, losses, ctx = _toy([1.0, 0.0], [-1.0, 1.0])
    build_combiner("pcgrad", TYPES, {}).backward(losses, ctx)
    assert torch.allclose(w.grad, torch.tensor([0.5, 1.5]))  # [0.5, 0.5] + [0, 1]
    # Heads: d/dh_a (g1.w) h_a = g1.w = 0 at w = 0; d/dh_b of h_b^2 = 2 (their own gradients).
    assert heads["a"].grad == pytest.approx(0.0) and heads["b"].grad == pytest.approx(2.0)


def test_pcgrad_equals_sum_without_conflict():
    w, _, losses, ctx = _toy([1.0, 0.0], [1.0, 1.0])
    build_combiner("pcgrad", TYPES, {}).backward(losses, ctx)
    w2, _, losses2, ctx2 = _toy([1.0, 0.0], [1.0, 1.0])
    build_combiner("sum", TYPES, {}).backward(losses2, ctx2)
    assert torch.allclose(w.grad, torch.tensor([2.0, 1.0])) and torch.allclose(w.grad, w2.grad)


def test_weighted_and_sum_values():
    losses = {"a": torch.tensor(1.0), "b": torch.tensor(3.0)}
    assert float(build_combiner("sum", TYPES, {}).combine(losses)) == 4.0
    assert float(build_combiner("weighted", TYPES, {"b": 0.5}).combine(losses)) == 2.5


def test_uncertainty_weights_are_optimizer_parameters_and_learn():
    model = micro_model()
    comb = build_combiner("uncertainty", {t: s.type for t, s in model.tasks.items()}, {})
    opt = make_optimizer(model, comb, TrainConfig(lr=0.1))
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    assert all(id(p) in in_opt for p in comb.log_vars.values())
    # At s = 0 the loss is L (classification) or L/2 (regression); a step moves s.
    losses = {"single": torch.tensor(2.0), "reg": torch.tensor(2.0)}
    assert float(comb.combine(losses).detach()) == pytest.approx(2.0 + 1.0)
    comb.combine(losses).backward()
    opt.step()
    assert float(comb.log_vars["single"].detach()) > 0  # high loss: larger variance


@pytest.mark.parametrize("name,all_tasks", [("sampled", False),
                                            ("sum", True), ("weighted", True),
                                            ("pcgrad", True), ("uncertainty", True)])
def test_which_tasks_a_step_draws(name, all_tasks):
    comb = COMBINERS[name](TYPES, {})
    assert comb.step_tasks("b") == (["a", "b"] if all_tasks else ["b"])
    assert LossConfig(combine=name).combine == name


def _flat_grad(loss: torch.Tensor, params: list[nn.Parameter]) -> torch.Tensor:
    gs = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                      for g, p in zip(gs, params, strict=True)])


@pytest.mark.parametrize("adapter", ["lora", "pal_lora", "pal"])
def test_pcgrad_leaves_a_tasks_adapter_gradient_alone_on_a_conflict(adapter):
    """Adapters inside the encoder belong to one task: PCGrad projects only the encoder's own
    weights, so a task's adapter gradient is its plain gradient even when the tasks' encoder
    gradients conflict."""
    torch.manual_seed(0)
    model = micro_model(dropout=0.0, adapter=adapter, adapter_dropout=0.0)
    for name, p in model.named_parameters():
        if adapter_task(name) is not None:  # off the zero init, so every adapter weight moves
            nn.init.normal_(p, std=0.3)
    comb = build_combiner("pcgrad", {t: s.type for t, s in model.tasks.items()}, {})
    shared, task_only = split_parameters(model, comb)
    names = {id(p): n for n, p in model.named_parameters()}
    data = micro_data()
    losses = {t: task_loss(model, t, collate(data[t], np.arange(8), 0, t == "reg"))
              for t in ("single", "pair")}
    if torch.dot(_flat_grad(losses["single"], shared), _flat_grad(losses["pair"], shared)) > 0:
        losses["pair"] = -losses["pair"]  # make the encoder gradients conflict
    own = [p for n, p in model.named_parameters() if adapter_task(n) == "single"]
    expected = torch.autograd.grad(losses["single"], own, retain_graph=True)
    plain_encoder = _flat_grad(losses["single"] + losses["pair"], shared)
    comb.backward(losses, BackwardContext(shared, task_only, 1.0, None,
                                          np.random.default_rng(0)))
    merged = torch.cat([p.grad.reshape(-1) for p in shared])
    assert not torch.allclose(merged, plain_encoder)  # the conflict was projected
    for p, g in zip(own, expected, strict=True):
        assert torch.allclose(p.grad, g, atol=1e-7), names[id(p)]
    assert not any(adapter_task(names[id(p)]) for p in shared)
