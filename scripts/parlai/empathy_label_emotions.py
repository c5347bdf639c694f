"""``parlai empathy_label_emotions``: label every example of a task with an emotion
classifier, resumably, in the format of ``--pec-emotion-file``.

See :mod:`parlai_empathy.label_emotions`::

    parlai empathy_label_emotions -mf runs/emo_ed/model -t pec -dt valid --out pec_valid.jsonl
"""
from parlai.core.params import ParlaiParser
from parlai.core.script import ParlaiScript, register_script


@register_script("empathy_label_emotions")
class EmpathyLabelEmotions(ParlaiScript):
    @classmethod
    def setup_args(cls):
        from parlai_empathy.label_emotions import DESCRIPTION, add_label_args

        return add_label_args(ParlaiParser(True, True, description=DESCRIPTION))

    def run(self):
        from parlai_empathy.label_emotions import PROG, LabelInputError, run

        try:
            return run(self.opt)
        except LabelInputError as error:
            raise SystemExit(f"{PROG}: error: {error}") from None


if __name__ == "__main__":
    EmpathyLabelEmotions.main()
