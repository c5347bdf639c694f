"""ROUGE-L F-measure (Lin, 2004) with Google's ``rouge-score`` package.

Per response: ``RougeScorer(['rougeL'], use_stemmer=False)`` F-measure of the longest common
subsequence, the best over its references (``score_multi``); the corpus value is the mean
over responses, x100 (as the ROUGE-L column of the ESConv anchors). rouge-score tokenizes by
itself: lower-case, every run of characters other than ``[a-z0-9]`` becomes a space.
:mod:`~parlai_empathy.metrics.parlai_metrics` passes it the paper-tokenized text, so
contractions are expanded the same way on both sides first.
"""
import functools
from typing import Sequence


@functools.lru_cache(maxsize=1)
def _scorer():
    # rouge_score imports nltk (slow): load it on first use
    from rouge_score.rouge_scorer import RougeScorer

    return RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(hyp: str, refs: Sequence[str]) -> float:
    """ROUGE-L F-measure (x100) of ``hyp`` against the best of ``refs``."""
    if isinstance(refs, str):
        refs = [refs]
    if not refs:
        raise ValueError("ROUGE-L needs at least one reference")
    return 100.0 * _scorer().score_multi(list(refs), hyp)["rougeL"].fmeasure
