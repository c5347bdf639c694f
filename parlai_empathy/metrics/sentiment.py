"""VADER sentiment change of a response over its reference (the seed paper's metric).

``vader_delta(response, reference) = compound(response) - compound(reference)`` with
``vaderSentiment``'s ``SentimentIntensityAnalyzer().polarity_scores(text)['compound']``
(in [-1, 1], so the delta is in [-2, 2]); the corpus value is the mean over responses.
A positive mean: responses are more positive than the human ones.

VADER reads raw text (punctuation, emoticons and capitals are cues), so it gets the texts
untokenized, but lower-cased on both sides: our word-level models only ever write lower
case, and VADER's ALL-CAPS emphasis would otherwise count for the references alone.
"""
import functools


@functools.lru_cache(maxsize=1)
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def vader_compound(text: str) -> float:
    """VADER compound polarity of lower-cased ``text``, in [-1, 1]."""
    return _analyzer().polarity_scores(text.lower())["compound"]


def vader_delta(response: str, reference: str) -> float:
    """compound(response) - compound(reference), both lower-cased."""
    return vader_compound(response) - vader_compound(reference)
