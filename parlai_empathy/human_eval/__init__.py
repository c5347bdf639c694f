"""Crowdsourced human evaluation on the Potato annotation platform.

Steps (``python -m parlai_empathy.human_eval``, see :mod:`.__main__`): sample items and
generate replies (:mod:`.items`, :mod:`.sample_command`), build the Potato tasks
(:mod:`.potato_task`), serve them (:mod:`.serve`, :mod:`.potato_server`), read the
annotations (:mod:`.annotations`), analyse (:mod:`.analysis`) and report (:mod:`.report`);
:mod:`.conversations_export` writes the items as ParlAI Conversations logs.
"""
