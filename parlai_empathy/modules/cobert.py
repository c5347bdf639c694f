"""CoBERT (Zhong et al., "Towards Persona-Based Empathetic Conversational Models", EMNLP
2020), as a plain ``nn.Module``: one shared BERT-family encoder for context, persona and
response; co-attention matching between the response and the context (and between the
response and the persona), max-pooling aggregation, and a dot-product score.

For one context ``x`` (m tokens) and one response ``y`` (n tokens), encoder outputs
``X`` (m, D) and ``Y`` (n, D)::

    A      = X Y^T                         (m, n)   token affinities
    x_to_y = softmax over n of A           (m, n)   each context token attends to y
    y_to_x = softmax over m of A           (m, n)   each response token attends to x
    hop 1: x1 = max_m (x_to_y Y),  y1 = max_n (y_to_x^T X)                          (D,)
    hop 2: y_w = mean_n(y_to_x^T) x_to_y (n,),  x_w = mean_m(x_to_y) y_to_x^T  (m,)
           x2 = x_w X,  y2 = y_w Y                                                  (D,)
    score(x, y) = [x1; x2] . [y1; y2]

With a persona ``p`` the same matching between ``p`` and ``y`` adds ``[p1; p2] . [y1'; y2']``
(the original concatenates the four context/persona features and the four response features
before one dot product, which is the same sum). Without a persona the score is the
context-response term alone, so a model given no persona is exactly the context-only model.

Deviations from the original code (``CoBERT.py`` of zhongpeixiang/PEC), one line each:

* padding never takes part: padded rows/columns get zero attention (the original's padded
  rows are uniform over all positions, padding included, and enter the hop-2 means);
* the hop-2 means run over real tokens only;
* max-pooling masks padding with the dtype's lowest value, not -5e4 (padding never wins,
  even with large activations);
* no speaker token-type ids for the context (turns are separated by ``[SEP]`` only).

The agent is ``parlai.agents.empathy.cobert``::

    parlai train_model -m empathy/cobert -t empathetic_dialogues --train-experiencer-only true \
        -mf /tmp/cobert/model -bs 16 -cands batch -ecands inline --max-train-steps 2000

Shapes: ``B`` contexts, ``C`` candidates (per context, or shared by all contexts), ``m``
context (or persona) length, ``n`` candidate length, ``D`` encoder hidden size.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import nn

SCORERS = ("cobert", "cosine")


@dataclass
class CobertConfig:
    scorer: str = "cobert"  # "cobert": co-attention matching; "cosine": mean-pooled cosine
    candidate_chunk: int = 256  # context-candidate pairs matched at once (memory: chunk x m x D)

    def __post_init__(self):
        if self.scorer not in SCORERS:
            raise ValueError(f"scorer must be one of {SCORERS}, got {self.scorer!r}")
        if self.candidate_chunk < 1:
            raise ValueError(f"candidate_chunk must be at least 1, got {self.candidate_chunk}")


def masked_max(values: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Max over ``dim`` of ``values`` where ``mask`` (broadcastable, true on tokens) holds;
    padding never wins. A slice with no token at all gives 0."""
    lowest = torch.finfo(values.dtype).min
    filled = values.masked_fill(~mask, lowest)
    best = filled.max(dim=dim).values
    any_token = mask.any(dim=dim).expand_as(best) if mask.dim() == values.dim() else None
    if any_token is not None:
        best = best.masked_fill(~any_token, 0.0)
    return best


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean over ``dim`` of ``values`` where ``mask`` (same shape, true on tokens) holds."""
    weights = mask.to(values.dtype)
    return (values * weights).sum(dim) / weights.sum(dim).clamp(min=1.0)


def _masked_softmax(scores: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Softmax over ``dim`` restricted to ``mask``; entries outside it (and slices with no
    valid entry) are exactly 0."""
    lowest = torch.finfo(scores.dtype).min
    probs = torch.softmax(scores.masked_fill(~mask, lowest), dim=dim)
    return probs * mask.to(probs.dtype)


def co_attention(
    x: torch.Tensor,
    x_mask: torch.Tensor,
    y: torch.Tensor,
    y_mask: torch.Tensor,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Match every context ``x`` with every candidate ``y``; return the context-side and
    candidate-side features, each ``(B, C, 2D)`` (hop 1 then hop 2; module docstring).

    ``x`` (B, m, D) with ``x_mask`` (B, m); ``y`` either shared by all contexts, (C, n, D)
    with ``y_mask`` (C, n), or one set per context, (B, C, n, D) with ``y_mask`` (B, C, n).
    Masks are true on tokens.
    """
    shared = y.dim() == 3
    x_mask, y_mask = x_mask.bool(), y_mask.bool()
    if shared:
        affinity = torch.einsum("bmd,cnd->bcmn", x, y)
        y_mask_b = y_mask.unsqueeze(0)  # (1, C, n)
    else:
        affinity = torch.einsum("bmd,bcnd->bcmn", x, y)
        y_mask_b = y_mask  # (B, C, n)
    pair_mask = x_mask[:, None, :, None] & y_mask_b[:, :, None, :]  # (B, C, m, n)

    x_to_y = _masked_softmax(affinity, pair_mask, dim=3)  # (B, C, m, n), sums to 1 over n
    y_to_x = _masked_softmax(affinity, pair_mask, dim=2)  # (B, C, m, n), sums to 1 over m

    # hop 1: each token's view of the other side, max-pooled over its own tokens
    if shared:
        x_attended = torch.einsum("bcmn,cnd->bcmd", x_to_y, y)  # (B, C, m, D)
    else:
        x_attended = torch.einsum("bcmn,bcnd->bcmd", x_to_y, y)
    y_attended = torch.einsum("bcmn,bmd->bcnd", y_to_x, x)  # (B, C, n, D)
    x_hop1 = masked_max(x_attended, x_mask[:, None, :, None], dim=2)  # (B, C, D)
    y_hop1 = masked_max(y_attended, y_mask_b[..., None], dim=2)  # (B, C, D)

    # hop 2: attention over y (resp. x) read through the other side's average attention
    y_count = y_mask_b.sum(-1, keepdim=True).clamp(min=1).to(y_to_x.dtype)  # (·, C, 1)
    x_count = x_mask.sum(-1)[:, None, None].clamp(min=1).to(x_to_y.dtype)  # (B, 1, 1)
    y_mean_over_x = y_to_x.sum(3) / y_count  # (B, C, m): mean over real y tokens
    x_mean_over_y = x_to_y.sum(2) / x_count  # (B, C, n): mean over real x tokens
    y_weights = torch.einsum("bcm,bcmn->bcn", y_mean_over_x, x_to_y)  # (B, C, n)
    x_weights = torch.einsum("bcn,bcmn->bcm", x_mean_over_y, y_to_x)  # (B, C, m)
    x_hop2 = torch.einsum("bcm,bmd->bcd", x_weights, x)  # (B, C, D)
    if shared:
        y_hop2 = torch.einsum("bcn,cnd->bcd", y_weights, y)
    else:
        y_hop2 = torch.einsum("bcn,bcnd->bcd", y_weights, y)
    return torch.cat([x_hop1, x_hop2], -1), torch.cat([y_hop1, y_hop2], -1)


def match_score(x, x_mask, y, y_mask) -> torch.Tensor:
    """``(B, C)`` co-attention scores of contexts ``x`` against candidates ``y`` (shapes as in
    :func:`co_attention`)."""
    x_features, y_features = co_attention(x, x_mask, y, y_mask)
    return (x_features * y_features).sum(-1)


class Cobert(nn.Module):
    """A shared ``transformers`` encoder and CoBERT's matching (module docstring)."""

    def __init__(self, encoder: nn.Module, config: CobertConfig):
        super().__init__()
        self.config = config
        self.encoder = encoder

    def encode(self, input_ids: torch.LongTensor, mask: torch.Tensor) -> torch.Tensor:
        """``input_ids`` (N, S) starting with [CLS], ``mask`` (N, S) true on tokens ->
        token outputs (N, S, D)."""
        return self.encoder(input_ids=input_ids, attention_mask=mask.long()).last_hidden_state

    def score(
        self,
        context: torch.Tensor,
        context_mask: torch.Tensor,
        candidates: torch.Tensor,
        candidate_mask: torch.Tensor,
        persona: Optional[torch.Tensor] = None,
        persona_mask: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Scores ``(B, C)`` from encoder outputs: ``context`` (B, m, D); ``candidates``
        (C, n, D) shared or (B, C, n, D) per context, with masks true on tokens;
        ``persona`` (B, p, D) or None (no persona: the context-only model). A context whose
        persona mask is all false gets no persona term."""
        if self.config.scorer == "cosine":
            return self._cosine(context, context_mask, candidates, candidate_mask)
        chunk = max(1, self.config.candidate_chunk // context.size(0))  # candidates per pass
        total = candidates.size(0 if candidates.dim() == 3 else 1)
        parts = []
        for start in range(0, total, chunk):
            if candidates.dim() == 3:
                y, y_mask = candidates[start:start + chunk], candidate_mask[start:start + chunk]
            else:
                y = candidates[:, start:start + chunk]
                y_mask = candidate_mask[:, start:start + chunk]
            part = match_score(context, context_mask, y, y_mask)
            if persona is not None:
                part = part + match_score(persona, persona_mask, y, y_mask)
            parts.append(part)
        return torch.cat(parts, dim=1)

    @staticmethod
    def _cosine(context, context_mask, candidates, candidate_mask) -> torch.Tensor:
        """The untrained baseline: cosine of mean-pooled encoder outputs (how
        sentence-transformers uses all-MiniLM-L6-v2)."""
        x = masked_mean(context, context_mask.bool()[..., None], dim=1)  # (B, D)
        y = masked_mean(candidates, candidate_mask.bool()[..., None], dim=-2)  # (·, C, D)
        x = nn.functional.normalize(x, dim=-1)
        y = nn.functional.normalize(y, dim=-1)
        if y.dim() == 2:
            return x @ y.t()
        return torch.einsum("bd,bcd->bc", x, y)
