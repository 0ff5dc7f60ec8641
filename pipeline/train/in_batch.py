"""In-batch negatives for a siamese binary pair task (``loss.in_batch_negatives``).

The multiple negatives ranking loss (Henderson et al. 2017, "Efficient Natural Language
Response Suggestion for Smart Reply", arXiv 1705.00652; sentence-transformers'
``MultipleNegativesRankingLoss``). The default encoder, all-MiniLM-L6-v2, was trained with
this kind of objective (its model card: the cosine of every pair of the batch, cross-entropy
against the true pairs, at batches of 1,024; Quora question triplets among its data), so here
it continues the encoder's own objective beside the pair head. Every positive pair
(a_i, b_i) of the batch (a Quora duplicate) is a classification of b_i among all the batch's
second sentences b_1..b_B,

    L = mean over positive rows i of  -log softmax_j(scale * cos(a_i, b_j))[i]

with ``scale`` 20 (sentence-transformers' default; a temperature of 0.05, as SimCSE's).
The pair head's cross-entropy sees each pair alone; this term also pushes a duplicate's two
questions closer than either is to the batch's other questions, which is the geometry a
cosine head thresholds.

Deviations, stated: the candidates are every row's second sentence, the non-duplicate
rows' included (sentence-transformers would be given the duplicate pairs only; here the
batch is the para task's, and its non-duplicates serve as ordinary negatives); only the
first sentence anchors (sentence-transformers' default, not its symmetric variant); a batch
without a positive row adds nothing. Under data-parallel training the candidates are each
rank's own rows (sentence-transformers' default; its ``gather_across_devices`` is not done
here). The same question in two rows of a batch makes a false negative; with
length-bucketed batches of 16 out of 35k pairs this is rare and is not filtered. The loss
reads the encoder's pooled vectors, the ones a ``cosine`` head compares (a
``projected_cosine`` head's projection is left out).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def in_batch_negatives_loss(u: torch.Tensor, v: torch.Tensor, positive: torch.Tensor,
                            scale: float) -> torch.Tensor:
    """The loss above from the pooled vectors ``u`` (B, H) and ``v`` (B, H) of a batch's two
    sides and its labels (``positive``: nonzero marks a duplicate); float32 throughout."""
    anchors = positive.nonzero().squeeze(-1)
    if anchors.numel() == 0:
        return u.new_zeros((), dtype=torch.float32)
    a = F.normalize(u[anchors].float(), dim=-1)
    b = F.normalize(v.float(), dim=-1)
    return F.cross_entropy(scale * a @ b.T, anchors)
