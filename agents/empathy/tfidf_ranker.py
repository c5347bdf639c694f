"""TF-IDF ranking baseline over inline candidates; see :mod:`parlai_empathy.tfidf_ranker`::

    parlai eval_model -m empathy/tfidf_ranker -t empathy_ranking:ed -dt test
"""
from parlai_empathy.tfidf_ranker import TfidfRankerAgent

__all__ = ["TfidfRankerAgent"]
