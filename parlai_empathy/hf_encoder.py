"""The ``transformers`` encoder of the agents built on one (the emotion classifier, CoBERT):
loading it, saving its configuration beside the model file, and wrapping token ids as
``[CLS] ... [SEP]`` within the encoder's length.

* :func:`load_encoder`: with an init model whose ``<model_file>.encoder/config.json`` exists,
  only the architecture is built (every weight comes from the checkpoint, so the folder the
  model was trained from is not needed); otherwise the pretrained weights are read from
  ``--encoder-path`` (default: the packaged all-MiniLM-L6-v2) with ``local_files_only``.
* :func:`save_encoder_config`: ``<model_file>.encoder/`` written whole (atomically).
* :func:`wrap_ids`: ``[CLS] + ids + [SEP]``, truncated to a length that includes both.
"""
import os
from typing import Optional, Sequence

import torch
from parlai.utils import logging

from parlai_empathy.atomic import atomic_write_dir
from parlai_empathy.hf_dictionary import resolve_encoder_path

ENCODER_SUFFIX = ".encoder"


def load_encoder(opt, init_model: Optional[str], who: str = "encoder"):
    """The ``transformers`` encoder of a model (module docstring)."""
    from transformers import AutoConfig, AutoModel

    saved = init_model + ENCODER_SUFFIX if init_model else None
    if saved and os.path.isfile(os.path.join(saved, "config.json")):
        config = AutoConfig.from_pretrained(saved, local_files_only=True)
        return AutoModel.from_config(config)
    path = resolve_encoder_path(opt)
    logging.info(f"{who}: encoder from {path}")
    return AutoModel.from_pretrained(path, local_files_only=True)


def save_encoder_config(model_file: str, encoder) -> None:
    """``<model_file>.encoder/`` := the encoder's ``config.json`` (replaced whole)."""
    atomic_write_dir(model_file + ENCODER_SUFFIX, encoder.config.save_pretrained)


def max_length(encoder, truncate: Optional[int]) -> int:
    """The longest input: ``truncate`` (when positive) within the encoder's positions."""
    limit = encoder.config.max_position_embeddings
    if truncate is not None and truncate > 0:
        limit = min(limit, truncate)
    return limit


def wrap_ids(
    ids: Sequence[int], start: int, end: int, limit: int, keep_last: bool = True
) -> torch.LongTensor:
    """``[start] + ids + [end]`` of at most ``limit`` tokens: the last ids are kept
    (``keep_last``, for contexts) or the first ones (responses)."""
    keep = max(limit - 2, 0)
    ids = [int(i) for i in ids]
    if len(ids) > keep:
        ids = ids[len(ids) - keep:] if keep_last else ids[:keep]
    return torch.LongTensor([start] + ids + [end])
