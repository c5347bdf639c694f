"""One evaluation suite for every generator: ParlAI metrics, a file scorer, the papers' BLEU.

* :mod:`.tokenization` -- the MoEL/MIME word tokenization applied before every overlap metric
* :mod:`.bleu` -- multi-bleu.perl (``mbleu``) and sacrebleu (``bleu1``..``bleu4``) corpus BLEU
* :mod:`.distinct`, :mod:`.rouge`, :mod:`.sentiment`, :mod:`.emotion` -- the other metrics
* :mod:`.parlai_metrics` -- ParlAI ``Metric`` classes and :func:`generation_metrics`, the suite
* :mod:`.agent_mixin` -- :class:`GenerationMetricsMixin` for TorchGeneratorAgent subclasses
* :mod:`.score` -- ``python -m parlai_empathy.metrics.score --hyp H --ref R`` (also
  ``parlai empathy_score``)
"""
from parlai_empathy.metrics.agent_mixin import GenerationMetricsMixin
from parlai_empathy.metrics.bleu import BleuStats, multi_bleu
from parlai_empathy.metrics.distinct import distinct_n
from parlai_empathy.metrics.emotion import emotion_accuracy
from parlai_empathy.metrics.parlai_metrics import (
    METRIC_DESCRIPTIONS,
    emotion_accuracy_metrics,
    generation_metrics,
)
from parlai_empathy.metrics.rouge import rouge_l
from parlai_empathy.metrics.sentiment import vader_delta
from parlai_empathy.metrics.tokenization import paper_tokenize

__all__ = [
    "BleuStats",
    "GenerationMetricsMixin",
    "METRIC_DESCRIPTIONS",
    "distinct_n",
    "emotion_accuracy",
    "emotion_accuracy_metrics",
    "generation_metrics",
    "multi_bleu",
    "paper_tokenize",
    "rouge_l",
    "vader_delta",
]
