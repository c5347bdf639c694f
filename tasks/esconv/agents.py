"""ESConv teachers (Liu et al., "Towards Emotional Support Dialog Systems", ACL 2021).

``-t esconv`` (:class:`DefaultTeacher`): every supporter turn is a label and the whole
preceding dialogue its context. Episodic layout: each example's ``text`` is the seeker turn
since the previous supporter turn and its label the supporter turn, so ParlAI's history
(text and labels of the episode so far) is exactly the preceding dialogue. Consecutive
turns of one speaker are joined with a space; when the supporter opens the dialogue the
first ``text`` is ParlAI's silence token ``__SILENCE__``. Each message also carries
``emotion_type``, ``problem_type``, ``situation``, ``experience_type``, ``strategy`` (the
strategy the supporter turn opens with) and ``strategies`` (one per joined utterance).
Options: ``--esconv-strategy-token true`` writes each utterance's strategy as a special
token before it in the label (``[Question] ...``: the "-Joint" setting);
``--esconv-include-situation true`` makes the situation the first context turn.

``-t esconv:strategy`` (:class:`StrategyTeacher`): the label is the strategy of the next
supporter turn, with the 8 strategies as ``label_candidates``; each example is one episode
whose ``text`` is the whole preceding dialogue, one turn per line.

The extra fields are not shown by ``display_data`` unless named::

    parlai display_data -t esconv -dt test -n 5 \\
        --display-add-fields strategy,emotion_type,problem_type,situation,experience_type
"""
from typing import Optional

from parlai.core.message import Message
from parlai.core.opt import Opt
from parlai.core.params import ParlaiParser
from parlai.core.teachers import DialogTeacher
from parlai.utils import logging
from parlai.utils.data import DatatypeHelper

from parlai_empathy.data import esconv


class ESConvTeacher(DialogTeacher):
    """Supporter turns as labels, the preceding dialogue as context (episodic)."""

    TEACHER_ID = "esconv"

    @classmethod
    def add_cmdline_args(
        cls, parser: ParlaiParser, partial_opt: Optional[Opt] = None
    ) -> ParlaiParser:
        super().add_cmdline_args(parser, partial_opt)
        group = parser.add_argument_group("ESConv teacher arguments")
        group.add_argument(
            "--esconv-strategy-token",
            type="bool",
            default=False,
            help="Prepend each supporter utterance's strategy as a special token such as "
            "[Question] to the label (the -Joint setting of the ESConv paper).",
        )
        group.add_argument(
            "--esconv-include-situation",
            type="bool",
            default=False,
            help="Use the seeker's situation description as the first context turn.",
        )
        return parser

    def __init__(self, opt, shared=None):
        self.fold = DatatypeHelper.fold(opt["datatype"])
        folder = esconv.build(opt)
        opt["datafile"] = esconv.split_path(folder, self.fold)
        self.id = self.TEACHER_ID
        self.strategy_tokens = opt.get("esconv_strategy_token", False)
        self.include_situation = opt.get("esconv_include_situation", False)
        super().__init__(opt, shared)

    def setup_data(self, path):
        logging.info(f"loading ESConv dialogues from {path}")
        for dialogue in esconv.read_dialogues(path):
            episode = esconv.supporter_episode(
                dialogue, self.strategy_tokens, self.include_situation
            )
            for index, example in enumerate(episode):
                yield Message(example), index == 0


class StrategyTeacher(ESConvTeacher):
    """The strategy of the next supporter turn, given the whole preceding dialogue."""

    TEACHER_ID = "esconv:strategy"

    def setup_data(self, path):
        logging.info(f"loading ESConv strategy examples from {path}")
        for dialogue in esconv.read_dialogues(path):
            for example in esconv.strategy_examples(dialogue, self.include_situation):
                yield Message(example), True


class DefaultTeacher(ESConvTeacher):
    pass
