"""`parlai empathy_report`: our models' numbers next to ANCHORS.md's, as Markdown, PNG, JSON.

A tiny model trained through the CLI is reported on integration_tests (no anchors: our rows
only) and on EmpatheticDialogues (the ED anchors follow our row). Every number printed must
be the JSON's number, rounded, and the JSON's numbers must be what `parlai eval_model`
reports for the same model and options.
"""
import json
import os
import re
import shutil
import struct

import pytest

from parlai_cli import run_parlai
from parlai_empathy.report.anchors import (
    ANCHOR_TABLES,
    EMPATHETIC_DIALOGUES,
    ESCONV,
    MISSING,
    anchors_for_task,
    parse_cell,
)
from parlai_empathy.report.chart import CHART_SIZE_PX, DEFAULT_CHART_METRICS, chart_series
from parlai_empathy.report.evaluate import SUITE_METRICS, ModelEvaluation
from parlai_empathy.report.render import format_metric, side_by_side_rows

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANCHORS_MD = os.path.join(os.path.dirname(REPO), "shared", "docs", "ANCHORS.md")
# throughput numbers differ from run to run
TIMING = re.compile(r"(^|_)(exps|[a-z]*tps)$")


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """A tiny generator trained for 50 steps, and a copy of it under another path."""
    root = tmp_path_factory.mktemp("report")
    data = root / "data"
    first = root / "a" / "model"
    run_parlai(
        ["train_model", "-m", "empathy/tiny_generator", "-t", "integration_tests",
         "--max-train-steps", 50, "-mf", first, "--datapath", data,
         "--short-final-eval", "true", "-vme", 16]
    )
    shutil.copytree(root / "a", root / "b")
    return {"models": [str(first), str(root / "b" / "model")], "data": str(data)}


def _tables(markdown):
    """The Markdown tables, each as a list of rows of cells (header row first)."""
    tables, current = [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line[1:-1])]
            if not all(re.fullmatch(r"-+:?", c) for c in cells):  # skip the alignment row
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def _png_size(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    assert data.rstrip(b"\x00")[-8:-4] == b"IEND"
    assert len(data) > 10_000  # bars, labels and a legend, not a blank canvas
    return struct.unpack(">II", data[16:24])


def _report(args, out):
    run_parlai(["empathy_report", *args, "--out", out])
    with open(f"{out}.md", encoding="utf-8") as f:
        markdown = f.read()
    with open(f"{out}.json", encoding="utf-8") as f:
        numbers = json.load(f)
    return markdown, numbers


def _eval_model_cli(args, tmp_path):
    """What the ``parlai eval_model ARGS`` command reports (a subprocess)."""
    report_file = tmp_path / "eval_model_report.json"
    run_parlai(["eval_model", *args, "--report-filename", report_file])
    return json.loads(report_file.read_text())["report"]


def _parlai_in_process(args, monkeypatch):
    """``parlai ARGS`` through ParlAI's own command dispatcher, in this process.

    The same code as the ``parlai`` executable without the seconds of start-up; ParlAI
    sets PARLAI_DATAPATH while parsing, which monkeypatch puts back afterwards.
    """
    from parlai.core.script import superscript_main

    if "PARLAI_DATAPATH" in os.environ:
        monkeypatch.setenv("PARLAI_DATAPATH", os.environ["PARLAI_DATAPATH"])
    else:
        monkeypatch.delenv("PARLAI_DATAPATH", raising=False)
    return superscript_main(args=[str(a) for a in args])


def _eval_model_in_process(args, tmp_path, monkeypatch):
    report_file = tmp_path / "eval_model_report.json"
    _parlai_in_process(["eval_model", *args, "--report-filename", report_file], monkeypatch)
    return json.loads(report_file.read_text())["report"]


def _assert_same_report(ours, reference):
    assert set(ours) == set(reference)
    for name, value in reference.items():
        if not TIMING.search(name):
            assert ours[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name


def _assert_settings_and_metrics(tables, numbers, inference="greedy"):
    settings, metrics = tables[-2], tables[-1]
    assert settings[0][:9] == [
        "#", "Model file", "Task", "Datatype", "Inference", "Beam size",
        "--num-examples", "Examples", "Seed",
    ]
    assert metrics[0] == ["#", *SUITE_METRICS]
    assert len(settings) == len(metrics) == len(numbers["models"]) + 1
    for i, model in enumerate(numbers["models"], start=1):
        row = dict(zip(settings[0], settings[i]))
        assert row["#"] == f"#{i}" and row["Model file"] == f"`{model['model_file']}`"
        assert row["Task"] == numbers["task"] and row["Datatype"] == numbers["datatype"]
        assert row["Inference"] == model["settings"]["inference"] == inference
        assert row["Examples"] == str(model["report"]["exs"])
        assert row["Seed"] == MISSING  # greedy: no randomness
        printed = dict(zip(metrics[0], metrics[i]))
        for name in SUITE_METRICS:
            assert printed[name] == format_metric(name, model["metrics"][name]), name
            assert model["metrics"][name] == model["report"].get(name), name
        assert printed["emotion_acc"] == MISSING  # the tiny generator predicts no emotion


def test_report_without_anchors(tiny_models, tmp_path, monkeypatch):
    first, second = tiny_models["models"]
    options = [
        "-t", "integration_tests", "-dt", "valid", "--batchsize", 50,
        "--datapath", tiny_models["data"],
    ]
    markdown, numbers = _report(["-mfs", f"{first},{second}", *options], tmp_path / "it")

    assert numbers["anchors"] is None
    assert "ANCHORS.md has no reference numbers for `integration_tests`" in markdown
    tables = _tables(markdown)
    assert len(tables) == 3
    side_by_side = tables[0]
    assert side_by_side[0] == ["Model", "Source / settings", "ppl", "mbleu", "rougeL",
                               "dist1", "dist2"]
    assert len(side_by_side) == 3  # the header and our two models, nothing else
    for i, (row, model) in enumerate(zip(side_by_side[1:], numbers["models"]), start=1):
        assert row[0] == f"**#{i}** `{model['model_file']}`"
        assert row[1] == f"ours, valid, greedy, {model['report']['exs']} examples"
        for name, cell in zip(side_by_side[0][2:], row[2:]):
            assert cell == format_metric(name, model["metrics"][name]), name
    _assert_settings_and_metrics(tables, numbers)
    assert tables[1][1][-1] == "`--batchsize 50`"  # forwarded to eval_model

    reference = _eval_model_in_process(["-mf", first, *options], tmp_path, monkeypatch)
    assert reference["exs"] == 100 and "mbleu" in reference
    for model in numbers["models"]:  # the copy is the same model: the same numbers
        _assert_same_report(model["report"], reference)
    assert _png_size(tmp_path / "it.png") == CHART_SIZE_PX


def test_report_with_the_ed_anchors(tiny_models, ed_datapath, tmp_path):
    first = tiny_models["models"][0]
    options = [
        "-t", "empathetic_dialogues", "--train-experiencer-only", "true", "-dt", "valid",
        "--num-examples", 40, "--datapath", ed_datapath, "--batchsize", 16,
    ]
    markdown, numbers = _report(["-mfs", first, *options], tmp_path / "ed")

    tables = _tables(markdown)
    assert len(tables) == 3
    side_by_side = tables[0]
    assert side_by_side[0] == [
        "Model", "Source / settings", "Params", "PPL<br>`ppl`",
        "Emotion acc (32)<br>`emotion_acc`", "BLEU<br>`mbleu`", "Dist-1<br>`dist1`",
        "Dist-2<br>`dist2`", "Empathy", "Relevance", "Fluency",
    ]
    ours, anchors = side_by_side[1], side_by_side[2:]
    model = numbers["models"][0]
    assert model["settings"]["num_examples"] == 40
    assert model["report"]["exs"] == 48  # ParlAI evaluates whole batches of 16
    assert ours[:2] == [f"**#1** `{first}`", "ours, valid, greedy, 48 examples"]
    for column, cell in zip(EMPATHETIC_DIALOGUES.columns, ours[2:]):
        if column.metric is None:  # parameters, human ratings: not measured
            assert cell == MISSING, column.header
        else:
            assert cell == format_metric(column.metric, model["metrics"][column.metric])
    # the anchors: ANCHORS.md's rows, text unchanged, and the same in the JSON
    assert anchors == [[r.model, r.source, *r.cells] for r in EMPATHETIC_DIALOGUES.rows]
    assert numbers["anchors"]["dataset"] == "empathetic_dialogues"
    for printed, saved in zip(anchors, numbers["anchors"]["rows"]):
        assert printed == [saved["model"], saved["source"], *saved["cells"].values()]
    assert numbers["anchors"]["rows"][3]["values"]["mbleu"] == {"greedy": 2.76, "beam": 3.13}
    # where the definitions differ, and where this run differs from the anchors' set-up
    assert "- **BLEU**: MoEL/MIME's corpus BLEU-4 from `multi-bleu.perl -lc`" in markdown
    assert "= our `mbleu`" in markdown and "= our `dist1`" in markdown
    assert "The anchors are test-split numbers; this run evaluated on valid." in markdown
    assert "The anchors' data view" not in markdown  # --train-experiencer-only true was given
    _assert_settings_and_metrics(tables, numbers)
    assert tables[1][1][-1] == "`--train-experiencer-only true --batchsize 16`"

    reference = _eval_model_cli(["-mf", first, *options], tmp_path)  # the real command
    _assert_same_report(model["report"], reference)
    assert _png_size(tmp_path / "ed.png") == CHART_SIZE_PX


def test_bad_inputs_stop_with_one_error_naming_them(tiny_models, tmp_path, monkeypatch):
    out = tmp_path / "bad"
    with pytest.raises(SystemExit) as error:  # while ParlAI parses the task's own options
        _parlai_in_process(
            ["empathy_report", "-mfs", tiny_models["models"][0], "-t", "no_such_task",
             "--out", out],
            monkeypatch,
        )
    assert str(error.value) == (
        "parlai empathy_report: error: unknown task 'no_such_task' "
        "(no module parlai.tasks.no_such_task)"
    )

    missing = str(tmp_path / "runs" / "nothing" / "model")
    with pytest.raises(SystemExit) as error:
        _parlai_in_process(
            ["empathy_report", "-mfs", f"{tiny_models['models'][0]},{missing}",
             "-t", "integration_tests", "--datapath", tiny_models["data"], "--out", out],
            monkeypatch,
        )
    assert str(error.value) == f"parlai empathy_report: error: model file {missing}: no such file"
    assert not any(tmp_path.glob("bad.*"))  # every input is checked before evaluating


def _markdown_lines(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return text.splitlines(), " ".join(text.split())


def test_anchor_rows_are_anchors_md_verbatim():
    if not os.path.isfile(ANCHORS_MD):
        pytest.skip(f"{ANCHORS_MD} is not here")
    lines, flat = _markdown_lines(ANCHORS_MD)
    for table in ANCHOR_TABLES.values():
        assert f"## {table.title}" in lines
        header = ["Model", "Source"] if table.source_column else ["Model"]
        assert "| " + " | ".join([*header, *table.headers]) + " |" in lines
        for row in table.rows:
            assert table.markdown_line(row) in lines, row
        for note in table.source_notes:
            assert " ".join(note.split()) in flat, note
    # every row of the two ANCHORS.md tables is encoded
    ed_rows = [line for line in lines if line.startswith("| ") and "Table 2" in line]
    assert len(ed_rows) == 3


def test_anchor_cells_and_tasks():
    assert parse_cell("2.92") == 2.92
    assert parse_cell(MISSING) is None and parse_cell("16.95M") is None
    assert parse_cell("2.33 beam / 2.30 greedy") == {"beam": 2.33, "greedy": 2.30}
    assert anchors_for_task("empathetic_dialogues") is EMPATHETIC_DIALOGUES
    assert anchors_for_task("esconv") is ESCONV
    assert anchors_for_task("esconv:strategy") is None  # a classification task
    assert anchors_for_task("integration_tests") is None
    misc = ESCONV.rows[-1]
    assert misc.model == "MISC" and misc.value(ESCONV, "bleu2") == 7.31
    assert misc.value(ESCONV, "mbleu") is None  # ESConv anchors give BLEU-2, not BLEU-4


def test_an_emotion_accuracy_over_another_label_set_is_named_in_its_cell():
    """ED's anchors give accuracy over the 32 emotions: a 16-group model's number under them
    says which set it is over; a 32-emotion model's (or one without the option) does not."""
    def row(labels):
        evaluation = ModelEvaluation(
            "runs/x/model", "runs/x/model",
            {"inference": "beam", "beam_size": 5, "datatype": "test", "seed": None,
             "emotion_labels": labels},
            {"ppl": 50.0, "emotion_acc": 0.46971, "mbleu": 1.5, "exs": 10},
        )
        cells = side_by_side_rows([evaluation], EMPATHETIC_DIALOGUES)[0]
        return dict(zip(["model", "source", *EMPATHETIC_DIALOGUES.headers], cells))

    assert row("ed16")["Emotion acc (32)"] == "0.4697 (ed16: 16 classes)"
    assert row("ed32")["Emotion acc (32)"] == "0.4697"
    assert row(None)["Emotion acc (32)"] == "0.4697"
    assert row("ed16")["BLEU"] == "1.50" and row("ed16")["PPL"] == "50.00"


def test_chart_series_pick_the_variant_our_models_used():
    evaluation = ModelEvaluation(
        "runs/x/model", "runs/x/model",
        {"inference": "greedy", "datatype": "test", "seed": None},
        {"ppl": 50.0, "mbleu": 1.5, "dist1": 0.5, "dist2": 2.0, "exs": 10},
    )
    series = chart_series([evaluation], EMPATHETIC_DIALOGUES, DEFAULT_CHART_METRICS)
    assert series[0].ours and series[0].values == {
        "mbleu": 1.5, "dist1": 0.5, "dist2": 2.0, "ppl": 50.0
    }
    by_label = {s.label: s.values for s in series[1:]}
    assert by_label["MIME [MIME repo] (greedy)"] == {"mbleu": 2.76, "ppl": 37.54}
    assert by_label["MoEL (baseline, ED_32) [seed paper] (greedy)"]["mbleu"] == 2.30
    assert by_label["MIME beam [MIME repo outputs]"] == {"dist1": 0.25, "dist2": 0.87}
    assert all(not s.ours for s in series[1:]) and len(series) == 1 + 8


def test_report_generates_for_a_model_trained_without_generation(tiny_models, tmp_path):
    """A model trained with ``--skip-generation true`` keeps that in its .opt; the report
    still generates (its point is the generation metrics), as eval_model does when told
    ``--skip-generation false``."""
    source = os.path.dirname(tiny_models["models"][0])
    shutil.copytree(source, tmp_path / "c")
    model_file = tmp_path / "c" / "model"
    saved = json.loads((tmp_path / "c" / "model.opt").read_text())
    saved["skip_generation"] = True
    (tmp_path / "c" / "model.opt").write_text(json.dumps(saved))
    options = ["-t", "integration_tests", "-dt", "valid", "--num-examples", 20,
               "--batchsize", 10, "--datapath", tiny_models["data"]]

    _, numbers = _report(["-mfs", model_file, *options], tmp_path / "gen")
    model = numbers["models"][0]
    assert model["settings"]["skip_generation"] is False
    assert model["metrics"]["mbleu"] is not None and model["metrics"]["dist1"] is not None
    reference = _eval_model_cli(["-mf", model_file, *options, "--skip-generation", "false"],
                                tmp_path)
    _assert_same_report(model["report"], reference)
    # and told to skip, it skips: ppl only
    _, skipped = _report(["-mfs", model_file, *options, "--skip-generation", "true"],
                         tmp_path / "skip")
    assert skipped["models"][0]["metrics"]["mbleu"] is None
    assert skipped["models"][0]["metrics"]["ppl"] is not None


def test_report_scores_a_stock_parlai_generator_with_the_suite(tmp_path):
    """ParlAI's own ``transformer/generator`` reports no suite metrics by itself; the report
    adds them, computed exactly as for our generators."""
    from parlai.core.agents import create_agent_from_model_file
    from parlai.core.params import ParlaiParser
    from parlai.core.teachers import create_task_agent_from_taskname

    from parlai_empathy.metrics.parlai_metrics import generation_metrics
    from parlai_empathy.report.evaluate import with_suite_metrics

    model_file = tmp_path / "stock" / "model"
    data = tmp_path / "data"
    run_parlai(
        ["train_model", "-m", "transformer/generator", "-t", "integration_tests",
         "-mf", model_file, "--datapath", data, "--n-layers", 1, "--embedding-size", 32,
         "--ffn-size", 64, "--n-heads", 2, "--max-train-steps", 40, "--skip-generation", "true",
         "-vmt", "ppl", "-vmm", "min", "--short-final-eval", "true", "-vme", 16]
    )
    options = ["-t", "integration_tests", "-dt", "valid", "--num-examples", 20,
               "--batchsize", 10, "--datapath", data]
    _, numbers = _report(["-mfs", model_file, *options], tmp_path / "stock_report")
    report = numbers["models"][0]["report"]
    plain = _eval_model_cli(["-mf", model_file, *options, "--skip-generation", "false"],
                            tmp_path)
    assert "mbleu" not in plain and "dist1" not in plain  # stock ParlAI: not there
    for name in ("ppl", "exs", "token_acc"):
        assert report[name] == pytest.approx(plain[name], rel=1e-12), name

    # the suite's numbers are those of the very texts this agent generates
    agent = create_agent_from_model_file(
        str(model_file), {"datapath": str(data), "skip_generation": False}
    )
    assert with_suite_metrics(agent) is agent
    opt = ParlaiParser(True, True).parse_args(
        ["-t", "integration_tests", "-dt", "valid", "--datapath", str(data)]
    )
    teacher = create_task_agent_from_taskname(opt)[0]
    hyps, refs = [], []
    for _ in range(20):
        example = teacher.act()
        agent.observe(dict(example))
        hyps.append(agent.act()["text"])
        refs.append(list(example["eval_labels"]))
        agent.reset()
    expected = generation_metrics(hyps, refs)
    for name in ("mbleu", "dist1", "dist2", "rougeL", "resp_len"):
        assert report[name] == pytest.approx(expected[name].value(), rel=1e-9), name
