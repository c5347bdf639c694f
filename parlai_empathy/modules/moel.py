"""MoEL: Mixture of Empathetic Listeners (Lin et al., EMNLP 2019), as plain ``nn.Module``\\ s.

Reference: Zhaojiang Lin, Andrea Madotto, Jamin Shin, Peng Xu, Pascale Fung. "MoEL: Mixture of
Empathetic Listeners". EMNLP-IJCNLP 2019; code: HLTCHKUST/MoEL (``model/
transformer_mulexpert.py``, ``model/common_layer.py``). The ParlAI agent around this model is
``parlai.agents.empathy.moel``::

    parlai train_model -m empathy/moel -t empathetic_dialogues \
        --train-experiencer-only true -mf /tmp/moel/model

The model, as in the original (what MoEL shares with MIME and the seed's models -- word
embeddings, dialogue states, the context encoder and its emotion classifier, the output layer
-- is in :mod:`parlai_empathy.modules.emotion_base`):

* **Emotion tracker.** The family's :class:`~parlai_empathy.modules.emotion_base.DialogueEncoder`
  reads ``[CLS] + context`` (word + dialogue-state embeddings) and gives one logit per emotion
  from the CLS output (or the mean of all positions).
* **Listeners.** One decoder layer per emotion plus one shared listener, all reading the same
  embedded response prefix and the encoder output.
* **Gating.** ``topk``: softmax over the k largest emotion logits, zero elsewhere (the paper);
  ``soft``: softmax over all; ``sigmoid``: independent sigmoids (the original code's non
  ``--softmax`` mode). During training the gold emotion's one-hot can replace the gate
  (the agent's oracle schedule).
* **Meta listener.** ``num_layers`` decoder layers over ``shared + sum_k w_k * listener_k``,
  then a final layer norm and a linear output layer (not tied to the embeddings).

Sparse listeners (``sparse_listeners=True``): each listener runs only on the rows whose gate
gives it a non-zero weight, which gives the same outputs as running every listener on every
row and multiplying by the (zero) weights -- the dense computation, kept for reference and
testing. Everything the decoder needs at search time (encoder output, its mask, the listener
weights) travels in :class:`MoelEncoderOutput`, which :meth:`MoelModel.reorder_encoder_states`
reorders; the listeners' incremental states remember which rows they hold.

Shapes: ``B`` batch, ``S`` source length (with CLS), ``T`` target length, ``D`` hidden size,
``E`` number of emotions (= listeners), ``V`` vocabulary.
"""
from dataclasses import dataclass
from typing import Dict, List, NamedTuple, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from parlai_empathy.modules.emotion_base import (
    DialogueEncoder,
    EmotionGeneratorConfig,
    EmotionGeneratorModel,
    WordEmbeddings,
)
from parlai_empathy.modules.transformer_layers import (
    DecoderLayer,
    LayerCache,
    LayerNorm,
    timing_signal,
)

GATINGS = ("topk", "soft", "sigmoid")


@dataclass
class MoelConfig(EmotionGeneratorConfig):
    """MoEL's switches on top of the family's sizes; defaults are the official MoEL run
    (``num_emotions`` is also the number of listeners, ``num_layers`` also the meta
    listener's depth)."""

    gating: str = "topk"  # topk | soft | sigmoid
    topk: int = 5  # listeners kept per example by topk gating
    shared_listener: bool = True  # MoEL's shared ("basic") listener
    sparse_listeners: bool = True  # run a listener only on the rows that select it

    def __post_init__(self):
        super().__post_init__()
        if self.gating not in GATINGS:
            raise ValueError(f"MoelConfig.gating must be one of {GATINGS}, got {self.gating!r}")
        if self.gating == "topk" and not 1 <= self.topk <= self.num_emotions:
            raise ValueError(
                f"MoelConfig.topk must be in 1..num_emotions ({self.num_emotions}) for topk "
                f"gating, got {self.topk}"
            )


class MoelEncoderOutput(NamedTuple):
    """What the encoder hands the decoder; every field is indexed by batch row first."""

    hidden_states: torch.Tensor  # (B, S, D), S = 1 (CLS) + context length
    keep: torch.Tensor  # (B, S) bool, False at padding
    emotion_logits: torch.Tensor  # (B, E)
    listener_weights: torch.Tensor  # (B, E), the gate (or the oracle's one-hot)


def gate_listeners(emotion_logits: torch.Tensor, gating: str, topk: int) -> torch.Tensor:
    """Listener weights (B, E) from emotion logits (B, E).

    ``topk``: softmax over the ``topk`` largest logits, exactly zero elsewhere; ``soft``:
    softmax over all; ``sigmoid``: element-wise sigmoid.
    """
    if gating == "topk":
        top_values, top_index = emotion_logits.topk(topk, dim=-1)
        masked = torch.full_like(emotion_logits, float("-inf")).scatter(1, top_index, top_values)
        return F.softmax(masked, dim=-1)
    if gating == "soft":
        return F.softmax(emotion_logits, dim=-1)
    if gating == "sigmoid":
        return torch.sigmoid(emotion_logits)
    raise ValueError(f"unknown gating {gating!r}; expected one of {GATINGS}")


class MoelEncoder(DialogueEncoder):
    """Emotion tracker: the family's dialogue encoder and emotion classifier, and the gate."""

    def forward(
        self,
        text_vec: torch.Tensor,
        dialogue_states: Optional[torch.Tensor] = None,
        oracle_emotions: Optional[torch.Tensor] = None,
    ) -> MoelEncoderOutput:
        """Encode a batch of contexts.

        :param text_vec: (B, L) token ids, right-padded with ``padding_idx``.
        :param dialogue_states: (B, L) ``STATE_USER`` / ``STATE_SELF`` per token; None treats
            every token as the user's.
        :param oracle_emotions: (B,) gold emotion ids: replace the gate by their one-hot
            (training only; see the agent's ``--oracle-schedule``).
        """
        hidden_states, keep = self.encode(text_vec, dialogue_states)
        emotion_logits = self.classify_emotion(hidden_states, keep)  # (B, E)
        if oracle_emotions is not None:
            listener_weights = F.one_hot(oracle_emotions, self.config.num_emotions).to(
                hidden_states.dtype
            )
        else:
            listener_weights = gate_listeners(
                emotion_logits, self.config.gating, self.config.topk
            )
        return MoelEncoderOutput(hidden_states, keep, emotion_logits, listener_weights)


IncrementalState = Dict[str, object]


class MoelDecoder(nn.Module):
    """Listeners, their gated mixture and the meta listener.

    Incremental state (a dict, see :meth:`forward`): ``num_rows``; ``shared`` (the shared
    listener's layer cache or None); ``listeners``: ``{emotion id: {'rows', 'cache'}}`` where
    ``rows`` are the batch rows the listener runs on (None: all rows) and ``cache`` its layer
    cache for those rows only; ``meta``: the meta listener's layer caches.
    """

    #: the entries of :meth:`memory` that only feed a cross-attention's keys and values:
    #: cached after the first decoding step, so later steps need not select their rows
    STATIC_MEMORY: Tuple[str, ...] = ("encoder_output",)

    def __init__(self, config: MoelConfig, embeddings: WordEmbeddings):
        super().__init__()
        self.config = config
        self.sparse_listeners = config.sparse_listeners
        self.embeddings = embeddings
        self.input_dropout = nn.Dropout(config.input_dropout)
        self.embedding_proj = nn.Linear(config.embedding_size, config.hidden_size, bias=False)
        self.shared_listener = self.make_layer() if config.shared_listener else None
        self.listeners = nn.ModuleList([self.make_layer() for _ in range(config.num_emotions)])
        self.meta_listener = nn.ModuleList(
            [self.make_layer() for _ in range(config.num_layers)]
        )
        self.norm = LayerNorm(config.hidden_size)

    def make_layer(self) -> nn.Module:
        """One listener (or meta-listener layer); a subclass may use another layer class."""
        return DecoderLayer(**self.config.layer_kwargs())

    def memory(self, encoder_state: MoelEncoderOutput) -> Dict[str, torch.Tensor]:
        """What every decoder layer attends to, as keyword arguments of its ``forward``;
        every tensor is indexed by batch row first."""
        return {"encoder_output": encoder_state.hidden_states, "encoder_keep": encoder_state.keep}

    @staticmethod
    def listener_rows(listener_weights: torch.Tensor) -> List[Tuple[int, torch.Tensor]]:
        """``[(emotion id, rows)]`` for every listener with a non-zero weight on some row."""
        pairs = listener_weights.t().nonzero()  # (P, 2): (listener, row), by listener then row
        counts = torch.bincount(pairs[:, 0], minlength=listener_weights.size(1)).tolist()
        return [
            (index, rows)
            for index, rows in enumerate(pairs[:, 1].split(counts))
            if rows.numel()
        ]

    def forward(
        self,
        input: torch.Tensor,
        encoder_state: MoelEncoderOutput,
        incr_state: Optional[IncrementalState] = None,
    ) -> Tuple[torch.Tensor, IncrementalState]:
        """Decode ``input`` (B, T) (START + prefix) -> hidden states (B, T', D) and the state.

        With ``incr_state`` (the state after ``input[:, :-1]``) only the last token is
        decoded (T' = 1), as ParlAI's search loop expects.
        """
        past = 0
        if incr_state is not None:
            past = input.size(1) - 1
            input = input[:, -1:]
        x = self.embedding_proj(self.input_dropout(self.embeddings(input)))  # (B, T', D)
        x = x + timing_signal(x.size(1), x.size(2), start=past, device=x.device, dtype=x.dtype)
        memory = self.memory(encoder_state)
        weights = encoder_state.listener_weights.to(x.dtype)  # (B, E)

        state = incr_state or {}
        new_state: IncrementalState = {"num_rows": x.size(0)}

        mixed, new_state["listeners"] = self._mixture(
            x, memory, weights, state.get("listeners")
        )
        new_state["shared"] = None
        if self.shared_listener is not None:
            shared, new_state["shared"] = self.shared_listener(
                x, cache=state.get("shared"), **memory
            )
            mixed = mixed + shared

        meta_caches = state.get("meta") or [None] * len(self.meta_listener)
        new_state["meta"] = []
        for layer, cache in zip(self.meta_listener, meta_caches):
            mixed, cache = layer(mixed, cache=cache, **memory)
            new_state["meta"].append(cache)
        return self.norm(mixed), new_state

    def _mixture(
        self,
        x: torch.Tensor,
        memory: Dict[str, torch.Tensor],
        weights: torch.Tensor,
        listener_states: Optional[Dict[int, dict]],
    ) -> Tuple[torch.Tensor, Dict[int, dict]]:
        """``sum_k weights[:, k] * listener_k(x)``: (B, T', D), and the listeners' states."""
        new_states: Dict[int, dict] = {}
        if not self.sparse_listeners:
            # dense, as the original: every listener on every row, then the weighted sum
            outputs = []
            for index, listener in enumerate(self.listeners):
                cache = listener_states[index]["cache"] if listener_states else None
                out, cache = listener(x, cache=cache, **memory)
                outputs.append(out)
                new_states[index] = {"rows": None, "cache": cache}
            stacked = torch.stack(outputs, dim=1)  # (B, E, T', D)
            return (weights[:, :, None, None] * stacked).sum(dim=1), new_states

        if listener_states is None:
            routes = self.listener_rows(weights)
        else:  # the rows travel with the cached states (see reorder_incremental_state)
            routes = [(index, st["rows"]) for index, st in listener_states.items()]
        mixed = torch.zeros_like(x)
        for index, rows in routes:
            cache = listener_states[index]["cache"] if listener_states else None
            # the cross-attention keys/values are cached after the first step
            rows_memory = {
                name: None if cache and name in self.STATIC_MEMORY else value.index_select(0, rows)
                for name, value in memory.items()
            }
            out, cache = self.listeners[index](x.index_select(0, rows), cache=cache, **rows_memory)
            row_weights = weights.index_select(0, rows)[:, index]  # (rows,)
            mixed = mixed.index_add(0, rows, out * row_weights[:, None, None])
            new_states[index] = {"rows": rows, "cache": cache}
        return mixed, new_states

    @staticmethod
    def reorder_incremental_state(
        incr_state: IncrementalState, inds: torch.Tensor
    ) -> IncrementalState:
        """Row ``r`` of the new state is row ``inds[r]`` of the old one.

        A listener's packed rows follow their content: new row ``r`` is routed to listener
        ``k`` iff old row ``inds[r]`` was.
        """

        def select(cache: Optional[LayerCache], index: torch.Tensor) -> Optional[LayerCache]:
            if cache is None:
                return None
            return {key: value.index_select(0, index) for key, value in cache.items()}

        listeners = {}
        for index, st in incr_state["listeners"].items():
            rows = st["rows"]
            if rows is None:
                listeners[index] = {"rows": None, "cache": select(st["cache"], inds)}
                continue
            slot = torch.full(
                (incr_state["num_rows"],), -1, dtype=torch.long, device=inds.device
            )
            slot[rows] = torch.arange(rows.numel(), device=inds.device)
            taken = slot.index_select(0, inds)  # position in the packed cache, or -1
            new_rows = (taken >= 0).nonzero().squeeze(1)
            if new_rows.numel():
                listeners[index] = {
                    "rows": new_rows,
                    "cache": select(st["cache"], taken.index_select(0, new_rows)),
                }
        return {
            "num_rows": inds.numel(),
            "listeners": listeners,
            "shared": select(incr_state["shared"], inds),
            "meta": [select(cache, inds) for cache in incr_state["meta"]],
        }


class MoelModel(EmotionGeneratorModel):
    """MoEL behind ParlAI's ``TorchGeneratorModel`` interface.

    ``encoder(text_vec, dialogue_states=None, oracle_emotions=None)`` ->
    :class:`MoelEncoderOutput`; ``decoder(input, encoder_states, incr_state)``; ``output``
    maps hidden states (B, T, D) to vocabulary logits (B, T, V).
    """

    def __init__(self, config: MoelConfig):
        super().__init__(config)
        self.encoder = MoelEncoder(config, self.embeddings)
        self.decoder = MoelDecoder(config, self.embeddings)
        self.finish_building()

    def reorder_decoder_incremental_state(
        self, incremental_state: IncrementalState, inds: torch.Tensor
    ) -> IncrementalState:
        if not torch.is_tensor(inds):
            inds = torch.as_tensor(inds, dtype=torch.long)
        return MoelDecoder.reorder_incremental_state(incremental_state, inds)
