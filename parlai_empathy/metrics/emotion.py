"""Emotion accuracy: the fraction of examples whose predicted emotion is the gold one.

Reported as a fraction in [0, 1] (``emotion_acc``), like MoEL/MIME's "Accuracy" (0.3488
for MIME on the 32 ED emotions). Labels are compared after ``str(label).strip().lower()``,
so class ids (lists or tensors), ``"Guilty"`` and ``"guilty "`` all work. Agents record it
per example with :func:`parlai_empathy.metrics.parlai_metrics.emotion_accuracy_metrics`.
"""
from typing import Hashable, Sequence


def normalize_label(label: Hashable) -> str:
    """Compare emotion labels case- and whitespace-insensitively."""
    return str(label).strip().lower()


def _as_list(labels) -> list:
    # tensors and arrays: compare their numbers, not "tensor(3)"
    return labels.tolist() if hasattr(labels, "tolist") else list(labels)


def emotion_hits(predicted: Sequence[Hashable], gold: Sequence[Hashable]) -> list:
    """1 where ``predicted[i]`` equals ``gold[i]``, else 0."""
    predicted, gold = _as_list(predicted), _as_list(gold)
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predicted emotions but {len(gold)} gold ones")
    return [int(normalize_label(p) == normalize_label(g)) for p, g in zip(predicted, gold)]


def emotion_accuracy(predicted: Sequence[Hashable], gold: Sequence[Hashable]) -> float:
    """Accuracy of ``predicted`` against ``gold`` (0 for no examples)."""
    hits = emotion_hits(predicted, gold)
    return sum(hits) / len(hits) if hits else 0.0
