"""Adapter parameter counts match their formulas (BERT-base shape, built on the meta device)."""

import pytest
import torch
from transformers import BertConfig, BertModel

from pipeline.config import ModelConfig
from pipeline.model.multitask import MultitaskModel, TaskSpec

TASKS = [TaskSpec(n, "classification", False, 2, "linear", 0.0, 5.0, "single", 0.1)
         for n in ("sst", "para", "sts", "cfimdb")]
D_M, LAYERS = 768, 12


def bert_base_shaped(adapter: str, **kw) -> MultitaskModel:
    cfg = BertConfig(hidden_size=D_M, num_hidden_layers=LAYERS, num_attention_heads=12,
                     intermediate_size=3072)
    with torch.device("meta"):  # shapes only, no weights
        encoder = BertModel(cfg, add_pooling_layer=False)
        return MultitaskModel(encoder, TASKS, ModelConfig(adapter=adapter, **kw), "bert-base")


def test_pal_adds_the_papers_count_per_task():
    report = bert_base_shaped("pal", pal_size=204).param_report()
    per_task = 2 * D_M * 204 + LAYERS * 3 * 204**2
    assert per_task == 1_811_520
    assert report["adapters"] == {t.name: per_task for t in TASKS}
    assert report["adapters_total"] == len(TASKS) * per_task


def test_pal_default_size_is_204_for_hidden_768():
    assert bert_base_shaped("pal").param_report()["adapters"]["sst"] == 1_811_520


@pytest.mark.parametrize("rank", [2, 10, 100])
def test_lora_and_pal_lora_add_what_their_rank_implies(rank):
    lora = bert_base_shaped("lora", adapter_rank=rank).param_report()
    assert lora["adapters"]["sst"] == LAYERS * 3 * (D_M * rank + rank * D_M)
    pal_lora = bert_base_shaped("pal_lora", adapter_rank=rank).param_report()
    assert pal_lora["adapters"]["para"] == LAYERS * (D_M * rank + rank * D_M)
    plain = bert_base_shaped("none").param_report()
    assert lora["encoder"] == pal_lora["encoder"] == plain["encoder"]
    assert lora["total"] == plain["total"] + len(TASKS) * lora["adapters"]["sst"]


def test_lora_adapts_only_its_targets():
    """The SMARTer report adapted W_q and W_k: two of the three projections per layer."""
    model = bert_base_shaped("lora", adapter_rank=4, lora_targets=["query", "key"])
    assert model.param_report()["adapters"]["sst"] == LAYERS * 2 * (D_M * 4 + 4 * D_M)
    adapted = {n.split(".attention.self.")[1].split(".")[0] for n, _ in model.named_parameters()
               if "task_adapters" in n}
    assert adapted == {"query", "key"}
