"""Our agents, installed as ``parlai.agents.empathy`` (``-m empathy/<name>``)."""
import parlai_empathy  # noqa: F401  (applies parlai_empathy.compat if not yet applied)
