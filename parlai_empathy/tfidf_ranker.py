"""TF-IDF ranking baseline over inline candidates (``-m empathy/tfidf_ranker``): the
retrieval table's lexical row, on exactly the candidate sets the neural rankers rank.

For each example the context and its ``label_candidates`` are weighed with scikit-learn's
``TfidfVectorizer`` (word unigrams and bigrams, sublinear term frequency, English accents
stripped, lower case), the inverse document frequencies fitted on that example's candidates
and context alone (nothing is trained, nothing is shared between examples); candidates are
ranked by cosine similarity to the context, ties kept in the teacher's order. The reply
carries ``text_candidates`` (so the teacher computes ``hits@k``) and the ``mrr`` and
``rank`` of the gold response, named as ``TorchRankerAgent`` names them::

    parlai eval_model -m empathy/tfidf_ranker -t empathy_ranking:ed -dt test
"""
from typing import List, Sequence

from parlai.core.agents import Agent
from parlai.core.message import Message
from parlai.core.metrics import AverageMetric
from parlai.core.opt import Opt


def tfidf_order(context: str, candidates: Sequence[str]) -> List[int]:
    """Indices of ``candidates``, most similar to ``context`` first (module docstring)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True,
                                 strip_accents="unicode", lowercase=True)
    try:
        matrix = vectorizer.fit_transform([context, *candidates])
    except ValueError:  # no word at all (empty texts): keep the teacher's order
        return list(range(len(candidates)))
    scores = (matrix[1:] @ matrix[0].T).toarray().ravel()  # rows are L2-normalised
    return sorted(range(len(candidates)), key=lambda i: (-scores[i], i))


class TfidfRankerAgent(Agent):
    """Ranks each example's inline candidates by TF-IDF cosine (module docstring)."""

    def __init__(self, opt: Opt, shared=None):
        super().__init__(opt, shared)
        self.id = "TfidfRanker"
        self.history: List[str] = []

    def reset(self):
        super().reset()
        self.history = []

    def observe(self, observation):
        observation = super().observe(observation)
        if observation.get("text"):
            self.history.append(observation["text"])
        return observation

    def act(self):
        obs = self.observation
        candidates = list(obs.get("label_candidates") or [])
        if not candidates:
            raise ValueError(
                f"{obs.get('id', 'the task')}: the TF-IDF ranker needs label_candidates in each "
                "example (e.g. -t empathy_ranking:ed -dt test)"
            )
        context = "\n".join(self.history)
        ranked = [candidates[i] for i in tfidf_order(context, candidates)]
        reply = Message({"id": self.id, "text": ranked[0], "text_candidates": ranked,
                         "episode_done": False})
        gold = obs.get("eval_labels") or obs.get("labels")
        if gold and gold[0] in ranked:
            rank = ranked.index(gold[0]) + 1
            reply["metrics"] = {"rank": AverageMetric(rank), "mrr": AverageMetric(1.0 / rank)}
        if obs.get("episode_done"):
            self.history = []
        elif gold:
            self.history.append(gold[0])
        return reply
