"""``parlai empathy_report``: evaluate models and tabulate them next to ANCHORS.md's numbers.

See :mod:`parlai_empathy.report.command`::

    parlai empathy_report -mfs runs/a/model -t empathetic_dialogues \
        --train-experiencer-only true -dt test --out docs/results_ed_test
"""
from parlai.core.params import ParlaiParser
from parlai.core.script import ParlaiScript, register_script


@register_script("empathy_report")
class EmpathyReport(ParlaiScript):
    @classmethod
    def setup_args(cls):
        from parlai_empathy.report.command import DESCRIPTION, add_report_args

        return add_report_args(ParlaiParser(True, False, description=DESCRIPTION))

    def run(self):
        from parlai_empathy.report.command import PROG, ReportInputError, run

        try:
            return run(self.opt)
        except ReportInputError as error:
            raise SystemExit(f"{PROG}: error: {error}") from None


if __name__ == "__main__":
    EmpathyReport.main()
