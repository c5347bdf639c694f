"""Persona-aware MoEL (the seed paper, "Improving Empathetic Response Generation", Columbia
2022; ``shared/docs/ANCHORS.md``), as plain ``nn.Module``\\ s on top of :mod:`.moel`.

MoEL (Lin et al., EMNLP 2019) where every decoder layer -- each listener, the shared listener
and the meta listener -- has, after its cross-attention over the context encoding, a second
cross-attention over a *persona encoding* (``persona_order='persona_first'`` swaps the two).
The ParlAI agent is ``parlai.agents.empathy.persona_moel``::

    parlai train_model -m empathy/persona_moel -t pec --pec-filter true \
        --pec-emotion-file pec_emotions.jsonl --emotion-groups 16 -mf /tmp/pmoel/model

What is this file's own (everything else is MoEL's):

* :class:`PersonaEncoder`: the response speaker's persona sentence vectors (B, P, Dp) --
  frozen sentence-encoder embeddings, computed by the agent -- projected to the hidden size
  and passed through ``persona_layers`` self-attention layers. No position signal and a
  width-1 feed-forward, so the encoding does not depend on the order of the sentences. A
  learned ``null`` slot opens the sequence and is always visible, so a speaker without persona
  sentences (padding only) still gives every query something to attend to.
* :class:`PersonaDecoderLayer`: MoEL's decoder layer plus the persona cross-attention (its
  keys/values are cached for incremental decoding like the context's).
* :class:`PersonaMoelEncoderOutput`: MoEL's encoder state plus the persona encoding and its
  mask, so beam search reorders them with everything else.

Deviations from the seed: it fed one 3,072-d Longformer vector per speaker; here the agent
gives one vector per sentence (default) or their mean (``--persona single``, the seed's
one-vector form) from all-MiniLM-L6-v2.

Shapes: ``B`` batch, ``P`` persona sentences (padded), ``Dp`` sentence-vector size, ``D``
hidden size.
"""
from dataclasses import dataclass
from typing import Dict, NamedTuple, Optional, Tuple

import torch
import torch.nn as nn

from parlai_empathy.modules.emotion_base import WordEmbeddings
from parlai_empathy.modules.moel import (
    MoelConfig,
    MoelDecoder,
    MoelEncoder,
    MoelModel,
)
from parlai_empathy.modules.transformer_layers import (
    DecoderLayer,
    EncoderLayer,
    LayerCache,
    LayerNorm,
    MultiHeadAttention,
)

PERSONA_ORDERS = ("context_first", "persona_first")


@dataclass
class PersonaMoelConfig(MoelConfig):
    """MoEL's config plus the persona encoder's."""

    persona_vector_size: int = 384  # size of one persona sentence vector (all-MiniLM-L6-v2)
    persona_layers: int = 1  # self-attention layers over the persona sentences
    persona_order: str = "context_first"  # which cross-attention comes first in each layer

    def __post_init__(self):
        super().__post_init__()
        for field in ("persona_vector_size", "persona_layers"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"PersonaMoelConfig.{field} must be a positive integer, "
                                 f"got {value!r}")
        if self.persona_order not in PERSONA_ORDERS:
            raise ValueError(f"PersonaMoelConfig.persona_order must be one of "
                             f"{PERSONA_ORDERS}, got {self.persona_order!r}")


class PersonaMoelEncoderOutput(NamedTuple):
    """MoEL's encoder state and the persona encoding; every field is row-indexed first."""

    hidden_states: torch.Tensor  # (B, S, D)
    keep: torch.Tensor  # (B, S) bool
    emotion_logits: torch.Tensor  # (B, E)
    listener_weights: torch.Tensor  # (B, E)
    persona_states: torch.Tensor  # (B, 1 + P, D), position 0 the null slot
    persona_keep: torch.Tensor  # (B, 1 + P) bool, False at padded sentences


class PersonaEncoder(nn.Module):
    """Persona sentence vectors -> a persona encoding (see the module docstring)."""

    def __init__(self, config: PersonaMoelConfig):
        super().__init__()
        self.projection = nn.Linear(config.persona_vector_size, config.hidden_size, bias=False)
        self.null = nn.Parameter(torch.zeros(config.hidden_size))
        layer_kwargs = {**config.layer_kwargs(), "kernel_size": 1}  # position-wise ffn
        self.layers = nn.ModuleList(
            [EncoderLayer(**layer_kwargs) for _ in range(config.persona_layers)]
        )
        self.norm = LayerNorm(config.hidden_size)

    def forward(
        self, vectors: torch.Tensor, keep: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``vectors`` (B, P, Dp), ``keep`` (B, P) bool -> (B, 1 + P, D) and (B, 1 + P)."""
        batch = vectors.size(0)
        x = self.projection(vectors)  # (B, P, D)
        x = torch.cat([self.null.to(x.dtype).expand(batch, 1, -1), x], dim=1)  # (B, 1 + P, D)
        keep = torch.cat([keep.new_ones(batch, 1), keep.bool()], dim=1)
        for layer in self.layers:
            x = layer(x, keep)
        return self.norm(x), keep


class PersonaMoelEncoder(MoelEncoder):
    """MoEL's emotion tracker and gate, and the persona encoder."""

    def __init__(self, config: PersonaMoelConfig, embeddings: WordEmbeddings):
        super().__init__(config, embeddings)
        self.persona_encoder = PersonaEncoder(config)

    def special_parameters(self) -> Tuple[nn.Parameter, ...]:
        return super().special_parameters() + (self.persona_encoder.null,)

    def forward(
        self,
        text_vec: torch.Tensor,
        dialogue_states: Optional[torch.Tensor] = None,
        persona_vectors: Optional[torch.Tensor] = None,
        persona_keep: Optional[torch.Tensor] = None,
        oracle_emotions: Optional[torch.Tensor] = None,
    ) -> PersonaMoelEncoderOutput:
        """MoEL's encoder (see :meth:`MoelEncoder.forward`) plus the persona encoding.

        :param persona_vectors: (B, P, Dp) sentence vectors of the response speaker's
            persona, zero-padded; None: no persona sentences (only the null slot).
        :param persona_keep: (B, P) bool, False at padding; None: all kept.
        """
        moel = super().forward(text_vec, dialogue_states, oracle_emotions)
        if persona_vectors is None:
            persona_vectors = moel.hidden_states.new_zeros(
                text_vec.size(0), 0, self.persona_encoder.projection.in_features
            )
        if persona_keep is None:
            persona_keep = persona_vectors.new_ones(persona_vectors.shape[:2], dtype=torch.bool)
        persona_states, persona_keep = self.persona_encoder(
            persona_vectors.to(moel.hidden_states.dtype), persona_keep
        )
        return PersonaMoelEncoderOutput(*moel, persona_states, persona_keep)


class PersonaDecoderLayer(DecoderLayer):
    """MoEL's decoder layer with a second cross-attention, over the persona encoding."""

    def __init__(self, persona_first: bool = False, **layer_kwargs):
        super().__init__(**layer_kwargs)
        self.persona_first = persona_first
        hidden_size = layer_kwargs["hidden_size"]
        self.norm_persona_attention = LayerNorm(hidden_size)
        self.persona_attention = MultiHeadAttention(
            hidden_size, layer_kwargs["key_depth"], layer_kwargs["value_depth"], hidden_size,
            layer_kwargs["num_heads"], layer_kwargs.get("attention_dropout", 0.0),
        )

    def forward(
        self,
        x: torch.Tensor,
        encoder_output: Optional[torch.Tensor],
        encoder_keep: torch.Tensor,
        cache: Optional[LayerCache] = None,
        persona_output: Optional[torch.Tensor] = None,
        persona_keep: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, LayerCache]:
        """As :meth:`DecoderLayer.forward`, also attending to ``persona_output`` (B, M, D)
        (mask ``persona_keep`` (B, M); None once cached)."""
        cache = cache or {}
        x, new_cache = self.attend_to_prefix(x, cache)
        context = (self.cross_attention, self.norm_cross_attention, "cross", encoder_output,
                   encoder_keep)
        persona = (self.persona_attention, self.norm_persona_attention, "persona",
                   persona_output, persona_keep)
        for attention, norm, name, memory, keep in (
            (persona, context) if self.persona_first else (context, persona)
        ):
            x = self.attend_to_memory(attention, norm, name, x, memory, keep, cache, new_cache)
        return self.feed_forward(x, cache, new_cache)


class PersonaMoelDecoder(MoelDecoder):
    """MoEL's listeners and meta listener, each a :class:`PersonaDecoderLayer`."""

    STATIC_MEMORY = ("encoder_output", "persona_output")

    def make_layer(self) -> nn.Module:
        return PersonaDecoderLayer(
            persona_first=self.config.persona_order == "persona_first",
            **self.config.layer_kwargs(),
        )

    def memory(self, encoder_state: PersonaMoelEncoderOutput) -> Dict[str, torch.Tensor]:
        return {
            **super().memory(encoder_state),
            "persona_output": encoder_state.persona_states,
            "persona_keep": encoder_state.persona_keep,
        }


class PersonaMoelModel(MoelModel):
    """Persona-aware MoEL: ``encoder(text_vec, dialogue_states, persona_vectors,
    persona_keep, oracle_emotions)`` -> :class:`PersonaMoelEncoderOutput`; the rest is
    :class:`MoelModel`."""

    def __init__(self, config: PersonaMoelConfig):
        super(MoelModel, self).__init__(config)  # the family's base, not MoEL's modules
        self.encoder = PersonaMoelEncoder(config, self.embeddings)
        self.decoder = PersonaMoelDecoder(config, self.embeddings)
        self.finish_building()

