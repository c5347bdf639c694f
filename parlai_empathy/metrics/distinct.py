"""Corpus-level Distinct-n (Li et al., 2016): distinct n-grams over all generated n-grams.

Distinct-n = 100 * |{n-grams of all responses}| / (number of n-grams in all responses),
n-grams taken within each response (never across two). Reported x100, like the Dist-1/2
columns of EmpDG, CauESC and the anchors table. Its sufficient statistics
(:class:`DistinctStats`: the set of n-grams seen and the n-gram count) add up exactly, so
the score of a corpus assembled from parts equals the score of the whole.
"""
from dataclasses import dataclass, field
from typing import FrozenSet, Iterable, Iterator, Sequence, Tuple


def ngrams(tokens: Sequence[str], n: int) -> Iterator[Tuple[str, ...]]:
    """The n-grams of one token sequence, in order."""
    for start in range(len(tokens) - n + 1):
        yield tuple(tokens[start : start + n])


@dataclass(frozen=True)
class DistinctStats:
    """The distinct n-grams seen so far and how many n-grams there were in total."""

    n: int
    distinct: FrozenSet[Tuple[str, ...]] = field(default_factory=frozenset)
    total: int = 0

    def __add__(self, other: "DistinctStats") -> "DistinctStats":
        if other.n != self.n:
            raise ValueError(f"cannot add distinct-{self.n} and distinct-{other.n} counts")
        return DistinctStats(self.n, self.distinct | other.distinct, self.total + other.total)

    def score(self) -> float:
        """Distinct-n x100 (0 when there are no n-grams)."""
        return 100.0 * len(self.distinct) / self.total if self.total else 0.0


def distinct_stats(responses: Iterable[Sequence[str]], n: int) -> DistinctStats:
    """Statistics of tokenized ``responses``."""
    seen = set()
    total = 0
    for tokens in responses:
        for gram in ngrams(tokens, n):
            seen.add(gram)
            total += 1
    return DistinctStats(n, frozenset(seen), total)


def distinct_n(responses: Iterable[Sequence[str]], n: int) -> float:
    """Corpus Distinct-n (x100) of tokenized ``responses``."""
    return distinct_stats(responses, n).score()
