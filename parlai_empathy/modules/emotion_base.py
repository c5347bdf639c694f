"""What every emotion-conditioned generator of the MoEL family shares, as plain ``nn.Module``\\ s.

MoEL (Lin et al., EMNLP 2019; HLTCHKUST/MoEL), MIME (Majumder et al., EMNLP 2020;
declare-lab/MIME) and the seed paper's persona-aware MoEL read a dialogue the same way:

* **Word embeddings** (:class:`WordEmbeddings`): a lookup table scaled by ``sqrt(table
  size)``, initialised from pretrained vectors by the agent, projected when those vectors
  have another size than the model's embeddings.
* **Dialogue states**: every context token also gets the embedding of its speaker state
  (:data:`STATE_USER`, :data:`STATE_SELF`), and a ``CLS`` position with its own state opens
  the context (the originals' ``CLS``/``USR``/``SYS`` tokens).
* **Context encoder with an emotion classifier** (:class:`DialogueEncoder`): the transformer
  encoder of :mod:`~parlai_empathy.modules.transformer_layers` over ``[CLS] + context``, a
  final layer norm, and one logit per emotion from the ``CLS`` output (or the mean).
* **Output side** (:class:`EmotionGeneratorModel`): an untied linear output layer, the
  originals' Xavier initialisation, beam-search reordering of any ``NamedTuple`` encoder
  state, and :meth:`~EmotionGeneratorModel.parameter_anchor` for models that skip some
  sub-networks on some rows.

A model family adds its own file (``moel.py``) with a config subclassing
:class:`EmotionGeneratorConfig`, an encoder subclassing :class:`DialogueEncoder` and a decoder.

Shapes: ``B`` batch, ``L`` context length, ``S = 1 + L`` (with CLS), ``D`` hidden size,
``E`` number of emotions.
"""
import contextlib
import math
from dataclasses import dataclass
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn as nn
from parlai.core.torch_generator_agent import TorchGeneratorModel

from parlai_empathy.modules.transformer_layers import EncoderLayer, LayerNorm, timing_signal

# Dialogue states (the originals' CLS / USR / SYS): USER marks the turns of the person we
# answer (the last context turn and every second turn before it), SELF our own earlier turns.
STATE_CLS = 0
STATE_USER = 1
STATE_SELF = 2
NUM_DIALOGUE_STATES = 3

POOLINGS = ("cls", "mean")

_POSITIVE_SIZES = (
    "vocab_size", "num_emotions", "embedding_size", "word_vector_size", "hidden_size",
    "num_layers", "num_heads", "key_depth", "value_depth", "filter_size", "kernel_size",
)
_DROPOUTS = ("input_dropout", "layer_dropout", "attention_dropout", "relu_dropout")


@dataclass
class EmotionGeneratorConfig:
    """Sizes shared by the family; defaults are the official MoEL/MIME runs."""

    vocab_size: int
    padding_idx: int = 0
    start_idx: int = 1
    end_idx: int = 2
    unknown_idx: int = 3
    num_emotions: int = 32  # classes of the emotion classifier
    embedding_size: int = 300  # the embedding the encoder/decoder projections read
    word_vector_size: Optional[int] = None  # lookup-table size (a pretrained file's); None: same
    hidden_size: int = 300
    num_layers: int = 1  # encoder layers (and the decoder's, per family)
    num_heads: int = 2
    key_depth: int = 40  # total query/key depth over all heads
    value_depth: int = 40  # total value depth over all heads
    filter_size: int = 50  # inner size of the convolutional feed-forward block
    kernel_size: int = 3  # width of its convolutions
    emotion_pooling: str = "cls"  # cls | mean: the encoder summary the classifier reads
    input_dropout: float = 0.0
    layer_dropout: float = 0.0
    attention_dropout: float = 0.0
    relu_dropout: float = 0.0

    def __post_init__(self):
        if self.word_vector_size is None:
            self.word_vector_size = self.embedding_size
        name = type(self).__name__
        for field in _POSITIVE_SIZES:
            value = getattr(self, field)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}.{field} must be a positive integer, got {value!r}")
        if self.hidden_size < 2:
            raise ValueError(f"{name}.hidden_size must be at least 2 (layer norm)")
        for field in ("key_depth", "value_depth"):
            if getattr(self, field) % self.num_heads:
                raise ValueError(
                    f"{name}.{field} ({getattr(self, field)}) must be divisible by "
                    f"num_heads ({self.num_heads})"
                )
        if self.emotion_pooling not in POOLINGS:
            raise ValueError(
                f"{name}.emotion_pooling must be one of {POOLINGS}, got {self.emotion_pooling!r}"
            )
        for field in _DROPOUTS:
            if not 0.0 <= getattr(self, field) < 1.0:
                raise ValueError(f"{name}.{field} must be in [0, 1), got {getattr(self, field)}")
        for field in ("padding_idx", "start_idx", "end_idx", "unknown_idx"):
            if not 0 <= getattr(self, field) < self.vocab_size:
                raise ValueError(f"{name}.{field} must index the vocabulary")

    def layer_kwargs(self) -> dict:
        """Arguments of every :class:`EncoderLayer`/``DecoderLayer`` of the model."""
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


class WordEmbeddings(nn.Module):
    """Lookup table scaled by ``sqrt(table size)`` (the originals' ``Embeddings``), then a
    learned projection to ``embedding_size`` when the table (e.g. 50-d GloVe) has another
    size."""

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


class DialogueEncoder(nn.Module):
    """Transformer encoder over ``[CLS] + context`` with dialogue states, and the emotion
    classifier on its summary."""

    def __init__(self, config: EmotionGeneratorConfig, embeddings: WordEmbeddings):
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
        self.norm = LayerNorm(config.hidden_size)
        self.emotion_classifier = nn.Linear(config.hidden_size, config.num_emotions, bias=False)

    def special_parameters(self) -> Tuple[nn.Parameter, ...]:
        """Parameters initialised ~ N(0, 0.01), like the originals' non-pretrained rows."""
        return (self.dialogue_state_embeddings.weight, self.cls_embedding)

    def encode(
        self, text_vec: torch.Tensor, dialogue_states: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``[CLS] + context`` -> hidden states (B, S, D) and the mask (B, S), False at padding.

        :param text_vec: (B, L) token ids, right-padded with ``padding_idx``.
        :param dialogue_states: (B, L) ``STATE_USER`` / ``STATE_SELF`` per token; None treats
            every token as the user's.
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
        return self.norm(x), keep

    def summarize(self, hidden_states: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """The context summary (B, D) the emotion classifier reads: the ``CLS`` output or the
        mean of the real positions (``emotion_pooling``)."""
        if self.config.emotion_pooling == "cls":
            return hidden_states[:, 0]
        # mean over real positions (the original's --mean_query also averaged padding)
        weights = keep.unsqueeze(-1).to(hidden_states.dtype)
        return (hidden_states * weights).sum(1) / weights.sum(1)

    def classify_emotion(self, hidden_states: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Emotion logits (B, E) from the context summary (:meth:`summarize`)."""
        return self.emotion_classifier(self.summarize(hidden_states, keep))


class EmotionGeneratorModel(TorchGeneratorModel):
    """ParlAI's ``TorchGeneratorModel`` with what the family's models share.

    A subclass builds ``self.embeddings`` (one :class:`WordEmbeddings`, shared by encoder and
    decoder), ``self.encoder`` (a :class:`DialogueEncoder` returning a ``NamedTuple`` whose
    fields are all indexed by batch row first and which has ``emotion_logits``) and
    ``self.decoder``, then calls :meth:`finish_building` (the output layer, initialisation).
    """

    def __init__(self, config: EmotionGeneratorConfig):
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

    def finish_building(self):
        """Add the untied output layer and initialise every parameter."""
        self.output_proj = nn.Linear(self.config.hidden_size, self.config.vocab_size)
        self.reset_parameters()

    def output(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Hidden states (B, T, D) -> vocabulary logits (B, T, V)."""
        return self.output_proj(hidden_states)

    @contextlib.contextmanager
    def scoring_positions(self, positions: torch.Tensor):
        """Within this block, :meth:`decode_forced` scores only the label positions where
        ``positions`` (B, T) is true and returns flat logits (N, V) and predictions (N,), in
        row-major order (``labels[positions]``'s order).

        The vocabulary projection and its softmax are most of a training step, and a batch's
        labels are padded to its longest: a loss that ignores the padding gets the same value
        and gradients from the real positions alone. (The agent sets it on the module itself,
        so it also holds under DDP's wrapper.)"""
        self._scoring_positions = positions
        try:
            yield
        finally:
            self._scoring_positions = None

    def decode_forced(self, encoder_states, ys):
        positions = getattr(self, "_scoring_positions", None)
        if positions is None:
            return super().decode_forced(encoder_states, ys)
        if (ys[:, 0] == self.START_IDX).any():
            raise AssertionError("decode_forced: the label starts with the START token, "
                                 "which decode_forced adds itself")
        inputs = self._get_initial_forced_decoder_input(ys.size(0), ys[:, :-1])
        latent, _ = self.decoder(inputs, encoder_states)  # (B, T, D)
        logits = self.output(latent[positions])  # (N, V)
        return logits, logits.argmax(dim=-1)

    def reset_parameters(self):
        """The originals' initialisation: Xavier-uniform for every matrix (and convolution
        kernel); the encoder's special vectors ~ N(0, 0.01) like their other non-GloVe rows;
        the padding row zero. Pretrained word vectors are copied in afterwards."""
        special = {id(p) for p in self.encoder.special_parameters()}
        for parameter in self.parameters():
            if id(parameter) in special:
                nn.init.normal_(parameter, std=0.01)
            elif parameter.dim() > 1:
                nn.init.xavier_uniform_(parameter)
        with torch.no_grad():
            self.embeddings.table.weight[self.config.padding_idx].zero_()

    def parameter_anchor(self) -> torch.Tensor:
        """``0 * sum(every parameter)``: added to a training loss, it gives every parameter a
        gradient. Sub-networks skipped on a batch (MoEL's unselected listeners) would have
        none (None), where a dense computation gives exact zeros; with the anchor the
        optimizer sees the same zeros (Adam's moments still decay, as in the originals), and
        DDP, which expects a gradient for each parameter, works."""
        return 0.0 * sum(p.sum() for p in self.parameters() if p.requires_grad)

    def reorder_encoder_states(self, encoder_states: NamedTuple, indices) -> NamedTuple:
        if not torch.is_tensor(indices):
            indices = torch.as_tensor(indices, dtype=torch.long)
        indices = indices.to(encoder_states[0].device)
        return type(encoder_states)(
            *(field.index_select(0, indices) for field in encoder_states)
        )
