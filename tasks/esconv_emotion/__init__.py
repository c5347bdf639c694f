"""Emotion classification teachers (``-t esconv_emotion``), installed as ``parlai.tasks.esconv_emotion``."""
import parlai_empathy  # noqa: F401  (applies parlai_empathy.compat if not yet applied)
