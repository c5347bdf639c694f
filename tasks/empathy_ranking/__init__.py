"""Retrieval evaluation sets: each valid/test example ranks its gold response among 100
(``-t empathy_ranking:ed``, ``-t empathy_ranking:esconv``), installed as
``parlai.tasks.empathy_ranking``."""
import parlai_empathy  # noqa: F401  (applies parlai_empathy.compat if not yet applied)
