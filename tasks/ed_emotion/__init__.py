"""Emotion classification teachers (``-t ed_emotion``), installed as ``parlai.tasks.ed_emotion``."""
import parlai_empathy  # noqa: F401  (applies parlai_empathy.compat if not yet applied)
