"""A deliberately small transformer generator: plumbing checks, smoke tests and demos.

It is ParlAI's own ``transformer/generator`` (through ``empathy/transformer_generator``: our
dictionary and evaluation suite) with sizes small enough to train in seconds on a
CPU, so that installation, distributed training, the zoo and evaluation can be exercised
end to end before (and independently of) the research models::

    parlai train_model -m empathy/tiny_generator -t empathetic_dialogues \
        --train-experiencer-only true -mf /tmp/tiny/model --max-train-steps 200

Its evaluation reports carry the suite of :mod:`parlai_empathy.metrics` (bleu1..bleu4, mbleu,
rougeL, dist1, dist2, resp_len, vader_delta) next to ParlAI's ppl.
"""
from parlai.agents.empathy.transformer_generator import TransformerGeneratorAgent


class TinyGeneratorAgent(TransformerGeneratorAgent):
    @classmethod
    def add_cmdline_args(cls, parser, partial_opt=None):
        super().add_cmdline_args(parser, partial_opt=partial_opt)
        # no batchsize default here: an agent default would also apply to `parlai
        # interactive`, whose chat world needs batch size 1
        parser.set_defaults(
            n_layers=1,
            n_heads=2,
            embedding_size=32,
            ffn_size=64,
            dropout=0.0,
            text_truncate=64,
            label_truncate=32,
            truncate=64,
            dict_tokenizer="re",
            dict_lower=True,
            optimizer="adam",
            learningrate=1e-3,
            skip_generation=False,
            inference="greedy",
            beam_size=1,
        )
        return parser
