"""SMART regularisation (Jiang et al., 2020): smoothness-inducing adversarial term + Bregman
proximal point term, added to each task's loss (``loss.smart``).

* Smoothness: perturb the input word embeddings by delta (||delta||_inf <= eps), take one
  normalised ascent step on the divergence between f(x + delta) and f(x), and penalise that
  divergence: symmetric KL for classification, squared error for regression. It asks the model
  to be flat in a small ball around each input, which curbs overfitting of small tasks.
* Bregman proximal point: a teacher copy of the model, an exponential moving average of the
  weights (momentum ``ema_momentum``), and a penalty mu * divergence(f(x), f_teacher(x)) that
  keeps each update close to where the model has been.

Because the terms are added per task before the losses are combined, SMART composes with every
``loss.combine``, pcgrad included (the projection sees each task's regularised loss).
The model is run from ``inputs_embeds`` through ``MultitaskModel.forward(..., embeds=...)``,
the same forward pass as training (adapters, cross encoding and every head included).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from pipeline.config import SmartConfig
from pipeline.model.multitask import MultitaskModel


def word_embeddings(model: MultitaskModel,
                    batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The word-embedding lookup of each sequence in the batch, keyed by column prefix."""
    emb = model.encoder.get_input_embeddings()
    prefixes = ["a_", "b_"] if "a_input_ids" in batch else [""]
    return {p: emb(batch[f"{p}input_ids"]) for p in prefixes}


def forward_embeds(model: MultitaskModel, task: str, batch: dict[str, torch.Tensor],
                   embeds: dict[str, torch.Tensor]) -> torch.Tensor:
    """``model(task, batch)`` computed from given word embeddings instead of token ids."""
    return model(task, batch, embeds=embeds)


def _kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(p || q), batch mean."""
    return F.kl_div(F.log_softmax(q_logits.float(), -1), F.log_softmax(p_logits.float(), -1),
                    reduction="batchmean", log_target=True)


def divergence(regression: bool, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Symmetric KL (classification logits) or squared error (regression scores)."""
    if regression:
        return F.mse_loss(a.float(), b.float())
    return _kl(a, b) + _kl(b, a)


def smoothness(model: MultitaskModel, task: str, batch: dict[str, torch.Tensor],
               clean: torch.Tensor, cfg: SmartConfig) -> torch.Tensor:
    """The adversarial smoothness term R_s (not yet multiplied by lambda_s)."""
    regression = model.tasks[task].type == "regression"
    with torch.no_grad():
        base = {k: v.detach() for k, v in word_embeddings(model, batch).items()}
    noise = {k: (torch.randn_like(v) * cfg.eps).requires_grad_() for k, v in base.items()}
    adv = forward_embeds(model, task, batch, {k: base[k] + noise[k] for k in base})
    grads = torch.autograd.grad(divergence(regression, adv, clean.detach()), list(noise.values()),
                                allow_unused=True)
    delta = {}
    for (k, n), g in zip(noise.items(), grads, strict=True):
        step = torch.zeros_like(n) if g is None else g / g.abs().amax().clamp_min(1e-12)
        delta[k] = (n.detach() + cfg.step_size * step).clamp(-cfg.eps, cfg.eps)
    embeds = word_embeddings(model, batch)
    adv = forward_embeds(model, task, batch, {k: embeds[k] + delta[k] for k in embeds})
    if regression:
        return divergence(True, adv, clean)
    return _kl(adv, clean.detach()) + _kl(clean, adv.detach())


class Smart:
    """Holds the EMA teacher; ``penalty`` gives lambda_s R_s + mu R_b for one task's batch."""

    def __init__(self, cfg: SmartConfig, model: MultitaskModel) -> None:
        self.cfg = cfg
        self.teacher: MultitaskModel | None = None
        if cfg.mu > 0:
            self.teacher = copy.deepcopy(model).eval()
            for p in self.teacher.parameters():
                p.requires_grad_(False)

    def penalty(self, model: MultitaskModel, task: str, batch: dict[str, torch.Tensor],
                clean: torch.Tensor) -> torch.Tensor:
        total = self.cfg.lambda_s * smoothness(model, task, batch, clean, self.cfg)
        if self.teacher is not None:
            with torch.no_grad():
                target = self.teacher(task, batch)
            total = total + self.cfg.mu * divergence(model.tasks[task].type == "regression",
                                                     clean, target)
        return total

    @torch.no_grad()
    def update_teacher(self, model: MultitaskModel) -> None:
        """theta_teacher <- m theta_teacher + (1 - m) theta, after each optimizer step."""
        if self.teacher is None:
            return
        m = self.cfg.ema_momentum
        for t, s in zip(self.teacher.state_dict().values(), model.state_dict().values(),
                        strict=True):
            if t.is_floating_point():
                t.mul_(m).add_(s.detach(), alpha=1 - m)
            else:
                t.copy_(s)
