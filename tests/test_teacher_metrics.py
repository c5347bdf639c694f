"""Our agents' reports carry our BLEUs only (parlai_empathy.teacher_metrics)."""
import json

import pytest

from parlai_cli import run_parlai

TINY_ZOO = "zoo:empathy/tiny_generator_ed/model"


def _report(tmp_path, datapath, *extra):
    path = tmp_path / "report.json"
    run_parlai(["eval_model", "-mf", TINY_ZOO, "-t", "integration_tests", "-ne", 8,
                "--datapath", datapath, "--report-filename", path, *extra], timeout=300)
    return json.loads(path.read_text())["report"]


@pytest.mark.slow
def test_parlai_bleu_is_left_out_unless_asked_for(tmp_path, datapath):
    report = _report(tmp_path, datapath)
    assert "bleu4" in report and "mbleu" in report  # ours, x100
    assert "bleu-4" not in report, sorted(report)  # ParlAI's, 0-1
    assert "f1" in report and "accuracy" in report
    assert "bleu-4" in _report(tmp_path, datapath, "--metrics", "default")
