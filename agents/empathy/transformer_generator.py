"""ParlAI's stock transformer generator with the papers' dictionary and our evaluation suite.

The architecture, options and training are ParlAI's own ``transformer/generator``; only the
dictionary class (which adds ``--dict-tokenizer paper``, the MoEL/MIME token space), readable
replies, the suite's metrics and our chat and Ctrl-C behaviour are added, so a baseline trained with it has a
ppl per paper token, comparable with the emotion generators'::

    parlai train_model -m empathy/transformer_generator -t empathetic_dialogues \
        --train-experiencer-only true --dict-tokenizer paper -mf /tmp/baseline/model \
        --max-train-steps 200
"""
from parlai.agents.transformer.transformer import (
    TransformerGeneratorAgent as StockTransformerGeneratorAgent,
)

from parlai_empathy.chat import ChatMixin
from parlai_empathy.dictionary import EmpathyDictionaryAgent
from parlai_empathy.metrics.agent_mixin import GenerationMetricsMixin
from parlai_empathy.teacher_metrics import set_default_metrics
from parlai_empathy.training import InterruptCheckpointMixin


# (ParlAI finds -m empathy/transformer_generator's class by this name)
class TransformerGeneratorAgent(
    ChatMixin, InterruptCheckpointMixin, GenerationMetricsMixin, StockTransformerGeneratorAgent
):
    @classmethod
    def dictionary_class(cls):
        return EmpathyDictionaryAgent

    @classmethod
    def add_cmdline_args(cls, parser, partial_opt=None):
        super().add_cmdline_args(parser, partial_opt=partial_opt)
        set_default_metrics(parser)
        return parser
