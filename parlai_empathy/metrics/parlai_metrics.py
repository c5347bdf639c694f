"""The evaluation suite as ParlAI metrics: corpus-exact under ParlAI's aggregation.

:func:`generation_metrics` is the one definition of the suite; the agent mixin
(:mod:`~parlai_empathy.metrics.agent_mixin`) calls it per batch and the file scorer
(:mod:`~parlai_empathy.metrics.score`) once per corpus. Every text is first tokenized by
:func:`~parlai_empathy.metrics.tokenization.paper_tokenize` (``tokenizer='paper'``), except
for VADER, which reads raw text.

==============  ============================================================================
name            definition
==============  ============================================================================
``bleu1``..     sacrebleu corpus BLEU-n (cumulative, n = 1..4; ``tok:13a``, lower-cased,
``bleu4``       ``exp`` smoothing) on the paper tokens joined by spaces; x100
``mbleu``       multi-bleu.perl BLEU-4 on the paper tokens -- the MoEL/MIME "BLEU"; x100
``rougeL``      mean ROUGE-L F-measure (rouge-score, best reference); x100
``dist1``,      corpus Distinct-1/2: distinct n-grams / all n-grams of the responses; x100
``dist2``
``resp_len``    mean number of paper tokens per response
``vader_delta`` mean VADER compound(response) - compound(first reference)
``meteor``      mean NLTK METEOR (best reference), in [0, 1]; only when NLTK's WordNet data
                is installed, else left out with a warning (:mod:`.meteor`)
``emotion_acc`` emotion accuracy in [0, 1], recorded by agents that predict emotions
                (:func:`emotion_accuracy_metrics`)
==============  ============================================================================

The names avoid ParlAI's own ``bleu-4``, ``rouge-L``, ``interdistinct-1`` and ``f1`` (which
use ParlAI's normalization and sentence-level averaging). BLEU and Distinct are corpus
statistics, not means of per-example scores: their Metric objects carry sufficient
statistics (:class:`~parlai_empathy.metrics.bleu.BleuStats`,
:class:`~parlai_empathy.metrics.distinct.DistinctStats`) that ``+`` sums, so a report over
batches or workers equals the score of the whole corpus. All of them pickle (distributed
all-gather) and ``value()`` is a float (``--report-filename``).
"""
from typing import Dict, Hashable, List, Sequence, Union

from parlai.core.metrics import AverageMetric, Metric
from parlai.utils.misc import warn_once

from parlai_empathy.metrics.bleu import (
    MAX_ORDER,
    BleuStats,
    corpus_stats,
    multi_bleu_score,
    sacrebleu_score,
    sacrebleu_stats,
)
from parlai_empathy.metrics.distinct import DistinctStats, distinct_stats
from parlai_empathy.metrics.emotion import emotion_hits
from parlai_empathy.metrics.meteor import SKIPPED as METEOR_SKIPPED
from parlai_empathy.metrics.meteor import meteor, wordnet_available
from parlai_empathy.metrics.rouge import rouge_l
from parlai_empathy.metrics.sentiment import vader_delta
from parlai_empathy.metrics.tokenization import get_tokenizer

METRIC_DESCRIPTIONS = {
    **{
        f"bleu{n}": (
            f"sacrebleu corpus BLEU-{n} (13a, lower-cased, exp smoothing) on the tokens, x100"
        )
        for n in range(1, MAX_ORDER + 1)
    },
    "mbleu": "multi-bleu.perl corpus BLEU-4 on the tokens (the MoEL/MIME BLEU), x100",
    "rougeL": "mean ROUGE-L F-measure (rouge-score, best reference), x100",
    "dist1": "corpus Distinct-1: distinct unigrams / all unigrams of the responses, x100",
    "dist2": "corpus Distinct-2: distinct bigrams / all bigrams of the responses, x100",
    "resp_len": "mean response length in tokens",
    "vader_delta": "mean VADER compound(response) - compound(reference)",
    "meteor": "mean NLTK METEOR (best reference), in [0, 1]; needs NLTK's WordNet data",
    "emotion_acc": "emotion accuracy (fraction of examples with the gold emotion)",
}


class _CorpusMetric(Metric):
    """A metric computed from summed corpus statistics.

    Macro-averaged across tasks, like ParlAI's own corpus BLEU: in a multitask world each
    task reports the agent's metrics, and summing the same statistics twice would change
    Distinct-n.
    """

    @property
    def macro_average(self) -> bool:
        return True


class SacreBleuMetric(_CorpusMetric):
    """sacrebleu corpus BLEU-``order`` (x100) from :class:`BleuStats`."""

    def __init__(self, stats: BleuStats, order: int = MAX_ORDER):
        self.stats = stats
        self.order = order

    def __add__(self, other: "SacreBleuMetric") -> "SacreBleuMetric":
        if other is None:
            return self
        if other.order != self.order:
            raise ValueError(f"cannot add BLEU-{self.order} and BLEU-{other.order}")
        return SacreBleuMetric(self.stats + other.stats, self.order)

    def value(self) -> float:
        return float(sacrebleu_score(self.stats, self.order))


class MultiBleuMetric(_CorpusMetric):
    """multi-bleu.perl corpus BLEU-4 (x100) from :class:`BleuStats`."""

    def __init__(self, stats: BleuStats):
        self.stats = stats

    def __add__(self, other: "MultiBleuMetric") -> "MultiBleuMetric":
        if other is None:
            return self
        return MultiBleuMetric(self.stats + other.stats)

    def value(self) -> float:
        return float(multi_bleu_score(self.stats).bleu)


class DistinctMetric(_CorpusMetric):
    """Corpus Distinct-n (x100) from :class:`DistinctStats`."""

    def __init__(self, stats: DistinctStats):
        self.stats = stats

    def __add__(self, other: "DistinctMetric") -> "DistinctMetric":
        if other is None:
            return self
        return DistinctMetric(self.stats + other.stats)

    def value(self) -> float:
        return float(self.stats.score())


def generation_metrics(
    hyps: Sequence[str],
    refs: Sequence[Union[str, Sequence[str]]],
    tokenizer: str = "paper",
) -> Dict[str, Metric]:
    """The suite's metrics for responses ``hyps`` and their references.

    :param hyps: generated responses, raw text.
    :param refs: per response, its reference or list of references (raw text).
    :param tokenizer: ``paper`` (MoEL/MIME preprocessing) or ``whitespace`` (already
        tokenized text).
    :return: ``{name: Metric}`` for bleu1..bleu4, mbleu, rougeL, dist1, dist2, resp_len,
        vader_delta and (with NLTK's WordNet data) meteor; add these to the same names of
        another batch to aggregate.
    """
    refs = [[r] if isinstance(r, str) else list(r) for r in refs]
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} responses but {len(refs)} reference sets")
    if not all(refs):
        raise ValueError("every response needs at least one reference")
    tokenize = get_tokenizer(tokenizer)
    hyp_tokens = [tokenize(h) for h in hyps]
    ref_tokens = [[tokenize(r) for r in rs] for rs in refs]
    hyp_texts = [" ".join(tokens) for tokens in hyp_tokens]
    ref_texts = [[" ".join(tokens) for tokens in rs] for rs in ref_tokens]
    n = len(hyps)

    bleu_stats = sacrebleu_stats(hyp_texts, ref_texts)
    metrics: Dict[str, Metric] = {
        f"bleu{order}": SacreBleuMetric(bleu_stats, order) for order in range(1, MAX_ORDER + 1)
    }
    metrics["mbleu"] = MultiBleuMetric(corpus_stats(hyp_tokens, ref_tokens))
    metrics["rougeL"] = AverageMetric(
        sum(rouge_l(h, rs) for h, rs in zip(hyp_texts, ref_texts)), n
    )
    metrics["dist1"] = DistinctMetric(distinct_stats(hyp_tokens, 1))
    metrics["dist2"] = DistinctMetric(distinct_stats(hyp_tokens, 2))
    metrics["resp_len"] = AverageMetric(sum(len(tokens) for tokens in hyp_tokens), n)
    metrics["vader_delta"] = AverageMetric(
        sum(vader_delta(h, rs[0]) for h, rs in zip(hyps, refs)), n
    )
    if wordnet_available():
        metrics["meteor"] = AverageMetric(
            sum(meteor(h, rs) for h, rs in zip(hyp_tokens, ref_tokens)), n
        )
    else:
        warn_once(METEOR_SKIPPED)
    return metrics


def emotion_accuracy_metrics(
    predicted: Sequence[Hashable], gold: Sequence[Hashable]
) -> List[AverageMetric]:
    """Per-example ``emotion_acc`` for ``TorchAgent.record_local_metric``.

    In ``compute_loss``: ``self.record_local_metric('emotion_acc',
    emotion_accuracy_metrics(logits.argmax(-1), batch.emotion_ids))``.
    """
    return [AverageMetric(hit, 1) for hit in emotion_hits(predicted, gold)]
