"""ESConv emotional-support dialogues (``-t esconv``, ``-t esconv:strategy``), installed as
``parlai.tasks.esconv``."""
import parlai_empathy  # noqa: F401  (applies parlai_empathy.compat if not yet applied)
