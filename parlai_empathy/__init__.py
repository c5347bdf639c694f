"""parlai-empathy: empathetic dialogue models, datasets and evaluation for ParlAI.

Importing this package applies :mod:`parlai_empathy.compat` (ParlAI 1.7.2 on Python 3.11
and torch 2.x); the installed ``parlai_empathy.pth`` already does so for any process that
imports ParlAI, so stock ParlAI agents benefit too.
"""
from parlai_empathy import _startup

__version__ = "0.1.0"

_startup.install()
