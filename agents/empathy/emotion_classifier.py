"""Emotion classifier: a ``transformers`` encoder (default all-MiniLM-L6-v2) fine-tuned as a
ParlAI ``TorchClassifierAgent``; see :mod:`parlai_empathy.emotion_classifier`::

    parlai train_model -m empathy/emotion_classifier -t ed_emotion -mf /tmp/emo/model \
        -bs 32 --max-train-steps 2000 -vmt accuracy -vmm max
    parlai interactive -mf /tmp/emo/model
"""
from parlai_empathy.emotion_classifier import EmotionClassifierAgent

__all__ = ["EmotionClassifierAgent"]
