"""The e5 loss with late interaction trained in the same forward pass.

`PooledAndLateLoss` adds to MultipleNegativesRankingLoss (one mean-pooled vector per
text, in-batch negatives) the same ranking loss over MaxSim scores of the token states
that forward pass already computed: each question token finds its best match among the
passage's tokens, and the pair scores the mean of those best matches (ColBERT's
late interaction, qa/rerank/late.py serves it). So one model call per question gives
both the first stage's vector and the second stage's token vectors.

Only qa/training imports torch.
"""

from __future__ import annotations

import torch
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from torch import Tensor, nn


def maxsim(queries: Tensor, query_mask: Tensor, docs: Tensor, doc_mask: Tensor) -> Tensor:
    """[q, d] late-interaction scores of L2-normalised token states: per question token
    its best cosine among a passage's tokens, averaged over the question's tokens."""
    sims = torch.einsum("qid,pjd->qpij", queries, docs)  # [q, p, query tokens, doc tokens]
    sims = sims.masked_fill(~doc_mask.bool()[None, :, None, :], -1.0)
    best = sims.max(dim=3).values  # [q, p, query tokens]
    weights = query_mask.to(best.dtype)[:, None, :]
    return (best * weights).sum(2) / weights.sum(2).clamp(min=1.0)


def _tokens(out: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    return nn.functional.normalize(out["token_embeddings"], dim=-1), out["attention_mask"]


def _pad_to(tokens: Tensor, mask: Tensor, width: int) -> tuple[Tensor, Tensor]:
    extra = width - tokens.shape[1]
    if extra <= 0:
        return tokens, mask
    return nn.functional.pad(tokens, (0, 0, 0, extra)), nn.functional.pad(mask, (0, extra))


class PooledAndLateLoss(nn.Module):
    """MultipleNegativesRankingLoss on the pooled vectors + `late_weight` x the same loss on
    MaxSim scores (scaled by `late_scale`; MaxSim runs in a narrower range than cosines)."""

    def __init__(self, model, late_weight: float = 1.0, scale: float = 20.0, late_scale: float = 40.0):
        super().__init__()
        self.model = model
        self.pooled = MultipleNegativesRankingLoss(model, scale=scale)
        self.late_weight = late_weight
        self.late_scale = late_scale

    def forward(self, sentence_features, labels: Tensor) -> Tensor:
        outs = [self.model(features) for features in sentence_features]
        pooled = self.pooled.compute_loss_from_embeddings([o["sentence_embedding"] for o in outs], labels)
        queries, query_mask = _tokens(outs[0])
        docs = [_tokens(o) for o in outs[1:]]
        width = max(t.shape[1] for t, _ in docs)
        docs = [_pad_to(t, m, width) for t, m in docs]
        scores = maxsim(queries, query_mask, torch.cat([t for t, _ in docs]), torch.cat([m for _, m in docs]))
        targets = torch.arange(len(queries), device=scores.device)  # each question's own positive
        late = nn.functional.cross_entropy(self.late_scale * scores, targets)
        return pooled + self.late_weight * late
