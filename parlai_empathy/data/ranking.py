"""100-candidate ranking sets for retrieval evaluation (``-t empathy_ranking:ed``,
``-t empathy_ranking:esconv``), the same for every model and baseline.

Each valid/test example gets ``label_candidates``: its gold response and 99 other distinct
responses of the same split, drawn and ordered by ``random.Random`` seeded with the sha256 of
``("candidates", <task id>, <split>, <episode index>, <turn index>)`` (episode and turn
counted from 0 in the teacher's order), exactly as the PEC teacher draws its candidates
(:class:`parlai_empathy.data.pec.CandidatePool`). Anyone with the same data gets the same sets::

    parlai display_data -t empathy_ranking:ed -dt test -n 1 --display-add-fields label_candidates

Training examples are left as they are (train with ``-cands batch``).
"""
from typing import Iterable, Iterator, Tuple

from parlai_empathy.data.pec import NUM_CANDIDATES, CandidatePool

__all__ = ["NUM_CANDIDATES", "with_ranking_candidates"]


def _gold(message) -> str:
    labels = message.get("labels") or message.get("eval_labels") or []
    return labels[0] if labels else ""


def with_ranking_candidates(
    items: Iterable[Tuple[dict, bool]], task_id: str, fold: str
) -> Iterator[Tuple[dict, bool]]:
    """``(message, new_episode)`` pairs of a teacher's ``setup_data``, each given its
    ``label_candidates`` (module docstring); the whole split is read first (the pool)."""
    items = list(items)
    pool = CandidatePool([_gold(message) for message, _ in items])
    episode, turn = -1, 0
    for message, new_episode in items:
        if new_episode or episode < 0:
            episode, turn = episode + 1, 0
        else:
            turn += 1
        gold = _gold(message)
        if gold:
            candidates = pool.sample(gold, (task_id, fold, episode, turn))
            if hasattr(message, "force_set"):
                message.force_set("label_candidates", candidates)
            else:
                message["label_candidates"] = candidates
        yield message, new_episode
