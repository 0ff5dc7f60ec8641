"""SMART: the embedding-path forward matches the model, the smoothness term is positive for a
non-smooth model and zero without perturbation, and enabling it changes training."""

import numpy as np
import torch

from pipeline.config import LossConfig, SmartConfig
from pipeline.data.batching import collate
from pipeline.train.loop import fit
from pipeline.train.smart import Smart, forward_embeds, smoothness, word_embeddings
from tests.unit.microtrain import micro_cfg, micro_data, micro_model, weights

IN_OVERALL = {"single", "pair", "reg"}


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


def _train(loss: LossConfig) -> dict[str, torch.Tensor]:
    model = micro_model()
    fit(model, micro_data(), micro_data(16, 1), cfg=micro_cfg(batches_per_epoch=3),
        sampler="round_robin", seed=0, pad_id=0, in_overall=IN_OVERALL, loss_cfg=loss)
    return weights(model)


def test_smart_changes_training_and_composes_with_pcgrad():
    on = {"enabled": True, "eps": 1e-2, "step_size": 1e-2, "lambda_s": 10.0}
    for combine in ("sampled", "pcgrad"):
        plain = _train(LossConfig(combine=combine))
        smart = _train(LossConfig(combine=combine, smart=on))
        diff = max(float((plain[k] - smart[k]).abs().max()) for k in plain)
        assert diff > 1e-6, combine
