"""PEC persona-based empathetic conversations (``-t pec``, ``-t pec:happy``,
``-t pec:offmychest``), installed as ``parlai.tasks.pec``."""
import parlai_empathy  # noqa: F401  (applies parlai_empathy.compat if not yet applied)
