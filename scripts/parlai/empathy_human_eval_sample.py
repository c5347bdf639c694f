"""``parlai empathy_human_eval_sample``: items for a human evaluation, with each model's reply.

See :mod:`parlai_empathy.human_eval.sample_command`::

    parlai empathy_human_eval_sample -t empathetic_dialogues --train-experiencer-only true \
        -mfs zoo:empathy/moel_ed/model,runs/baseline/model --out study/items.jsonl
"""
from parlai.core.params import ParlaiParser
from parlai.core.script import ParlaiScript, register_script


@register_script("empathy_human_eval_sample")
class EmpathyHumanEvalSample(ParlaiScript):
    @classmethod
    def setup_args(cls):
        from parlai_empathy.human_eval.sample_command import DESCRIPTION, add_sample_args

        return add_sample_args(ParlaiParser(True, False, description=DESCRIPTION))

    def run(self):
        from parlai_empathy.human_eval.items import ItemsError
        from parlai_empathy.human_eval.sample_command import PROG, run

        try:
            return run(self.opt)
        except ItemsError as error:
            raise SystemExit(f"{PROG}: error: {error}") from None


if __name__ == "__main__":
    EmpathyHumanEvalSample.main()
