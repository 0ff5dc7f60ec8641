"""R-Drop (Liang et al. 2021, "R-Drop: Regularized Dropout for Neural Networks", eq. 1-3):
each batch of a task named in ``loss.rdrop`` runs through the model twice, so dropout draws
two sub-models, and the loss adds the symmetric KL divergence between their two predicted
distributions to the two cross-entropies:

    paper:  L = CE(p1) + CE(p2) + alpha / 2 * (KL(p1 || p2) + KL(p2 || p1))
    here:   L = [CE(p1) + CE(p2)] / 2 + alpha / 4 * (KL(p1 || p2) + KL(p2 || p1))

Deviation, in scale only: the paper's loss is halved, so a task with R-Drop keeps the size of
one cross-entropy beside the other tasks' losses in the shared AdamW moments and gradient
clip; the ratio of the KL term to the cross-entropy is the paper's, so ``alpha`` means what
it means there (the paper tunes it per task). Both terms are batch means,
as the pipeline's other losses. Classification tasks only: the paper's consistency term is
between output distributions, and a regression head predicts none.

Both dropout draws come from one pass over the batch stacked on itself ([x; x];
``pipeline.data.batching.stack_twice``): dropout masks are drawn per element, so each copy of
a row goes through its own sub-model, as in two separate passes (the paper's code runs two),
and the encoder runs fewer, larger matrix products (what it saves is in
``benchmarks/results.md``, section ``loss-cost``).

Why it is here: sst over-fits within a few passes over its 8,544 rows
(``benchmarks/sst-single-task.md``); R-Drop is a regulariser aimed at fine-tuning on such
small classification sets, at the cost of twice the rows in the forward and backward pass of
the steps of the tasks it names (and nothing else).
"""

from __future__ import annotations

import torch

from pipeline.model.heads import Encoded


def symmetric_kl(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """KL(p_a || p_b) + KL(p_b || p_a) of the softmax distributions, summed over the classes
    and averaged over the batch; computed in float32 (the logits may come from bf16)."""
    log_a = logits_a.float().log_softmax(-1)
    log_b = logits_b.float().log_softmax(-1)
    kl_ab = (log_a.exp() * (log_a - log_b)).sum(-1)
    kl_ba = (log_b.exp() * (log_b - log_a)).sum(-1)
    return (kl_ab + kl_ba).mean()


def rdrop_loss(loss_a: torch.Tensor, loss_b: torch.Tensor, logits_a: torch.Tensor,
               logits_b: torch.Tensor, alpha: float) -> torch.Tensor:
    """The halved R-Drop loss above, from the two passes' own task losses (cross-entropy,
    label smoothing included when the task has it) and their logits."""
    return (loss_a + loss_b) / 2 + alpha / 4 * symmetric_kl(logits_a, logits_b)


def first_copy(encoded: Encoded) -> Encoded:
    """The rows of the first copy of a ``stack_twice`` batch."""
    n = encoded.pooled.shape[0] // 2
    return Encoded(encoded.states[:n], encoded.mask[:n], encoded.pooled[:n])
