"""Layer-wise decreasing learning rate (``train.layer_lr_decay``, Sun et al. 2019): encoder
layer l of L trains at ``lr * decay ** (L - l)``, the embeddings at ``lr * decay ** L``, heads
at ``head_lr`` whatever the decay."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertModel

from pipeline.config import ModelConfig, TrainConfig
from pipeline.model.adapters import is_adapter_param
from pipeline.model.freeze import encoder_depth, layer_lr_scales, param_groups
from pipeline.model.multitask import MultitaskModel, TaskSpec
from pipeline.train.combine import build_combiner
from pipeline.train.loop import make_optimizer, make_scheduler, task_loss

LAYERS = 3


def tiny_model(adapter: str = "none") -> MultitaskModel:
    torch.manual_seed(0)
    enc = BertModel(BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=LAYERS,
                               num_attention_heads=2, intermediate_size=64,
                               max_position_embeddings=64), add_pooling_layer=False)
    spec = TaskSpec("a", "classification", False, 3, "linear", 0.0, 5.0, "single", 0.0)
    return MultitaskModel(enc, [spec], ModelConfig(adapter=adapter, adapter_rank=2), "tiny")


def lr_of(groups: list[dict], model: torch.nn.Module) -> dict[str, float]:
    by_id = {id(p): g["lr"] for g in groups for p in g["params"]}
    return {n: by_id[id(p)] for n, p in model.named_parameters()}


def test_depth_of_bert_weights():
    assert encoder_depth("encoder.embeddings.word_embeddings.weight") == 0
    assert encoder_depth("encoder.encoder.layer.0.attention.self.query.weight") == 1
    assert encoder_depth("encoder.encoder.layer.11.output.dense.bias") == 12
    assert encoder_depth("encoder.transformer.layer.5.ffn.lin1.weight") == 6  # DistilBERT
    assert encoder_depth("encoder.pooler.dense.weight") is None


def test_each_layer_gets_decay_to_the_power_of_its_distance_from_the_top():
    model = tiny_model()
    lrs = lr_of(param_groups(model, 1e-2, 1e-3, 0.01, layer_decay=0.5), model)
    for name, lr in lrs.items():
        if name.startswith("heads."):
            assert lr == 1e-3, name
        elif ".embeddings." in name:
            assert lr == pytest.approx(1e-2 * 0.5 ** LAYERS), name
        else:
            layer = int(name.split(".layer.")[1].split(".")[0])
            assert lr == pytest.approx(1e-2 * 0.5 ** (LAYERS - 1 - layer)), name
    assert len(set(lrs.values())) == LAYERS + 2  # embeddings, each layer, heads


def test_adapters_inside_layers_keep_the_head_rate():
    model = tiny_model("lora")
    lrs = lr_of(param_groups(model, 1e-2, 1e-3, 0.01, layer_decay=0.5), model)
    adapters = [n for n in lrs if is_adapter_param(n)]
    assert len(adapters) == 2 * 3 * LAYERS and all(lrs[n] == 1e-3 for n in adapters)


def test_no_decay_keeps_the_four_groups_in_their_order():
    """Decay 1 is the old grouping exactly, so checkpoints saved before the option resume."""
    model = tiny_model()
    names = [g["name"] for g in param_groups(model, 1e-2, 1e-3, 0.01)]
    assert names == ["encoder", "encoder_no_decay", "heads_adapters", "heads_adapters_no_decay"]
    assert set(layer_lr_scales([n for n, _ in model.named_parameters()], 1.0).values()) == {1.0}


# The schedule is advanced into its warmup before the first optimizer step on purpose.
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step:UserWarning")
def test_the_schedule_keeps_the_ratios_and_a_step_moves_lower_layers_less():
    """Through the training loop's own optimizer and scheduler: two steps into the warmup the
    per-layer rates keep their ratios, and one AdamW step (whose first update has size ~lr per
    weight) moves the embeddings decay**L times as far as the top layer."""
    model = tiny_model()
    cfg = TrainConfig(lr=1e-3, head_lr=1e-3, layer_lr_decay=0.1, weight_decay=0.0,
                      warmup_ratio=0.5, epochs=1)
    opt = make_optimizer(model, build_combiner("sampled", {"a": "classification"}, {}), cfg)
    sched = make_scheduler(opt, cfg, steps_per_epoch=10)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ids = torch.randint(5, 60, (4, 7), generator=torch.Generator().manual_seed(1))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
             "labels": torch.tensor([0, 1, 2, 1])}
    sched.step()
    sched.step()  # partway through the warmup
    task_loss(model, "a", batch).backward()
    opt.step()
    top = f"encoder.encoder.layer.{LAYERS - 1}.output.dense.weight"
    emb = "encoder.embeddings.position_embeddings.weight"
    rates = lr_of(opt.param_groups, model)
    assert rates[emb] / rates[top] == pytest.approx(0.1 ** LAYERS)
    params = dict(model.named_parameters())
    moved = {n: (params[n] - before[n]).abs().max().item() for n in (top, emb)}
    assert moved[emb] / moved[top] == pytest.approx(0.1 ** LAYERS, rel=0.2)
