"""ParlAI's teacher-side ``bleu-4``, off by default in our agents' reports.

With ParlAI's default ``--metrics default`` every teacher adds ``accuracy``, ``f1`` and
``bleu-4``: NLTK sentence-level BLEU-4 on ParlAI's normalised text, averaged, on a 0-1 scale.
Our generators report ``bleu1``..``bleu4`` (sacrebleu corpus BLEU) and ``mbleu`` (the papers'
``multi-bleu.perl``), x100, so one report showed ``bleu-4 .0064`` next to ``bleu4 1.639``:
two BLEUs, one hyphen apart, on different scales. An agent that calls
:func:`set_default_metrics` from its ``add_cmdline_args`` makes ``accuracy,f1`` its default
``--metrics`` (the teacher then computes no ``bleu-4``); ``--metrics default`` (or ``bleu``,
``all``) brings ParlAI's back for a run that wants it::

    @classmethod
    def add_cmdline_args(cls, parser, partial_opt=None):
        super().add_cmdline_args(parser, partial_opt=partial_opt)
        set_default_metrics(parser)
        return parser
"""

# ParlAI's "default" set less bleu-4 (accuracy and f1 are computed for every generation)
DEFAULT_METRICS = "accuracy,f1"


def set_default_metrics(parser):
    """Make ``--metrics`` default to :data:`DEFAULT_METRICS` (no ParlAI ``bleu-4``)."""
    parser.set_defaults(metrics=DEFAULT_METRICS)
    return parser
