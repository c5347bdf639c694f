"""Corpus BLEU from sufficient statistics: multi-bleu.perl (the papers' BLEU) and sacrebleu.

Corpus BLEU is a function of ten integers summed over sentences (:class:`BleuStats`):
clipped n-gram matches and hypothesis n-gram totals for n = 1..4, the hypothesis length and
the effective reference length. Adding the statistics of two parts of a corpus and scoring
the sum is exactly the score of the whole corpus, which is what ParlAI's metric aggregation
(batches, workers) needs.

Two scores are read off the same kind of statistics:

* :func:`multi_bleu` / :func:`multi_bleu_score` -- a re-implementation of Moses'
  ``multi-bleu.perl`` corpus algorithm, the BLEU of MoEL and MIME
  (``moses_multi_bleu(..., lowercase=True)``). Tokens are whitespace-separated, so
  tokenization is up to the caller (see :mod:`parlai_empathy.metrics.tokenization`).
  Per sentence: hypothesis n-gram counts are clipped by the highest count of that n-gram in
  any one reference; the reference length is that of the reference closest in length to
  the hypothesis (the shorter one on ties). Corpus: precisions p_n = matches_n / totals_n,
  BLEU = BP * exp(mean(log p_1..p_4)) * 100 with BP = exp(1 - ref_len / hyp_len) when
  hyp_len < ref_len, else 1; BLEU is 0 when any p_n is 0 (no smoothing).
* :func:`sacrebleu_stats` / :func:`sacrebleu_score` -- ``sacrebleu`` corpus BLEU-n
  (cumulative: geometric mean of p_1..p_n) with ``tokenize='13a'``, ``lowercase=True`` and
  its default ``exp`` smoothing; :data:`SACREBLEU_SIGNATURE` names the configuration.
"""
import functools
import math
from collections import Counter
from dataclasses import dataclass
from typing import List, NamedTuple, Sequence, Tuple, Union

from parlai_empathy.metrics.tokenization import perl_split

MAX_ORDER = 4

References = Union[str, Sequence[str]]


@dataclass(frozen=True)
class BleuStats:
    """Sufficient statistics of corpus BLEU up to 4-grams (summed over sentences)."""

    matches: Tuple[int, ...] = (0,) * MAX_ORDER  # clipped matches, n = 1..4
    totals: Tuple[int, ...] = (0,) * MAX_ORDER  # hypothesis n-grams, n = 1..4
    hyp_len: int = 0
    ref_len: int = 0  # sum of the closest reference lengths

    def __add__(self, other: "BleuStats") -> "BleuStats":
        return BleuStats(
            matches=tuple(a + b for a, b in zip(self.matches, other.matches)),
            totals=tuple(a + b for a, b in zip(self.totals, other.totals)),
            hyp_len=self.hyp_len + other.hyp_len,
            ref_len=self.ref_len + other.ref_len,
        )


class MultiBleu(NamedTuple):
    """multi-bleu.perl's output line, as numbers."""

    bleu: float  # x100
    precisions: Tuple[float, ...]  # x100, n = 1..4
    brevity_penalty: float
    ratio: float
    hyp_len: int
    ref_len: int

    def __str__(self):
        precisions = "/".join(f"{p:.1f}" for p in self.precisions)
        return (
            f"BLEU = {self.bleu:.2f}, {precisions} (BP={self.brevity_penalty:.3f}, "
            f"ratio={self.ratio:.3f}, hyp_len={self.hyp_len}, ref_len={self.ref_len})"
        )


def _ngram_counts(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _closest_ref_len(hyp_len: int, ref_lens: Sequence[int]) -> int:
    """Length of the reference closest to ``hyp_len``; the shorter one on ties."""
    return min(ref_lens, key=lambda length: (abs(hyp_len - length), length))


def sentence_stats(hyp: Sequence[str], refs: Sequence[Sequence[str]]) -> BleuStats:
    """multi-bleu.perl's statistics of one tokenized hypothesis against its references."""
    if not refs:
        raise ValueError("every hypothesis needs at least one reference")
    matches, totals = [], []
    for n in range(1, MAX_ORDER + 1):
        hyp_counts = _ngram_counts(hyp, n)
        max_ref_counts: Counter = Counter()
        for ref in refs:
            max_ref_counts |= _ngram_counts(ref, n)  # | keeps the maximum count
        matches.append(sum(min(c, max_ref_counts[g]) for g, c in hyp_counts.items()))
        totals.append(sum(hyp_counts.values()))
    return BleuStats(
        matches=tuple(matches),
        totals=tuple(totals),
        hyp_len=len(hyp),
        ref_len=_closest_ref_len(len(hyp), [len(ref) for ref in refs]),
    )


def corpus_stats(
    hyps: Sequence[Sequence[str]], refs: Sequence[Sequence[Sequence[str]]]
) -> BleuStats:
    """Sum of :func:`sentence_stats` over a tokenized corpus (``refs[i]``: references of i)."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} reference sets")
    return sum((sentence_stats(h, r) for h, r in zip(hyps, refs)), BleuStats())


def multi_bleu_score(stats: BleuStats) -> MultiBleu:
    """multi-bleu.perl's corpus BLEU (and the numbers it prints) from summed statistics."""
    precisions = tuple(
        m / t if t else 0.0 for m, t in zip(stats.matches, stats.totals)
    )
    if stats.ref_len == 0 or stats.hyp_len == 0:
        # the script prints 0 for no reference words and divides by zero for no output
        return MultiBleu(
            0.0, tuple(100 * p for p in precisions), 0.0, 0.0, stats.hyp_len, stats.ref_len
        )
    brevity_penalty = 1.0
    if stats.hyp_len < stats.ref_len:
        brevity_penalty = math.exp(1 - stats.ref_len / stats.hyp_len)
    if all(p > 0 for p in precisions):
        bleu = brevity_penalty * math.exp(sum(math.log(p) for p in precisions) / MAX_ORDER)
    else:
        bleu = 0.0  # the script's log(0) = -9999999999
    return MultiBleu(
        bleu=100 * bleu,
        precisions=tuple(100 * p for p in precisions),
        brevity_penalty=brevity_penalty,
        ratio=stats.hyp_len / stats.ref_len,
        hyp_len=stats.hyp_len,
        ref_len=stats.ref_len,
    )


def _as_list(refs: References) -> List[str]:
    return [refs] if isinstance(refs, str) else list(refs)


def multi_bleu(
    hyps: Sequence[str], refs: Sequence[References], lowercase: bool = True
) -> MultiBleu:
    """``multi-bleu.perl [-lc] REFS < HYPS`` on lines of space-tokenized text.

    :param hyps: one hypothesis line per sentence.
    :param refs: per sentence, its reference line or a list of reference lines.
    :param lowercase: the script's ``-lc`` (MoEL and MIME use it).
    """
    return multi_bleu_score(
        corpus_stats(
            [perl_split(h, lowercase) for h in hyps],
            [[perl_split(r, lowercase) for r in _as_list(rs)] for rs in refs],
        )
    )


# -- sacrebleu ---------------------------------------------------------------------------

SACREBLEU_SIGNATURE = "case:lc|eff:no|tok:13a|smooth:exp"


@functools.lru_cache(maxsize=1)
def _sacrebleu():
    from sacrebleu.metrics import BLEU

    # force: our inputs are deliberately tokenized (see parlai_metrics); no warning about it
    return BLEU(lowercase=True, tokenize="13a", smooth_method="exp", force=True)


def sacrebleu_stats(hyps: Sequence[str], refs: Sequence[References]) -> BleuStats:
    """sacrebleu's summed statistics for ``hyps`` against per-sentence references."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} reference sets")
    if not hyps:
        return BleuStats()
    ref_lists = [_as_list(r) for r in refs]
    if not all(ref_lists):
        raise ValueError("every hypothesis needs at least one reference")
    # sacrebleu takes reference *streams*; None fills in where a sentence has fewer refs
    n_streams = max(len(r) for r in ref_lists)
    streams = [[r[i] if i < len(r) else None for r in ref_lists] for i in range(n_streams)]
    score = _sacrebleu().corpus_score(list(hyps), streams)
    return BleuStats(tuple(score.counts), tuple(score.totals), score.sys_len, score.ref_len)


def sacrebleu_score(stats: BleuStats, order: int = MAX_ORDER) -> float:
    """sacrebleu corpus BLEU-``order`` (x100) from summed statistics."""
    from sacrebleu.metrics import BLEU

    if not 1 <= order <= MAX_ORDER:
        raise ValueError(f"BLEU order must be 1..{MAX_ORDER}, not {order}")
    return BLEU.compute_bleu(
        correct=list(stats.matches[:order]),
        total=list(stats.totals[:order]),
        sys_len=stats.hyp_len,
        ref_len=stats.ref_len,
        smooth_method="exp",
        max_ngram_order=order,
    ).score
