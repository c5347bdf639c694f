"""The report's Markdown tables and JSON numbers.

The Markdown has three parts:

1. *Side by side*: one row per model of ours, then the anchors of the dataset, under the
   anchors table's own columns (``BLEU`` is our ``mbleu`` ...), with a note per column on
   how the definitions relate. Anchor cells are ANCHORS.md's text, unchanged.
2. *Settings*: per model, the options its evaluation ran with.
3. *All metrics*: per model, ppl and the whole suite.

Numbers of ours are printed with :data:`DIGITS` decimals; the JSON keeps them unrounded.
Missing values are ``–``.
"""
import math
from typing import Iterable, List, Optional, Sequence

from parlai_empathy import emotions
from parlai_empathy.report.anchors import MISSING, AnchorTable, Column
from parlai_empathy.report.evaluate import (
    BEAM_INFERENCE,
    SUITE_METRICS,
    ModelEvaluation,
    json_number,
)

# decimals printed for each metric
DIGITS = {
    "ppl": 2,
    **{f"bleu{n}": 2 for n in range(1, 5)},
    "mbleu": 2,
    "rougeL": 2,
    "dist1": 2,
    "dist2": 2,
    "resp_len": 2,
    "vader_delta": 3,
    "emotion_acc": 4,
}

SETTINGS_HEADERS = (
    "#", "Model file", "Task", "Datatype", "Inference", "Beam size",
    "--num-examples", "Examples", "Seed", "Other options",
)
METRICS_HEADERS = ("#", *SUITE_METRICS)
# the side-by-side columns when the task has no anchors
DEFAULT_COLUMNS = ("ppl", "mbleu", "rougeL", "dist1", "dist2")


def format_metric(name: str, value) -> str:
    """``value`` of metric ``name`` as the tables print it."""
    if value is None:
        return MISSING
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.{DIGITS.get(name, 2)}f}"


def _row(cells: Iterable) -> str:
    return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"


def _table(headers: Sequence[str], rows: Iterable[Sequence], numeric: Sequence[int]) -> List[str]:
    """A GitHub Markdown table; the ``numeric`` columns (indices) are right-aligned."""
    align = ["---:" if i in numeric else "---" for i in range(len(headers))]
    return [_row(headers), _row(align), *(_row(row) for row in rows)]


def _code(text: str) -> str:
    return f"`{text}`"


def _beam_size(settings) -> str:
    if settings["inference"] in BEAM_INFERENCE and settings["beam_size"] is not None:
        return str(settings["beam_size"])
    return MISSING


def _seed(settings) -> str:
    return MISSING if settings["seed"] is None else str(settings["seed"])


def _num_examples(settings) -> str:
    return "all" if settings["num_examples"] <= 0 else str(settings["num_examples"])


def _our_source(evaluation: ModelEvaluation) -> str:
    """The Source column of one of our rows: what this run did, briefly."""
    settings = evaluation.settings
    decoding = settings["inference"] or MISSING
    if _beam_size(settings) != MISSING:
        decoding += f" {settings['beam_size']}"
    parts = ["ours", settings["datatype"], decoding]
    if settings["seed"] is not None:
        parts.append(f"seed {settings['seed']}")
    parts.append(f"{evaluation.exs} examples")
    return ", ".join(parts)


def format_options(options) -> str:
    """Options as command-line flags: ``--train-experiencer-only true``."""
    flags = []
    for key, value in options.items():
        if isinstance(value, bool):
            value = str(value).lower()
        flags.append(f"--{key.replace('_', '-')} {value}")
    return " ".join(flags)


def _anchor_cell(column: Column, evaluation: ModelEvaluation) -> str:
    """Our number under an anchors column; an emotion accuracy over another label set than
    the anchors' has its set named: ``0.4697 (ed16: 16 classes)``."""
    if not column.metric:
        return MISSING
    text = format_metric(column.metric, evaluation.report.get(column.metric))
    ours = evaluation.settings.get("emotion_labels")
    if text != MISSING and column.label_set and ours and ours != column.label_set:
        known = emotions.LABEL_SETS.get(ours)
        text += f" ({ours}: {len(known.labels)} classes)" if known else f" ({ours})"
    return text


def side_by_side_rows(
    evaluations: Sequence[ModelEvaluation], anchors: Optional[AnchorTable]
) -> List[List[str]]:
    """Rows of the side-by-side table (ours, then the anchors), as printed."""
    rows = []
    for i, evaluation in enumerate(evaluations, start=1):
        cells = [f"**#{i}** {_code(evaluation.model_file)}", _our_source(evaluation)]
        if anchors is None:
            cells += [format_metric(m, evaluation.report.get(m)) for m in DEFAULT_COLUMNS]
        else:
            cells += [_anchor_cell(c, evaluation) for c in anchors.columns]
        rows.append(cells)
    if anchors is not None:
        rows += [[row.model, row.source, *row.cells] for row in anchors.rows]
    return rows


def side_by_side_headers(anchors: Optional[AnchorTable]) -> List[str]:
    if anchors is None:
        return ["Model", "Source / settings", *DEFAULT_COLUMNS]
    headers = ["Model", "Source / settings"]
    for column in anchors.columns:
        # the anchor's name, and ours under it
        headers.append(f"{column.header}<br>`{column.metric}`" if column.metric else column.header)
    return headers


def settings_rows(evaluations: Sequence[ModelEvaluation], other_options) -> List[List[str]]:
    rows = []
    for i, evaluation in enumerate(evaluations, start=1):
        s = evaluation.settings
        rows.append([
            f"#{i}", _code(evaluation.model_file), s["task"], s["datatype"],
            s["inference"] or MISSING, _beam_size(s), _num_examples(s),
            MISSING if evaluation.exs is None else str(evaluation.exs), _seed(s),
            _code(format_options(other_options)) if other_options else MISSING,
        ])
    return rows


def metrics_rows(evaluations: Sequence[ModelEvaluation]) -> List[List[str]]:
    return [
        [f"#{i}", *(format_metric(m, evaluation.report.get(m)) for m in SUITE_METRICS)]
        for i, evaluation in enumerate(evaluations, start=1)
    ]


def check_notes(
    evaluations: Sequence[ModelEvaluation], anchors: AnchorTable, task_options
) -> List[str]:
    """Where this run's set-up differs from the anchors'."""
    notes = []
    datatypes = sorted({e.settings["datatype"] for e in evaluations})
    if any(dt.split(":")[0] != anchors.split for dt in datatypes):
        notes.append(
            f"The anchors are {anchors.split}-split numbers; this run evaluated on "
            f"{', '.join(datatypes)}."
        )
    for key, wanted in anchors.task_options.items():
        if task_options.get(key) != wanted:
            used = (
                f"used {_code(format_options({key: task_options[key]}))}"
                if key in task_options
                else "left it at the teacher's default"
            )
            notes.append(
                f"The anchors' data view is {_code(format_options({key: wanted}))}; "
                f"this run {used}."
            )
    partial = [
        f"#{i}" for i, e in enumerate(evaluations, start=1) if e.settings["num_examples"] > 0
    ]
    if partial:
        notes.append(
            f"{', '.join(partial)}: evaluated on the first examples only (`--num-examples`)."
        )
    return notes


def markdown(
    evaluations: Sequence[ModelEvaluation],
    anchors: Optional[AnchorTable],
    *,
    task: str,
    datatype: str,
    command: str,
    other_options,
    chart_file: Optional[str] = None,
) -> str:
    """The whole Markdown report."""
    lines = [f"# Evaluation report: {task}, {datatype}", "", f"`{command}`", ""]
    if chart_file:
        lines += [f"![metrics chart]({chart_file})", ""]

    if anchors is None:
        lines += [
            "## Our models",
            "",
            f"ANCHORS.md has no reference numbers for `{task}`: our models only.",
            "",
        ]
    else:
        lines += [f"## Side by side with the anchors: {anchors.title}", ""]
    headers = side_by_side_headers(anchors)
    rows = side_by_side_rows(evaluations, anchors)
    lines += _table(headers, rows, numeric=range(2, len(headers)))
    lines.append("")
    if anchors is not None:
        lines += ["Anchor rows: the numbers and sources of ANCHORS.md, unchanged.", ""]
        lines.append("How the columns compare:")
        lines.append("")
        for column in anchors.columns:
            if column.definition:
                lines.append(f"- **{column.header}**: {column.definition}.")
        lines.append("")
        for note in check_notes(evaluations, anchors, other_options):
            lines += [f"> **Note**: {note}", ""]
        if anchors.source_notes:
            lines.append("From ANCHORS.md:")
            lines.append("")
            lines += [f"> {note}" for note in anchors.source_notes]
            lines.append("")

    lines += ["## Settings", ""]
    lines += _table(SETTINGS_HEADERS, settings_rows(evaluations, other_options), (5, 6, 7, 8))
    lines += [
        "",
        "Inference and beam size are those the model ran with (its saved options unless "
        "given on the command line); `Examples` is the number ParlAI evaluated.",
        "",
        "## All metrics",
        "",
    ]
    lines += _table(METRICS_HEADERS, metrics_rows(evaluations), range(1, len(METRICS_HEADERS)))
    lines += [
        "",
        "`ppl`: ParlAI's perplexity; the others: the suite of `parlai_empathy.metrics` "
        "(BLEU, ROUGE-L and Distinct x100 on MoEL/MIME tokens; `mbleu` is multi-bleu.perl "
        "BLEU-4; `emotion_acc` a fraction).",
        "",
    ]
    return "\n".join(lines)


def json_report(
    evaluations: Sequence[ModelEvaluation],
    anchors: Optional[AnchorTable],
    *,
    task: str,
    datatype: str,
    command: str,
    other_options,
    files,
) -> dict:
    """Every number of the report, unrounded."""
    return {
        "command": command,
        "task": task,
        "datatype": datatype,
        "options": dict(other_options),
        "files": dict(files),
        "digits": DIGITS,
        "models": [
            {
                "model_file": e.model_file,
                "resolved_model_file": e.resolved_model_file,
                "settings": e.settings,
                "metrics": {k: json_number(v) for k, v in e.metrics.items()},
                "report": {k: json_number(v) for k, v in e.report.items()},
            }
            for e in evaluations
        ],
        "anchors": None
        if anchors is None
        else {
            "dataset": anchors.dataset,
            "title": anchors.title,
            "split": anchors.split,
            "columns": [
                {"header": c.header, "metric": c.metric, "definition": c.definition}
                for c in anchors.columns
            ],
            "rows": [
                {
                    "model": row.model,
                    "source": row.source,
                    "cells": dict(zip(anchors.headers, row.cells)),
                    "values": {m: row.value(anchors, m) for m in anchors.metrics},
                }
                for row in anchors.rows
            ],
            "notes": list(anchors.source_notes),
        },
    }
