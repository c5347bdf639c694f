"""Retrieval evaluation sets (:mod:`parlai_empathy.data.ranking`): the stock teachers with
100 ``label_candidates`` per valid/test example (gold + 99 responses of the same split,
drawn deterministically per example); training examples unchanged.

* ``-t empathy_ranking:ed`` (default): ParlAI's ``empathetic_dialogues`` (valid/test are
  the experiencer side, MoEL's view; ``--train-experiencer-only true`` for training).
* ``-t empathy_ranking:esconv``: ``-t esconv`` (supporter turns as labels).

    parlai eval_model -m empathy/cobert --scorer cosine -t empathy_ranking:ed -dt test \
        -ecands inline
"""
from parlai.tasks.empathetic_dialogues.agents import EmpatheticDialoguesTeacher
from parlai.tasks.esconv.agents import ESConvTeacher
from parlai.utils.data import DatatypeHelper

from parlai_empathy.data.ranking import with_ranking_candidates


class _RankingMixin:
    RANKING_ID = ""

    def setup_data(self, path):
        items = super().setup_data(path)
        fold = DatatypeHelper.fold(self.opt["datatype"])
        if fold == "train":
            yield from items
        else:
            yield from with_ranking_candidates(items, self.RANKING_ID, fold)


class EdTeacher(_RankingMixin, EmpatheticDialoguesTeacher):
    RANKING_ID = "ed"


class EsconvTeacher(_RankingMixin, ESConvTeacher):
    RANKING_ID = "esconv"


class DefaultTeacher(EdTeacher):
    pass
