"""Every valid head x encoding x pooling x adapter x freeze combination trains and round-trips.

A tiny BERT (hidden 32, 2 layers, vocabulary 60) keeps the ~460 combinations fast. The model
has the task under test ("a") and a single-sentence task ("b"), so adapter routing can be
checked: a step on b must leave a's adapters untouched.

The default run trains a pairwise subset: every value of each factor meets every value of
every other factor in some combination (an interaction between two factors is what breaks a
combination in practice). The rest of the product is marked ``exhaustive`` (and ``slow``),
which pytest deselects unless ``-m`` asks for it: ``pytest -m exhaustive`` runs them.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from transformers import BertConfig, BertModel

from pipeline.config import ModelConfig
from pipeline.model.adapters import ADAPTERS, adapter_task, is_adapter_param
from pipeline.model.freeze import apply_freeze, is_encoder_weight, param_groups
from pipeline.model.heads import HEADS
from pipeline.model.multitask import MultitaskModel, TaskSpec
from pipeline.model.pooling import POOLINGS
from pipeline.names import head_problem
from pipeline.train.loop import task_loss

ENCODINGS = ("single", "siamese", "cross")
FREEZES = ("full", "frozen", "two_stage")


def task_for(head: str, encoding: str) -> TaskSpec | None:
    """A task of the given encoding that ``head`` fits (regression preferred for pairs)."""
    options = ([("regression", 1), ("classification", 2)] if encoding != "single"
               else [("classification", 3), ("classification", 2)])
    for kind, out in options:
        if head_problem(head, kind, out if kind == "classification" else 2,
                        encoding == "siamese") is None:
            return TaskSpec("a", kind, encoding != "single", out, head, 0.0, 5.0, encoding, 0.0)
    return None


COMBOS = [
    (h, e, p, a, f)
    for h, e, p, a, f in itertools.product(HEADS, ENCODINGS, POOLINGS, ADAPTERS, FREEZES)
    if task_for(h, e) is not None
    # a parameter-free head on a frozen encoder without adapters has nothing to train
    and not (h == "relu_cos5" and a == "none" and f in ("frozen", "two_stage"))
]

Combo = tuple[str, ...]


def value_pairs(combo: Combo) -> set[tuple[int, str, int, str]]:
    """(factor i, its value, factor j, its value) for every two factors of ``combo``."""
    return {(i, combo[i], j, combo[j]) for i, j in itertools.combinations(range(len(combo)), 2)}


def pairwise(combos: list[Combo]) -> list[Combo]:
    """A small subset of ``combos`` holding every value pair that any of them holds: greedily
    the combination covering the most pairs not yet covered (the first on ties)."""
    uncovered = set().union(*map(value_pairs, combos))
    chosen: list[Combo] = []
    while uncovered:
        best = max(combos, key=lambda c: len(value_pairs(c) & uncovered))
        chosen.append(best)
        uncovered -= value_pairs(best)
    return chosen


PAIRWISE = set(pairwise(COMBOS))


def tiny_encoder(seed: int = 0) -> BertModel:
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0)
    return BertModel(cfg, add_pooling_layer=False)


def batch_for(spec: TaskSpec, n: int = 8, t: int = 9) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = lambda: torch.randint(5, 60, (n, t), generator=g)  # noqa: E731
    mask = torch.ones(n, t, dtype=torch.long)
    mask[: n // 2, t - 3 :] = 0  # some padding
    if spec.encoding == "siamese":
        batch = {"a_input_ids": ids(), "a_attention_mask": mask, "b_input_ids": ids(),
                 "b_attention_mask": mask.flip(0)}
    else:
        batch = {"input_ids": ids(), "attention_mask": mask}
        if spec.encoding == "cross":
            batch["token_type_ids"] = (torch.arange(t) >= t // 2).long().expand(n, t)
    if spec.type == "regression":
        batch["labels"] = torch.rand(n, generator=g) * 5
    else:
        batch["labels"] = torch.randint(0, spec.output_size, (n,), generator=g)
    return batch


def snapshot(model: torch.nn.Module, keep) -> dict[str, torch.Tensor]:  # type: ignore[no-untyped-def]
    return {n: p.detach().clone() for n, p in model.named_parameters() if keep(n)}


def changed(before: dict[str, torch.Tensor], model: torch.nn.Module) -> set[str]:
    params = dict(model.named_parameters())
    return {n for n, v in before.items() if not torch.equal(v, params[n])}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: threading overhead would dominate."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_the_pairwise_subset_holds_every_value_pair_of_the_product():
    pairs = set().union(*map(value_pairs, COMBOS))
    assert set().union(*map(value_pairs, PAIRWISE)) == pairs
    for factor, values in enumerate((HEADS, ENCODINGS, POOLINGS, ADAPTERS, FREEZES)):
        assert {c[factor] for c in PAIRWISE} == set(values)
    assert len(PAIRWISE) < len(COMBOS) / 5


@pytest.mark.parametrize("head,encoding,pooling,adapter,freeze", [
    pytest.param(*c, marks=() if c in PAIRWISE else (pytest.mark.exhaustive, pytest.mark.slow))
    for c in COMBOS])
def test_combination_trains_routes_and_round_trips(tmp_path, head, encoding, pooling, adapter,
                                                   freeze):
    spec_a = task_for(head, encoding)
    spec_b = TaskSpec("b", "classification", False, 2, "linear", 0.0, 5.0, "single", 0.0)
    cfg = ModelConfig(pooling=pooling, dropout=0.0, adapter=adapter, adapter_rank=4,
                      pal_size=8, mlp_hidden=16, freeze=freeze, two_stage_epochs=1)
    model = MultitaskModel(tiny_encoder(), [spec_a, spec_b], cfg, "tiny")
    opt = torch.optim.AdamW(param_groups(model, 3e-3, 3e-3, 0.01), lr=3e-3)
    batch_a, batch_b = batch_for(spec_a), batch_for(spec_b)

    def steps(task: str, batch: dict[str, torch.Tensor], n: int) -> None:
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            task_loss(model, task, batch).backward()
            opt.step()

    apply_freeze(model, freeze, epoch=1, two_stage_epochs=1)
    encoder_before = snapshot(model, is_encoder_weight)
    with torch.no_grad():
        start = task_loss(model.eval(), "a", batch_a).item()
    model.train()
    steps("a", batch_a, 5)
    with torch.no_grad():
        end = task_loss(model.eval(), "a", batch_a).item()
    assert end < start, f"loss did not go down: {start:.4f} -> {end:.4f}"
    moved = changed(encoder_before, model)
    if freeze in ("frozen", "two_stage"):
        assert not moved, f"frozen encoder weights changed: {sorted(moved)[:3]}"
    else:
        assert moved

    # A batch of task b leaves task a's adapters (and head) untouched.
    a_only = snapshot(model, lambda n: adapter_task(n) == "a" or n.startswith("heads.a."))
    b_adapters = snapshot(model, lambda n: adapter_task(n) == "b")
    model.train()
    steps("b", batch_b, 1)
    assert not changed(a_only, model)
    if adapter != "none":
        assert changed(b_adapters, model), "task b's adapters did not train on its batch"

    if freeze == "two_stage":  # the second stage trains the encoder too
        apply_freeze(model, freeze, epoch=2, two_stage_epochs=1)
        before = snapshot(model, is_encoder_weight)
        steps("a", batch_a, 1)
        assert changed(before, model)

    model.save(tmp_path / "m")
    loaded = MultitaskModel.load(tmp_path / "m")
    model.eval()
    with torch.no_grad():
        for task, batch in (("a", batch_a), ("b", batch_b)):
            inputs = {k: v for k, v in batch.items() if k != "labels"}
            assert torch.equal(model(task, inputs), loaded(task, inputs))
    report = loaded.param_report()
    assert report["total"] == sum(p.numel() for p in loaded.parameters())
    assert (report["adapters_total"] > 0) == (adapter != "none")


def test_adapter_params_are_marked_and_per_task():
    spec_a = TaskSpec("a", "classification", False, 2, "linear", 0.0, 5.0, "single", 0.0)
    spec_b = TaskSpec("b", "classification", False, 2, "linear", 0.0, 5.0, "single", 0.0)
    for adapter in ADAPTERS[1:]:
        model = MultitaskModel(tiny_encoder(), [spec_a, spec_b],
                               ModelConfig(adapter=adapter, pal_size=8), "tiny")
        names = [n for n, _ in model.named_parameters() if is_adapter_param(n)]
        assert names and {adapter_task(n) for n in names} == {"a", "b"}
