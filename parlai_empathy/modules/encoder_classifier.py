"""A text classifier over a ``transformers`` encoder (BERT family), as a plain ``nn.Module``.

The encoder (e.g. ``BertModel``: all-MiniLM-L6-v2, bert-base-uncased) reads
``[CLS] text [SEP]``; the sentence vector is the CLS output (``pooling='cls'``, as BERT's
fine-tuning recipe) or the mean of the non-padding outputs (``pooling='mean'``, as
sentence-transformers trained all-MiniLM-L6-v2); dropout and one linear layer give one logit
per class. The agent is ``parlai.agents.empathy.emotion_classifier``::

    parlai train_model -m empathy/emotion_classifier -t ed_emotion -mf /tmp/emo/model

Shapes: ``B`` batch, ``S`` sequence length, ``D`` encoder hidden size, ``C`` classes.
"""
from dataclasses import dataclass

import torch
from torch import nn

POOLINGS = ("mean", "cls")


@dataclass
class EncoderClassifierConfig:
    num_classes: int  # C
    pooling: str = "mean"  # how the sentence vector is read from the encoder outputs
    dropout: float = 0.1  # before the output layer

    def __post_init__(self):
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {self.num_classes}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class EncoderClassifier(nn.Module):
    def __init__(self, encoder: nn.Module, config: EncoderClassifierConfig):
        super().__init__()
        self.config = config
        self.encoder = encoder
        self.dropout = nn.Dropout(config.dropout)
        self.additional_linear_layer = nn.Linear(encoder.config.hidden_size, config.num_classes)

    def forward(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``input_ids`` (B, S) starting with [CLS], ``attention_mask`` (B, S) true on
        tokens -> logits (B, C)."""
        mask = attention_mask.long()
        outputs = self.encoder(input_ids=input_ids, attention_mask=mask)
        hidden = outputs.last_hidden_state  # (B, S, D)
        if self.config.pooling == "cls":
            sentence = hidden[:, 0]
        else:
            weights = mask.unsqueeze(-1).to(hidden.dtype)  # (B, S, 1)
            sentence = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return self.additional_linear_layer(self.dropout(sentence))  # (B, C)
