"""``parlai empathy_score``: score files of responses with the evaluation suite.

The same scorer as ``python -m parlai_empathy.metrics.score`` (see that module)::

    parlai empathy_score --hyp beam.txt --ref ref.txt --json scores.json
"""
from parlai.core.params import ParlaiParser
from parlai.core.script import ParlaiScript, register_script


@register_script("empathy_score")
class EmpathyScore(ParlaiScript):
    @classmethod
    def setup_args(cls):
        from parlai_empathy.metrics.score import DESCRIPTION, add_score_args

        return add_score_args(ParlaiParser(False, False, description=DESCRIPTION))

    def run(self):
        from parlai_empathy.metrics.score import ScoreInputError, run

        try:
            return run(self.opt)
        except ScoreInputError as error:
            raise SystemExit(f"parlai empathy_score: error: {error}") from None


if __name__ == "__main__":
    EmpathyScore.main()
