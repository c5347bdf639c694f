"""Emotion classification on EmpatheticDialogues: ``-t ed_emotion`` and
``-t ed_emotion:situation``.

``-t ed_emotion``: one example per listener turn, in MoEL's view of ED (the view of the
generators trained with ``-t empathetic_dialogues --train-experiencer-only true``): the text
is the whole preceding dialogue, one utterance a line, the label the conversation's emotion
(32 classes). ``-t ed_emotion:situation``: one example per conversation, the situation
prompt as text. ``--emotion-groups 16`` labels with the seed paper's 16 emotion groups
instead. Extra fields: ``emotion``, ``emotion_group``, ``situation``, ``conv_id`` and (context
view) ``utterance_idx`` of the listener turn. Same files as ParlAI's ``empathetic_dialogues``
(built mirror first); details in :mod:`parlai_empathy.data.emotion_classification`.

    parlai display_data -t ed_emotion -dt valid -n 3 --display-add-fields emotion,situation
    parlai display_data -t ed_emotion:situation --emotion-groups 16 -n 3
"""
from typing import Optional

from parlai.core.message import Message
from parlai.core.opt import Opt
from parlai.core.params import ParlaiParser
from parlai.core.teachers import DialogTeacher
from parlai.utils.data import DatatypeHelper

from parlai_empathy.data import emotion_classification, empathetic_dialogues_build


class EDEmotionTeacher(DialogTeacher):
    """ED dialogue contexts (MoEL's view) -> the conversation's emotion."""

    VIEW = "context"

    @classmethod
    def add_cmdline_args(
        cls, parser: ParlaiParser, partial_opt: Optional[Opt] = None
    ) -> ParlaiParser:
        super().add_cmdline_args(parser, partial_opt)
        group = parser.add_argument_group("ED emotion classification teacher arguments")
        group.add_argument(
            "--emotion-groups",
            type=int,
            choices=[32, 16],
            default=32,
            help="32: label with the 32 ED emotions; 16: with the seed paper's 16 emotion "
            "groups (parlai_empathy.emotions.EMOTION_GROUPS).",
        )
        return parser

    def __init__(self, opt, shared=None):
        self.fold = DatatypeHelper.fold(opt["datatype"])
        if not shared:
            empathetic_dialogues_build.build(opt)
        opt["datafile"] = emotion_classification.ed_split_path(opt["datapath"], self.fold)
        self.groups = opt.get("emotion_groups", 32) == 16
        self.id = "ed_emotion" + ("" if self.VIEW == "context" else f":{self.VIEW}")
        super().__init__(opt, shared)

    def setup_data(self, path):
        for example in emotion_classification.ed_examples(path, self.VIEW, self.groups):
            yield Message(example), True


class DefaultTeacher(EDEmotionTeacher):
    pass


class SituationTeacher(EDEmotionTeacher):
    """ED situation prompts -> the conversation's emotion."""

    VIEW = "situation"
