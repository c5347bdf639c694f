"""MoEL: Mixture of Empathetic Listeners (Lin et al., EMNLP 2019), as plain ``nn.Module``\\ s.

Reference: Zhaojiang Lin, Andrea Madotto, Jamin Shin, Peng Xu, Pascale Fung. "MoEL: Mixture of
Empathetic Listeners". EMNLP-IJCNLP 2019; code: HLTCHKUST/MoEL (``model/
transformer_mulexpert.py``, ``model/common_layer.py``). The ParlAI agent around this model is
``parlai.agents.empathy.moel``::

    parlai train_model -m empathy/moel -t empathetic_dialogues \
        --train-experiencer-only true -mf /tmp/moel/model

The model, as in the original:

* **Emotion tracker.** A transformer encoder reads ``[CLS] + context``; every token's input is
  its word embedding plus a *dialogue-state* embedding (the user's turns, our own turns; the
  CLS position has its own state). A linear layer on the CLS output (or on the mean of all
  positions) gives one logit per emotion.
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
import math
from dataclasses import dataclass
from typing import Dict, List, NamedTuple, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from parlai.core.torch_generator_agent import TorchGeneratorModel

from parlai_empathy.modules.transformer_layers import (
    DecoderLayer,
    EncoderLayer,
    LayerCache,
    MoelLayerNorm,
    timing_signal,
)

# Dialogue states (MoEL's CLS / USR / SYS tokens): USER marks the turns of the person we answer
# (the last context turn and every second turn before it), SELF our own earlier turns.
STATE_CLS = 0
STATE_USER = 1
STATE_SELF = 2
NUM_DIALOGUE_STATES = 3

GATINGS = ("topk", "soft", "sigmoid")
POOLINGS = ("cls", "mean")


@dataclass
class MoelConfig:
    """Sizes and switches of a MoEL model; defaults are the official MoEL run."""

    vocab_size: int
    padding_idx: int = 0
    start_idx: int = 1
    end_idx: int = 2
    unknown_idx: int = 3
    num_emotions: int = 32  # one listener per emotion of the label set
    embedding_size: int = 300  # the embedding the encoder/decoder projections read
    word_vector_size: Optional[int] = None  # lookup-table size (a pretrained file's); None: same
    hidden_size: int = 300
    num_layers: int = 1  # encoder layers, and meta-listener layers
    num_heads: int = 2
    key_depth: int = 40  # total query/key depth over all heads
    value_depth: int = 40  # total value depth over all heads
    filter_size: int = 50  # inner size of the convolutional feed-forward block
    kernel_size: int = 3  # width of its convolutions
    gating: str = "topk"  # topk | soft | sigmoid
    topk: int = 5  # listeners kept per example by topk gating
    emotion_pooling: str = "cls"  # cls | mean: the encoder summary the classifier reads
    shared_listener: bool = True  # MoEL's shared ("basic") listener
    sparse_listeners: bool = True  # run a listener only on the rows that select it
    input_dropout: float = 0.0
    layer_dropout: float = 0.0
    attention_dropout: float = 0.0
    relu_dropout: float = 0.0

    def __post_init__(self):
        if self.word_vector_size is None:
            self.word_vector_size = self.embedding_size
        for name in (
            "vocab_size", "num_emotions", "embedding_size", "word_vector_size",
            "hidden_size", "num_layers", "num_heads", "key_depth", "value_depth",
            "filter_size", "kernel_size",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"MoelConfig.{name} must be a positive integer, got {value!r}")
        if self.hidden_size < 2:
            raise ValueError("MoelConfig.hidden_size must be at least 2 (layer norm)")
        for name in ("key_depth", "value_depth"):
            if getattr(self, name) % self.num_heads:
                raise ValueError(
                    f"MoelConfig.{name} ({getattr(self, name)}) must be divisible by "
                    f"num_heads ({self.num_heads})"
                )
        if self.gating not in GATINGS:
            raise ValueError(f"MoelConfig.gating must be one of {GATINGS}, got {self.gating!r}")
        if self.gating == "topk" and not 1 <= self.topk <= self.num_emotions:
            raise ValueError(
                f"MoelConfig.topk must be in 1..num_emotions ({self.num_emotions}) for topk "
                f"gating, got {self.topk}"
            )
        if self.emotion_pooling not in POOLINGS:
            raise ValueError(
                f"MoelConfig.emotion_pooling must be one of {POOLINGS}, got "
                f"{self.emotion_pooling!r}"
            )
        for name in ("input_dropout", "layer_dropout", "attention_dropout", "relu_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"MoelConfig.{name} must be in [0, 1), got {getattr(self, name)}")
        for name in ("padding_idx", "start_idx", "end_idx", "unknown_idx"):
            if not 0 <= getattr(self, name) < self.vocab_size:
                raise ValueError(f"MoelConfig.{name} must index the vocabulary")

    def layer_kwargs(self) -> dict:
        return dict(
            hidden_size=self.hidden_size,
            key_depth=self.key_depth,
            value_depth=self.value_depth,
            filter_size=self.filter_size,
            num_heads=self.num_heads,
            kernel_size=self.kernel_size,
            layer_dropout=self.layer_dropout,
            attention_dropout=self.attention_dropout,
            relu_dropout=self.relu_dropout,
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


class WordEmbeddings(nn.Module):
    """Lookup table scaled by ``sqrt(table size)`` (MoEL's ``Embeddings``), then a learned
    projection to ``embedding_size`` when the table (e.g. 50-d GloVe) has another size."""

    def __init__(self, vocab_size: int, vector_size: int, embedding_size: int, padding_idx: int):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vector_size, padding_idx=padding_idx)
        self.scale = math.sqrt(vector_size)
        self.projection = (
            nn.Linear(vector_size, embedding_size, bias=False)
            if vector_size != embedding_size
            else None
        )

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids`` (B, L) -> (B, L, embedding_size)."""
        vectors = self.table(ids) * self.scale
        return self.projection(vectors) if self.projection is not None else vectors


class MoelEncoder(nn.Module):
    """Emotion tracker: transformer encoder over ``[CLS] + context``, emotion classifier, gate."""

    def __init__(self, config: MoelConfig, embeddings: WordEmbeddings):
        super().__init__()
        self.config = config
        self.padding_idx = config.padding_idx
        self.embeddings = embeddings
        self.dialogue_state_embeddings = nn.Embedding(NUM_DIALOGUE_STATES, config.embedding_size)
        self.cls_embedding = nn.Parameter(torch.zeros(config.embedding_size))
        self.embedding_scale = math.sqrt(config.embedding_size)
        self.input_dropout = nn.Dropout(config.input_dropout)
        self.embedding_proj = nn.Linear(config.embedding_size, config.hidden_size, bias=False)
        self.layers = nn.ModuleList(
            [EncoderLayer(**config.layer_kwargs()) for _ in range(config.num_layers)]
        )
        self.norm = MoelLayerNorm(config.hidden_size)
        self.emotion_classifier = nn.Linear(config.hidden_size, config.num_emotions, bias=False)

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
        batch = text_vec.size(0)
        if dialogue_states is None:
            dialogue_states = torch.full_like(text_vec, STATE_USER)
        # word + dialogue-state embeddings; position 0 is CLS (its own word and state vector)
        words = self.embeddings(text_vec)  # (B, L, E_emb)
        states = self.dialogue_state_embeddings(dialogue_states) * self.embedding_scale
        cls_state = self.dialogue_state_embeddings.weight[STATE_CLS]
        cls = (self.cls_embedding + cls_state) * self.embedding_scale
        x = torch.cat([cls.expand(batch, 1, -1).to(words.dtype), words + states], dim=1)
        keep = torch.cat(
            [text_vec.new_ones(batch, 1, dtype=torch.bool), text_vec != self.padding_idx], dim=1
        )  # (B, S)

        x = self.embedding_proj(self.input_dropout(x))  # (B, S, D)
        x = x + timing_signal(x.size(1), x.size(2), device=x.device, dtype=x.dtype)
        for layer in self.layers:
            x = layer(x, keep)
        hidden_states = self.norm(x)

        if self.config.emotion_pooling == "cls":
            summary = hidden_states[:, 0]
        else:  # mean over real positions (the original's --mean_query also averaged padding)
            weights = keep.unsqueeze(-1).to(hidden_states.dtype)
            summary = (hidden_states * weights).sum(1) / weights.sum(1)
        emotion_logits = self.emotion_classifier(summary)  # (B, E)

        if oracle_emotions is not None:
            listener_weights = F.one_hot(oracle_emotions, self.config.num_emotions).to(x.dtype)
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

    def __init__(self, config: MoelConfig, embeddings: WordEmbeddings):
        super().__init__()
        self.config = config
        self.sparse_listeners = config.sparse_listeners
        self.embeddings = embeddings
        self.input_dropout = nn.Dropout(config.input_dropout)
        self.embedding_proj = nn.Linear(config.embedding_size, config.hidden_size, bias=False)
        layer_kwargs = config.layer_kwargs()
        self.shared_listener = DecoderLayer(**layer_kwargs) if config.shared_listener else None
        self.listeners = nn.ModuleList(
            [DecoderLayer(**layer_kwargs) for _ in range(config.num_emotions)]
        )
        self.meta_listener = nn.ModuleList(
            [DecoderLayer(**layer_kwargs) for _ in range(config.num_layers)]
        )
        self.norm = MoelLayerNorm(config.hidden_size)

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
        encoder_output, encoder_keep = encoder_state.hidden_states, encoder_state.keep
        weights = encoder_state.listener_weights.to(x.dtype)  # (B, E)

        state = incr_state or {}
        new_state: IncrementalState = {"num_rows": x.size(0)}

        mixed, new_state["listeners"] = self._mixture(
            x, encoder_output, encoder_keep, weights, state.get("listeners")
        )
        new_state["shared"] = None
        if self.shared_listener is not None:
            shared, new_state["shared"] = self.shared_listener(
                x, encoder_output, encoder_keep, state.get("shared")
            )
            mixed = mixed + shared

        meta_caches = state.get("meta") or [None] * len(self.meta_listener)
        new_state["meta"] = []
        for layer, cache in zip(self.meta_listener, meta_caches):
            mixed, cache = layer(mixed, encoder_output, encoder_keep, cache)
            new_state["meta"].append(cache)
        return self.norm(mixed), new_state

    def _mixture(
        self,
        x: torch.Tensor,
        encoder_output: torch.Tensor,
        encoder_keep: torch.Tensor,
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
                out, cache = listener(x, encoder_output, encoder_keep, cache)
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
            out, cache = self.listeners[index](
                x.index_select(0, rows),
                # the cross-attention keys/values are cached after the first step
                None if cache else encoder_output.index_select(0, rows),
                encoder_keep.index_select(0, rows),
                cache,
            )
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


class MoelModel(TorchGeneratorModel):
    """MoEL behind ParlAI's ``TorchGeneratorModel`` interface.

    ``encoder(text_vec, dialogue_states=None, oracle_emotions=None)`` ->
    :class:`MoelEncoderOutput`; ``decoder(input, encoder_states, incr_state)``; ``output``
    maps hidden states (B, T, D) to vocabulary logits (B, T, V).
    """

    def __init__(self, config: MoelConfig):
        super().__init__(
            padding_idx=config.padding_idx,
            start_idx=config.start_idx,
            end_idx=config.end_idx,
            unknown_idx=config.unknown_idx,
        )
        self.config = config
        self.embeddings = WordEmbeddings(
            config.vocab_size, config.word_vector_size, config.embedding_size,
            config.padding_idx,
        )
        self.encoder = MoelEncoder(config, self.embeddings)
        self.decoder = MoelDecoder(config, self.embeddings)
        self.output_proj = nn.Linear(config.hidden_size, config.vocab_size)
        self.reset_parameters()

    def reset_parameters(self):
        """The original's initialisation: Xavier-uniform for every matrix (and convolution
        kernel); the dialogue-state and CLS vectors ~ N(0, 0.01) like its other non-GloVe
        rows; the padding row zero. Pretrained word vectors are copied in afterwards."""
        special = {
            id(self.encoder.dialogue_state_embeddings.weight),
            id(self.encoder.cls_embedding),
        }
        for parameter in self.parameters():
            if id(parameter) in special:
                nn.init.normal_(parameter, std=0.01)
            elif parameter.dim() > 1:
                nn.init.xavier_uniform_(parameter)
        with torch.no_grad():
            self.embeddings.table.weight[self.config.padding_idx].zero_()

    def parameter_anchor(self) -> torch.Tensor:
        """``0 * sum(every parameter)``: added to a training loss, it gives every parameter a
        gradient. Sparse listeners leave the unselected ones without any (None), where the
        dense mixture gives them exact zeros; with the anchor the optimizer sees the same
        zeros (Adam's moments still decay, as in the original), and DDP, which expects a
        gradient for each parameter, works."""
        return 0.0 * sum(p.sum() for p in self.parameters() if p.requires_grad)

    def output(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.output_proj(hidden_states)

    def reorder_encoder_states(
        self, encoder_states: MoelEncoderOutput, indices
    ) -> MoelEncoderOutput:
        if not torch.is_tensor(indices):
            indices = torch.as_tensor(indices, dtype=torch.long)
        indices = indices.to(encoder_states.hidden_states.device)
        return MoelEncoderOutput(*(field.index_select(0, indices) for field in encoder_states))

    def reorder_decoder_incremental_state(
        self, incremental_state: IncrementalState, inds: torch.Tensor
    ) -> IncrementalState:
        if not torch.is_tensor(inds):
            inds = torch.as_tensor(inds, dtype=torch.long)
        return MoelDecoder.reorder_incremental_state(incremental_state, inds)
