"""MIME: MIMicking Emotions for Empathetic Response Generation (Majumder et al., EMNLP 2020),
as plain ``nn.Module``\\ s.

Reference: Navonil Majumder, Pengfei Hong, Shanshan Peng, Jiankun Lu, Deepanway Ghosal,
Alexander Gelbukh, Rada Mihalcea, Soujanya Poria. "MIME: MIMicking Emotions for Empathetic
Response Generation". EMNLP 2020; code: declare-lab/MIME (``model/trainer.py``,
``model/VAE_noEmo_posterior.py``, ``model/emotion_input_attention.py``,
``model/complex_res_gate.py``, ``model/decoder_context_v.py``, ``utils/config.py``). The ParlAI
agent around this model is ``parlai.agents.empathy.mime``::

    parlai train_model -m empathy/mime -t empathetic_dialogues \\
        --train-experiencer-only true -mf /tmp/mime/model

The model, as in the original (word embeddings, dialogue states, the context encoder and the
output layer are the family's, :mod:`parlai_empathy.modules.emotion_base`):

* **Context encoder and emotion classifier.** The family's
  :class:`~parlai_empathy.modules.emotion_base.DialogueEncoder` reads ``[CLS] + context``; its
  summary ``c`` (the CLS output) gives the emotion logits ``E (S c)``: a bias-free projection
  ``S`` into the emotion-embedding space, scored against the emotion embeddings ``E`` (one
  vector per emotion, the same table the mixtures below blend).
* **Emotion grouping.** The emotions are split by polarity (ED: MIME's 13 positive / 19
  negative, :func:`parlai_empathy.emotions.polarity_groups`); each group gets one emotion
  vector, a convex mixture of its members' embeddings.
* **Stochastic emotion mixture** (``stochastic=True``, the released code; see the agent's
  docstring for the evidence). A prior ``h = relu(W c)``, per group ``mu_g = A_g h``,
  ``logvar_g = B_g h``; a sample ``z_g = mu_g + eps * exp(logvar_g / 2)`` gives the mixture
  weights ``softmax(C_g z_g)`` -- sampled in training *and* at inference, as the original. A
  posterior per group reads ``[c ; x_g]`` through ``relu(W'_g .)`` and its own mu/logvar
  heads; the loss adds ``KL(posterior || prior)`` summed over groups, latent dimensions and
  batch rows (:func:`gaussian_kl`). What ``x_g`` is (``posterior=``):

  - ``'original'`` (default, the released code): the mean over positions of the
    emotion-input encoding (below) that holds group ``g``. The posterior's own sample is not
    used for generation -- the original draws it and drops it -- so the posterior only shapes
    the prior through the KL term.
  - ``'response'`` (the textbook conditional VAE): the CLS summary of the gold response,
    encoded by the same context encoder; the training mixture then uses the posterior's
    sample, inference the prior's.

  Either way the posterior runs only when the encoder is given the response
  (``response_vec``), which the agent does in training only.
  ``stochastic=False`` (ablation): the weights are the softmax of the classifier's logits
  restricted to the group; no latent, no KL.
* **Emotion mimicry.** The context's polarity (the gold emotion's in training, the predicted
  one's otherwise, as the original) decides which group vector is the *mimicking* emotion
  ``e`` (the context's own polarity) and which the *non-mimicking* ``e~``. Two emotion-input
  encoders (``--emo_input self_att``) each read ``[context encoding ; emotion vector]`` at every
  position: a bias-free projection to the hidden size, timing signal, ``num_layers`` encoder
  layers and a layer norm, giving ``M`` and ``M~``. ``mimicry=False`` (ablation): the first
  encoder always reads the positive group's vector and the second the negative one's,
  whatever the context's polarity -- nothing else changes.
* **Gated combination** (``--emo_combine gate``): ``V = F (sigmoid(G [M ; M~]) * [M ; M~])``.
* **Decoder.** ``num_layers`` decoder layers (the family's) whose cross-attention reads ``V``
  (keys and values, the original's ``DecoderContextV`` called with ``(v, v)``), a final layer
  norm and the untied output layer.

With one group (``emotion_groups`` of one tuple: the agent's ``--emotion-grouping false``, or
ESConv, whose 11 types are all negative) there is no non-mimicking polarity: both
emotion-input encoders read that group's vector, and mimicry has nothing to switch.

Deliberate differences from the released code: the prior's and posterior's negative group use
their own log-variance head (the original returns the positive group's log-variance for both
groups, leaving its negative heads unused); the posterior's mean over positions skips padding;
the gate's sizes follow ``hidden_size`` (the original used ``emb_dim``, equal in its runs);
only the released ``self_att`` / ``gate`` variants exist (not ``cross_att`` / ``att``).

Everything the decoder needs at search time (``V`` and its mask) travels in
:class:`MimeEncoderOutput`, which :meth:`MimeModel.reorder_encoder_states` reorders.

Shapes: ``B`` batch, ``S`` source length (with CLS), ``T`` target length, ``D`` hidden size,
``K`` emotion-embedding size, ``Z`` latent size, ``E`` number of emotions.
"""
from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from parlai_empathy import emotions
from parlai_empathy.modules.emotion_base import (
    STATE_SELF,
    DialogueEncoder,
    EmotionGeneratorConfig,
    EmotionGeneratorModel,
    WordEmbeddings,
)
from parlai_empathy.modules.transformer_layers import (
    DecoderLayer,
    EncoderLayer,
    LayerCache,
    LayerNorm,
    timing_signal,
)

POSTERIORS = ("original", "response")


def _ed_groups() -> Tuple[Tuple[int, ...], ...]:
    return tuple(ids for _, ids in emotions.polarity_groups("ed32"))


@dataclass
class MimeConfig(EmotionGeneratorConfig):
    """MIME's switches on top of the family's sizes; defaults are the released run."""

    #: emotion ids per polarity group (positive first); one or two groups partitioning the
    #: emotions. Default: MIME's ED split.
    emotion_groups: Tuple[Tuple[int, ...], ...] = field(default_factory=_ed_groups)
    mimicry: bool = True  # the context's polarity picks the mimicking group
    stochastic: bool = True  # sampled mixture weights with a prior/posterior and a KL term
    posterior: str = "original"  # original | response (see the module docstring)
    latent_size: int = 300  # the original's out_dim

    def __post_init__(self):
        super().__post_init__()
        name = type(self).__name__
        groups = tuple(tuple(int(i) for i in group) for group in self.emotion_groups)
        self.emotion_groups = groups
        if not 1 <= len(groups) <= 2 or any(not group for group in groups):
            raise ValueError(f"{name}.emotion_groups must be one or two non-empty groups")
        flat = sorted(i for group in groups for i in group)
        if flat != list(range(self.num_emotions)):
            raise ValueError(
                f"{name}.emotion_groups must hold every emotion id 0..{self.num_emotions - 1} "
                f"exactly once, got {groups}"
            )
        if self.posterior not in POSTERIORS:
            raise ValueError(f"{name}.posterior must be one of {POSTERIORS}, got "
                             f"{self.posterior!r}")
        if not isinstance(self.latent_size, int) or self.latent_size < 1:
            raise ValueError(f"{name}.latent_size must be a positive integer")


class MimeEncoderOutput(NamedTuple):
    """What the encoder hands the decoder and the loss; every field is batch-row first."""

    emotion_context: torch.Tensor  # (B, S, D): V, what the decoder attends to
    keep: torch.Tensor  # (B, S) bool, False at padding
    emotion_logits: torch.Tensor  # (B, E)
    context_group: torch.Tensor  # (B,) long: the group (polarity) the context was given
    kl: torch.Tensor  # (B,) KL(posterior || prior) per row; zeros without the posterior


def gaussian_kl(
    mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor
) -> torch.Tensor:
    """``KL(N(mu_q, exp(logvar_q)) || N(mu_p, exp(logvar_p)))`` of diagonal Gaussians, summed
    over the last dimension: ``0.5 * sum(logvar_p - logvar_q + (exp(logvar_q) + (mu_q -
    mu_p)^2) / exp(logvar_p) - 1)``."""
    return 0.5 * (
        logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1.0
    ).sum(-1)


class EmotionInputEncoder(nn.Module):
    """``[context encoding ; emotion vector]`` at every position -> (B, S, D): the original's
    ``EmotionInputEncoder`` in ``self_att`` mode (a transformer encoder of its own)."""

    def __init__(self, config: EmotionGeneratorConfig):
        super().__init__()
        self.input_dropout = nn.Dropout(config.input_dropout)
        self.embedding_proj = nn.Linear(
            config.hidden_size + config.embedding_size, config.hidden_size, bias=False
        )
        self.layers = nn.ModuleList(
            [EncoderLayer(**config.layer_kwargs()) for _ in range(config.num_layers)]
        )
        self.norm = LayerNorm(config.hidden_size)

    def forward(
        self, context: torch.Tensor, emotion: torch.Tensor, keep: torch.Tensor
    ) -> torch.Tensor:
        """``context`` (B, S, D), ``emotion`` (B, K), ``keep`` (B, S) -> (B, S, D)."""
        x = torch.cat([context, emotion.unsqueeze(1).expand(-1, context.size(1), -1)], dim=-1)
        x = self.embedding_proj(self.input_dropout(x))
        x = x + timing_signal(x.size(1), x.size(2), device=x.device, dtype=x.dtype)
        for layer in self.layers:
            x = layer(x, keep)
        return self.norm(x)


class GatedCombination(nn.Module):
    """``F (sigmoid(G [M ; M~]) * [M ; M~])``: the original's ``ComplexResGate``."""

    def __init__(self, size: int):
        super().__init__()
        self.gate = nn.Linear(2 * size, 2 * size)
        self.out = nn.Linear(2 * size, size)

    def forward(self, mimic: torch.Tensor, non_mimic: torch.Tensor) -> torch.Tensor:
        both = torch.cat([mimic, non_mimic], dim=-1)
        return self.out(torch.sigmoid(self.gate(both)) * both)


class _GaussianHeads(nn.Module):
    """``h = relu(W x)``, then one (mu, logvar) pair of linear heads per group."""

    def __init__(self, in_size: int, hidden_size: int, latent_size: int, num_groups: int):
        super().__init__()
        self.hidden = nn.Linear(in_size, hidden_size)
        self.mu = nn.ModuleList([nn.Linear(hidden_size, latent_size) for _ in range(num_groups)])
        self.logvar = nn.ModuleList(
            [nn.Linear(hidden_size, latent_size) for _ in range(num_groups)]
        )

    def forward(self, x: torch.Tensor) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """``x`` (B, in) -> ``[(mu, logvar)]`` per group, each (B, Z)."""
        h = F.relu(self.hidden(x))
        return [(mu(h), logvar(h)) for mu, logvar in zip(self.mu, self.logvar)]


class StochasticMixture(nn.Module):
    """Prior and posterior per polarity group and the latent-to-weights layers."""

    def __init__(self, config: "MimeConfig"):
        super().__init__()
        d, z = config.hidden_size, config.latent_size
        # the prior shares its hidden layer across groups; the posterior has one per group,
        # over [c ; x_g] (the original's h_prior / h_posterior_positive / _negative)
        self.prior = _GaussianHeads(d, d, z, len(config.emotion_groups))
        self.posterior = nn.ModuleList(
            [_GaussianHeads(2 * d, d, z, 1) for _ in config.emotion_groups]
        )
        self.to_weights = nn.ModuleList(
            [nn.Linear(z, len(group)) for group in config.emotion_groups]
        )

    def prior_stats(self, summary: torch.Tensor) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """Context summary (B, D) -> the prior's ``(mu, logvar)`` (B, Z) per group."""
        return self.prior(summary)

    def posterior_stats(
        self, summary: torch.Tensor, extra: torch.Tensor, group: int
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``[c ; x_g]`` (B, 2D) -> the posterior's ``(mu, logvar)`` (B, Z) of one group."""
        return self.posterior[group](torch.cat([summary, extra], dim=-1))[0]

    @staticmethod
    def sample(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def weights(self, z: torch.Tensor, group: int) -> torch.Tensor:
        """Latent (B, Z) -> the group's mixture weights (B, |g|)."""
        return F.softmax(self.to_weights[group](z), dim=-1)


class MimeEncoder(DialogueEncoder):
    """Context encoder, emotion classifier, emotion mixtures, mimicry and the gate."""

    def __init__(self, config: MimeConfig, embeddings: WordEmbeddings):
        super().__init__(config, embeddings)
        del self.emotion_classifier  # MIME scores the context against the emotion embeddings
        self.emotion_query = nn.Linear(config.hidden_size, config.embedding_size, bias=False)
        self.emotion_embeddings = nn.Embedding(config.num_emotions, config.embedding_size)
        group_of = torch.empty(config.num_emotions, dtype=torch.long)
        for index, group in enumerate(config.emotion_groups):
            group_of[list(group)] = index
            self.register_buffer(f"group_ids_{index}", torch.tensor(group), persistent=False)
        self.register_buffer("group_of", group_of, persistent=False)
        self.mixture = StochasticMixture(config) if config.stochastic else None
        self.mimic_encoder = EmotionInputEncoder(config)
        self.non_mimic_encoder = EmotionInputEncoder(config)
        self.combine = GatedCombination(config.hidden_size)

    @property
    def num_groups(self) -> int:
        return len(self.config.emotion_groups)

    def group_ids(self, group: int) -> torch.Tensor:
        return getattr(self, f"group_ids_{group}")

    def classify_emotion(self, hidden_states: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        query = self.emotion_query(self.summarize(hidden_states, keep))  # (B, K)
        return query @ self.emotion_embeddings.weight.t()  # (B, E)

    def _group_vector(self, weights: torch.Tensor, group: int) -> torch.Tensor:
        """Mixture weights (B, |g|) -> the group's emotion vector (B, K)."""
        return weights @ self.emotion_embeddings(self.group_ids(group))

    def _assign(self, vectors: List[torch.Tensor], context_group: torch.Tensor):
        """The per-group vectors (or encodings) -> (mimicking, non-mimicking)."""
        if self.num_groups == 1:
            return vectors[0], vectors[0]
        if not self.config.mimicry:
            return vectors[0], vectors[1]
        first = (context_group == 0).view(-1, *([1] * (vectors[0].dim() - 1)))
        return (torch.where(first, vectors[0], vectors[1]),
                torch.where(first, vectors[1], vectors[0]))

    def _held_by_mimic(self, group: int, context_group: torch.Tensor) -> torch.Tensor:
        """(B,) bool: whether group ``group`` is the one the mimicking encoder read."""
        if self.num_groups == 1:
            return torch.ones_like(context_group, dtype=torch.bool)
        if not self.config.mimicry:
            return torch.full_like(context_group, group == 0, dtype=torch.bool)
        return context_group == group

    def forward(
        self,
        text_vec: torch.Tensor,
        dialogue_states: Optional[torch.Tensor] = None,
        emotion_ids: Optional[torch.Tensor] = None,
        response_vec: Optional[torch.Tensor] = None,
    ) -> MimeEncoderOutput:
        """Encode a batch of contexts.

        :param text_vec: (B, L) token ids, right-padded with ``padding_idx``.
        :param dialogue_states: (B, L) ``STATE_USER`` / ``STATE_SELF`` per token; None treats
            every token as the user's.
        :param emotion_ids: (B,) gold emotions: their polarity picks the mimicking group
            (training); None uses the predicted emotion's.
        :param response_vec: (B, T) the gold response (training only): switches the
            posterior on (and the ``'response'`` posterior reads it).
        """
        hidden, keep = self.encode(text_vec, dialogue_states)
        summary = self.summarize(hidden, keep)  # (B, D)
        logits = self.emotion_query(summary) @ self.emotion_embeddings.weight.t()  # (B, E)
        polarity_from = emotion_ids if emotion_ids is not None else logits.argmax(-1)
        context_group = self.group_of[polarity_from]  # (B,)
        kl = summary.new_zeros(summary.size(0))
        use_posterior = self.mixture is not None and response_vec is not None

        if self.mixture is None:  # ablation: the classifier's weights within each group
            vectors = [
                self._group_vector(F.softmax(logits.index_select(1, self.group_ids(g)), -1), g)
                for g in range(self.num_groups)
            ]
        else:
            prior = self.mixture.prior_stats(summary)
            stats = prior
            if use_posterior and self.config.posterior == "response":
                response, response_keep = self.encode(
                    response_vec, torch.full_like(response_vec, STATE_SELF)
                )
                extra = self.summarize(response, response_keep)
                stats = [self.mixture.posterior_stats(summary, extra, g)
                         for g in range(self.num_groups)]
            vectors = [
                self._group_vector(self.mixture.weights(self.mixture.sample(mu, logvar), g), g)
                for g, (mu, logvar) in enumerate(stats)
            ]
        # vectors: one (B, K) emotion vector per group
        mimic, non_mimic = self._assign(vectors, context_group)  # (B, K) each
        m = self.mimic_encoder(hidden, mimic, keep)  # (B, S, D)
        m_tilde = self.non_mimic_encoder(hidden, non_mimic, keep)  # (B, S, D)

        if use_posterior:
            if self.config.posterior == "original":
                # the posterior of group g reads the mean of the encoding that holds g
                weights = keep.unsqueeze(-1).to(m.dtype)  # (B, S, 1)
                m_mean = (m * weights).sum(1) / weights.sum(1)
                m_tilde_mean = (m_tilde * weights).sum(1) / weights.sum(1)
                stats = []
                for g in range(self.num_groups):
                    held = self._held_by_mimic(g, context_group).unsqueeze(-1)
                    extra = torch.where(held, m_mean, m_tilde_mean)
                    stats.append(self.mixture.posterior_stats(summary, extra, g))
            for (mu_q, logvar_q), (mu_p, logvar_p) in zip(stats, prior):
                kl = kl + gaussian_kl(mu_q, logvar_q, mu_p, logvar_p)

        emotion_context = self.combine(m, m_tilde)  # (B, S, D)
        return MimeEncoderOutput(emotion_context, keep, logits, context_group, kl)


IncrementalState = Dict[str, List[LayerCache]]


class MimeDecoder(nn.Module):
    """Transformer decoder whose cross-attention reads the emotion context ``V``.

    Incremental state: ``{'layers': [layer cache, ...]}``.
    """

    def __init__(self, config: MimeConfig, embeddings: WordEmbeddings):
        super().__init__()
        self.embeddings = embeddings
        self.input_dropout = nn.Dropout(config.input_dropout)
        self.embedding_proj = nn.Linear(config.embedding_size, config.hidden_size, bias=False)
        self.layers = nn.ModuleList(
            [DecoderLayer(**config.layer_kwargs()) for _ in range(config.num_layers)]
        )
        self.norm = LayerNorm(config.hidden_size)

    def forward(
        self,
        input: torch.Tensor,
        encoder_state: MimeEncoderOutput,
        incr_state: Optional[IncrementalState] = None,
    ) -> Tuple[torch.Tensor, IncrementalState]:
        """Decode ``input`` (B, T) (START + prefix) -> hidden states (B, T', D) and the state.

        With ``incr_state`` (the state after ``input[:, :-1]``) only the last token is decoded
        (T' = 1), as ParlAI's search loop expects.
        """
        past = 0
        if incr_state is not None:
            past = input.size(1) - 1
            input = input[:, -1:]
        x = self.embedding_proj(self.input_dropout(self.embeddings(input)))
        x = x + timing_signal(x.size(1), x.size(2), start=past, device=x.device, dtype=x.dtype)
        caches = (incr_state or {}).get("layers") or [None] * len(self.layers)
        new_caches = []
        for layer, cache in zip(self.layers, caches):
            x, cache = layer(
                x, encoder_state.emotion_context, encoder_state.keep, cache
            )
            new_caches.append(cache)
        return self.norm(x), {"layers": new_caches}


class MimeModel(EmotionGeneratorModel):
    """MIME behind ParlAI's ``TorchGeneratorModel`` interface.

    ``encoder(text_vec, dialogue_states=None, emotion_ids=None, response_vec=None)`` ->
    :class:`MimeEncoderOutput`; ``decoder(input, encoder_states, incr_state)``; ``output``
    maps hidden states (B, T, D) to vocabulary logits (B, T, V).
    """

    def __init__(self, config: MimeConfig):
        super().__init__(config)
        self.encoder = MimeEncoder(config, self.embeddings)
        self.decoder = MimeDecoder(config, self.embeddings)
        self.finish_building()

    def reorder_decoder_incremental_state(
        self, incremental_state: IncrementalState, inds
    ) -> IncrementalState:
        if not torch.is_tensor(inds):
            inds = torch.as_tensor(inds, dtype=torch.long)
        return {
            "layers": [
                {key: value.index_select(0, inds.to(value.device)) for key, value in c.items()}
                for c in incremental_state["layers"]
            ]
        }
