"""Emotion classification on ESConv: ``-t esconv_emotion`` and
``-t esconv_emotion:situation``.

The label is the dialogue's ``emotion_type`` (11 ESConv emotion types,
:data:`parlai_empathy.emotions.ESCONV_EMOTION_TYPES`). ``-t esconv_emotion``: one example
per supporter turn with a preceding dialogue, that dialogue (one turn a line) as text.
``-t esconv_emotion:situation``: one example per dialogue, the seeker's situation as text.
Extra fields: ``emotion_type``, ``problem_type``, ``situation``, ``experience_type``. Same
files as ``-t esconv``; details in :mod:`parlai_empathy.data.emotion_classification`.

    parlai display_data -t esconv_emotion -dt valid -n 3
"""
from parlai.core.message import Message
from parlai.core.teachers import DialogTeacher
from parlai.utils.data import DatatypeHelper

from parlai_empathy.data import emotion_classification, esconv


class ESConvEmotionTeacher(DialogTeacher):
    """ESConv dialogue contexts -> the dialogue's emotion type."""

    VIEW = "context"

    def __init__(self, opt, shared=None):
        self.fold = DatatypeHelper.fold(opt["datatype"])
        opt["datafile"] = esconv.split_path(esconv.build(opt), self.fold)
        self.id = "esconv_emotion" + ("" if self.VIEW == "context" else f":{self.VIEW}")
        super().__init__(opt, shared)

    def setup_data(self, path):
        for example in emotion_classification.esconv_examples(path, self.VIEW):
            yield Message(example), True


class DefaultTeacher(ESConvEmotionTeacher):
    pass


class SituationTeacher(ESConvEmotionTeacher):
    """ESConv situations -> the dialogue's emotion type."""

    VIEW = "situation"
