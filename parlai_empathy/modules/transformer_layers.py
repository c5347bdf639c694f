"""The transformer layers of MoEL (Lin et al., EMNLP 2019), written after HLTCHKUST/MoEL.

MoEL's layers (``model/common_layer.py`` of the original code, itself after kolloldas/torchnlp
and tensor2tensor) differ from ParlAI's ``transformer/modules`` in ways that change the
numbers, so they are reimplemented here rather than reused:

* attention projects to a *total key depth* and *total value depth* (40 in MoEL) that differ
  from the model size (300), with no biases;
* layer normalisation comes *before* each sub-layer (pre-norm), and normalises with the
  unbiased standard deviation plus ``eps`` outside the square root;
* the position-wise feed-forward block is two width-3 convolutions, padded on both sides in
  the encoder and on the left (causal) in the decoder, with a ReLU after *both* of them;
* dropout is applied to the residual sum, ``dropout(x + sublayer(x))``;
* positions are tensor2tensor's sinusoids (all sines, then all cosines).

Every layer here supports incremental decoding: the decoder layer caches its self-attention
keys/values, the cross-attention keys/values of the encoder output, and the last
``kernel_size - 1`` inputs of each causal convolution, so one token at a time gives the same
outputs as the whole sequence at once.

Shapes: ``B`` batch, ``T`` query length, ``S`` key length, ``D`` model size, ``H`` heads.
"""
import math
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

LayerCache = Dict[str, torch.Tensor]


def timing_signal(
    length: int,
    channels: int,
    start: int = 0,
    device: Optional[torch.device] = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """tensor2tensor's sinusoidal positions ``start .. start+length-1``: (1, length, channels).

    The first ``channels // 2`` channels are sines, the next ones cosines (not interleaved),
    with timescales from 1 to 1e4; an odd last channel is zero.
    """
    num_timescales = channels // 2
    log_increment = math.log(1.0e4) / max(num_timescales - 1, 1)
    inv_timescales = torch.exp(
        torch.arange(num_timescales, device=device, dtype=torch.float64) * -log_increment
    )
    positions = torch.arange(start, start + length, device=device, dtype=torch.float64)
    scaled = positions[:, None] * inv_timescales[None, :]  # (length, channels // 2)
    signal = torch.cat([torch.sin(scaled), torch.cos(scaled)], dim=1)
    signal = F.pad(signal, (0, channels % 2))
    return signal.to(dtype).unsqueeze(0)


class LayerNorm(nn.Module):
    """``gamma * (x - mean) / (std + eps) + beta`` with the unbiased ``std``, as in MoEL and MIME.

    Not ``nn.LayerNorm``: that divides by ``sqrt(biased variance + eps)``.
    """

    def __init__(self, size: int, eps: float = 1e-6):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(size))
        self.beta = nn.Parameter(torch.zeros(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(-1, keepdim=True)
        std = x.std(-1, keepdim=True)
        return self.gamma * (x - mean) / (std + self.eps) + self.beta


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention with separate key and value depths.

    :param input_size: size of the query and key/value inputs (D).
    :param key_depth: total size of the query/key projections, split over the heads.
    :param value_depth: total size of the value projection, split over the heads.
    :param output_size: size of the output projection.
    """

    def __init__(
        self,
        input_size: int,
        key_depth: int,
        value_depth: int,
        output_size: int,
        num_heads: int,
        dropout: float = 0.0,
    ):
        super().__init__()
        if key_depth % num_heads or value_depth % num_heads:
            raise ValueError(
                f"key depth {key_depth} and value depth {value_depth} must be divisible "
                f"by the number of heads {num_heads}"
            )
        self.num_heads = num_heads
        self.dropout = dropout
        self.query_proj = nn.Linear(input_size, key_depth, bias=False)
        self.key_proj = nn.Linear(input_size, key_depth, bias=False)
        self.value_proj = nn.Linear(input_size, value_depth, bias=False)
        self.output_proj = nn.Linear(value_depth, output_size, bias=False)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, depth = x.shape
        # (B, L, depth) -> (B, H, L, depth / H)
        return x.view(batch, length, self.num_heads, depth // self.num_heads).transpose(1, 2)

    def forward(
        self,
        query: torch.Tensor,
        key_value: Optional[torch.Tensor],
        mask: Optional[torch.Tensor] = None,
        cache: Optional[LayerCache] = None,
        static_kv: bool = False,
    ) -> Tuple[torch.Tensor, LayerCache]:
        """Attend from ``query`` (B, T, D) over ``key_value`` (B, S, D).

        :param mask: bool, broadcastable to (B, T, S'); True where attention is allowed (S'
            counts cached keys too).
        :param cache: ``{'key', 'value'}`` of earlier calls, each (B, H, S_prev, depth / H).
        :param static_kv: the keys/values never change (cross-attention): a cache is reused
            as is and ``key_value`` may be None; otherwise new keys/values are appended.
        :return: output (B, T, output_size) and the new cache.
        """
        q = self._split_heads(self.query_proj(query))  # (B, H, T, dk)
        if static_kv and cache:
            k, v = cache["key"], cache["value"]
        else:
            k = self._split_heads(self.key_proj(key_value))  # (B, H, S, dk)
            v = self._split_heads(self.value_proj(key_value))  # (B, H, S, dv)
            if cache:
                k = torch.cat([cache["key"], k], dim=2)
                v = torch.cat([cache["value"], v], dim=2)
        attn_mask = None if mask is None else mask.unsqueeze(1)  # (B, 1, T, S)
        context = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )  # (B, H, T, dv)
        batch, _, length, _ = context.shape
        context = context.transpose(1, 2).reshape(batch, length, -1)  # (B, T, value_depth)
        return self.output_proj(context), {"key": k, "value": v}


class ConvFeedForward(nn.Module):
    """MoEL's position-wise block: conv(k) -> ReLU -> dropout -> conv(k) -> ReLU -> dropout.

    ``causal=True`` pads on the left only (the decoder); otherwise both sides (the encoder).
    The ReLU after the second convolution is the original's (its loop applies the activation
    after every layer).
    """

    def __init__(
        self,
        input_size: int,
        filter_size: int,
        output_size: int,
        kernel_size: int = 3,
        causal: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.kernel_size = kernel_size
        self.causal = causal
        self.conv_in = nn.Conv1d(input_size, filter_size, kernel_size)
        self.conv_out = nn.Conv1d(filter_size, output_size, kernel_size)
        self.dropout = nn.Dropout(dropout)

    def _convolve(
        self, conv: nn.Conv1d, x: torch.Tensor, history: Optional[torch.Tensor]
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        width = self.kernel_size - 1
        if self.causal:
            if history is None:
                history = x.new_zeros(x.size(0), width, x.size(2))
            x = torch.cat([history, x], dim=1)  # (B, width + T, C)
            new_history = x[:, x.size(1) - width :] if width else x[:, :0]
            padded = x.transpose(1, 2)
        else:
            new_history = None
            k = self.kernel_size
            padded = F.pad(x.transpose(1, 2), (k // 2, (k - 1) // 2))  # as the original
        return conv(padded).transpose(1, 2), new_history  # (B, T, C_out)

    def forward(
        self,
        x: torch.Tensor,
        keep: Optional[torch.Tensor] = None,
        cache: Optional[LayerCache] = None,
    ) -> Tuple[torch.Tensor, LayerCache]:
        """``x`` (B, T, D) -> (B, T, output_size).

        :param keep: (B, T) bool, False at padding: padded positions are zeroed before each
            convolution, so padding never reaches a real position (see the encoder layer).
        :param cache: causal only: ``{'conv_in', 'conv_out'}``, the last ``kernel_size - 1``
            inputs of each convolution.
        """
        cache = cache or {}
        if keep is not None:
            x = x * keep.unsqueeze(-1).to(x.dtype)
        hidden, history_in = self._convolve(self.conv_in, x, cache.get("conv_in"))
        hidden = self.dropout(F.relu(hidden))
        if keep is not None:
            hidden = hidden * keep.unsqueeze(-1).to(hidden.dtype)
        out, history_out = self._convolve(self.conv_out, hidden, cache.get("conv_out"))
        out = self.dropout(F.relu(out))
        new_cache = {}
        if self.causal:
            new_cache = {"conv_in": history_in, "conv_out": history_out}
        return out, new_cache


class EncoderLayer(nn.Module):
    """Pre-norm self-attention and convolutional feed-forward, MoEL's ``EncoderLayer``."""

    def __init__(
        self,
        hidden_size: int,
        key_depth: int,
        value_depth: int,
        filter_size: int,
        num_heads: int,
        kernel_size: int = 3,
        layer_dropout: float = 0.0,
        attention_dropout: float = 0.0,
        relu_dropout: float = 0.0,
    ):
        super().__init__()
        self.norm_attention = LayerNorm(hidden_size)
        self.self_attention = MultiHeadAttention(
            hidden_size, key_depth, value_depth, hidden_size, num_heads, attention_dropout
        )
        self.norm_ffn = LayerNorm(hidden_size)
        self.ffn = ConvFeedForward(
            hidden_size, filter_size, hidden_size, kernel_size, causal=False,
            dropout=relu_dropout,
        )
        self.dropout = nn.Dropout(layer_dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """``x`` (B, S, D), ``keep`` (B, S) bool (False at padding) -> (B, S, D)."""
        h = self.norm_attention(x)
        y, _ = self.self_attention(h, h, mask=keep.unsqueeze(1))
        x = self.dropout(x + y)
        h = self.norm_ffn(x)
        # The original lets padding leak into the last real token through the width-3
        # convolution (so outputs depend on the batch's padding); we zero padded positions.
        y, _ = self.ffn(h, keep=keep)
        return self.dropout(x + y)


class DecoderLayer(nn.Module):
    """Pre-norm causal self-attention, cross-attention and causal convolutional
    feed-forward, MoEL's ``DecoderLayer``; every listener and the meta listener is one."""

    def __init__(
        self,
        hidden_size: int,
        key_depth: int,
        value_depth: int,
        filter_size: int,
        num_heads: int,
        kernel_size: int = 3,
        layer_dropout: float = 0.0,
        attention_dropout: float = 0.0,
        relu_dropout: float = 0.0,
    ):
        super().__init__()
        self.norm_self_attention = LayerNorm(hidden_size)
        self.self_attention = MultiHeadAttention(
            hidden_size, key_depth, value_depth, hidden_size, num_heads, attention_dropout
        )
        self.norm_cross_attention = LayerNorm(hidden_size)
        self.cross_attention = MultiHeadAttention(
            hidden_size, key_depth, value_depth, hidden_size, num_heads, attention_dropout
        )
        self.norm_ffn = LayerNorm(hidden_size)
        self.ffn = ConvFeedForward(
            hidden_size, filter_size, hidden_size, kernel_size, causal=True,
            dropout=relu_dropout,
        )
        self.dropout = nn.Dropout(layer_dropout)

    def forward(
        self,
        x: torch.Tensor,
        encoder_output: torch.Tensor,
        encoder_keep: torch.Tensor,
        cache: Optional[LayerCache] = None,
    ) -> Tuple[torch.Tensor, LayerCache]:
        """Decode ``x`` (B, T, D) against ``encoder_output`` (B, S, D).

        :param encoder_keep: (B, S) bool, False at the encoder's padding.
        :param cache: this layer's state after the earlier positions (incremental decoding);
            None decodes ``x`` from position 0.
        :return: (B, T, D) and the state after the last position of ``x``.
        """
        cache = cache or {}
        x, new_cache = self.attend_to_prefix(x, cache)
        x = self.attend_to_memory(
            self.cross_attention, self.norm_cross_attention, "cross", x, encoder_output,
            encoder_keep, cache, new_cache,
        )
        return self.feed_forward(x, cache, new_cache)

    # The three sub-blocks, for layers that attend to more memories (persona-aware MoEL).

    def attend_to_prefix(
        self, x: torch.Tensor, cache: LayerCache
    ) -> Tuple[torch.Tensor, LayerCache]:
        """Causal self-attention over the earlier positions (cached) and ``x`` (B, T, D)."""
        past = cache["self_key"].size(2) if "self_key" in cache else 0
        length = x.size(1)
        # query i (absolute position past + i) may see keys 0 .. past + i
        causal = torch.ones(length, past + length, dtype=torch.bool, device=x.device).tril(past)

        h = self.norm_self_attention(x)
        self_cache = {"key": cache["self_key"], "value": cache["self_value"]} if past else None
        y, self_cache = self.self_attention(h, h, mask=causal.unsqueeze(0), cache=self_cache)
        new_cache = {"self_key": self_cache["key"], "self_value": self_cache["value"]}
        return self.dropout(x + y), new_cache

    def attend_to_memory(
        self,
        attention: "MultiHeadAttention",
        norm: LayerNorm,
        name: str,
        x: torch.Tensor,
        memory: Optional[torch.Tensor],
        memory_keep: torch.Tensor,
        cache: LayerCache,
        new_cache: LayerCache,
    ) -> torch.Tensor:
        """Pre-norm cross-attention of ``x`` (B, T, D) over ``memory`` (B, M, D) (None when
        its keys/values are in ``cache`` under ``name + '_key'``/``'_value'``); the keys and
        values go into ``new_cache``."""
        h = norm(x)
        kv_cache = (
            {"key": cache[f"{name}_key"], "value": cache[f"{name}_value"]}
            if f"{name}_key" in cache
            else None
        )
        y, kv_cache = attention(
            h, memory, mask=memory_keep.unsqueeze(1), cache=kv_cache, static_kv=True,
        )
        new_cache[f"{name}_key"], new_cache[f"{name}_value"] = kv_cache["key"], kv_cache["value"]
        return self.dropout(x + y)

    def feed_forward(
        self, x: torch.Tensor, cache: LayerCache, new_cache: LayerCache
    ) -> Tuple[torch.Tensor, LayerCache]:
        """The causal convolutional block; its history joins ``new_cache``."""
        h = self.norm_ffn(x)
        y, ffn_cache = self.ffn(h, cache=cache)
        x = self.dropout(x + y)
        new_cache.update(ffn_cache)
        return x, new_cache
