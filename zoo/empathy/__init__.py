"""Our model zoo, installed as ``parlai.zoo.empathy`` (``-mf zoo:empathy/<name>/model``).

Each module here declares one :class:`parlai_empathy.zoo.ZooRelease` and a ``download``.
"""
import parlai_empathy  # noqa: F401  (applies parlai_empathy.compat if not yet applied)
