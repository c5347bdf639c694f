"""PEC teachers (Zhong et al., "Towards Persona-Based Empathetic Conversational Models",
EMNLP 2020): ``-t pec`` (both domains, ``happy`` then ``offmychest``), ``-t pec:happy``,
``-t pec:offmychest``.

One example per conversation, each its own episode: ``text`` is the whole context, one
utterance per line (newline-joined, as ParlAI's history would join separate turns), the
label is the response. Extra fields: ``personas`` (the response speaker's persona
sentences, at most ``--pec-num-personas``, sampled deterministically per conversation),
``domain``, ``context_speakers``, ``response_speaker``, ``conversation_index`` and, on
valid/test, 100 ``label_candidates`` (gold + 99 responses of the same domain and split,
deterministic per conversation). ``--pec-filter`` applies the seed paper's filter;
``--pec-emotion-file`` adds an ``emotion`` field from a classifier's labels. Details, and
what is dropped or kept, in :mod:`parlai_empathy.data.pec`.

The extra fields are not shown by ``display_data`` unless named::

    parlai display_data -t pec -dt valid -n 3 \\
        --display-add-fields personas,domain,response_speaker,label_candidates
"""
from typing import Optional

from parlai.core.message import Message
from parlai.core.opt import Opt
from parlai.core.params import ParlaiParser
from parlai.core.teachers import DialogTeacher
from parlai.utils.data import DatatypeHelper

from parlai_empathy.data import pec


class PECTeacher(DialogTeacher):
    """PEC conversations of :attr:`DOMAINS`: context -> response, with personas."""

    DOMAINS = pec.DOMAINS
    TEACHER_ID = "pec"

    @classmethod
    def add_cmdline_args(
        cls, parser: ParlaiParser, partial_opt: Optional[Opt] = None
    ) -> ParlaiParser:
        super().add_cmdline_args(parser, partial_opt)
        group = parser.add_argument_group("PEC teacher arguments")
        group.add_argument(
            "--pec-num-personas",
            type=int,
            default=pec.DEFAULT_NUM_PERSONAS,
            help="At most this many persona sentences of the response speaker per example, "
            "sampled deterministically per conversation (-1: all of them).",
        )
        group.add_argument(
            "--pec-filter",
            type="bool",
            default=False,
            help="Keep only conversations whose context has more than one speaker and at "
            "least 20 words, whose response speaker has at least 25 persona sentences and "
            "whose response has at least 10 words (the seed paper's filter).",
        )
        group.add_argument(
            "--pec-emotion-file",
            type=str,
            default=None,
            help='JSON Lines of {"domain", "split", "index", "emotion"} from an emotion '
            "classifier (index: position of the conversation in its split file; emotion: "
            "one of the 32 EmpatheticDialogues emotions; an optional probability fills "
            "emotion_probability), e.g. the output of parlai empathy_label_emotions; fills "
            "the emotion field.",
        )
        return parser

    def __init__(self, opt, shared=None):
        self.fold = DatatypeHelper.fold(opt["datatype"])
        opt["datafile"] = pec.build(opt)  # the hf_pec folder
        self.settings = pec.PECSettings(
            num_personas=opt.get("pec_num_personas", pec.DEFAULT_NUM_PERSONAS),
            filter_like_seed_paper=opt.get("pec_filter", False),
            emotion_file=opt.get("pec_emotion_file"),
        )
        self.id = self.TEACHER_ID
        super().__init__(opt, shared)

    def setup_data(self, data_dir):
        for domain in self.DOMAINS:
            examples, _report = pec.load_examples(data_dir, domain, self.fold, self.settings)
            for example in examples:
                yield Message(example), True


class DefaultTeacher(PECTeacher):
    pass


class HappyTeacher(PECTeacher):
    DOMAINS = ("happy",)
    TEACHER_ID = "pec:happy"


class OffmychestTeacher(PECTeacher):
    DOMAINS = ("offmychest",)
    TEACHER_ID = "pec:offmychest"
