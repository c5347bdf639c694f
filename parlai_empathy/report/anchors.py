"""The reference numbers of ``ANCHORS.md`` as data: one table per dataset.

Every cell is kept as the text ``ANCHORS.md`` prints (``"2.76 greedy / 3.13 beam"``,
``"16.95M"``, ``"–"``), with each row's model and source text verbatim, so the report can
show them unchanged; :meth:`AnchorRow.value` reads the numbers out of that text for the
chart. A :class:`Column` names the metric of our suite it corresponds to (``BLEU`` ->
``mbleu``) and says how the two definitions relate; columns without a metric (parameter
counts, human ratings) are shown for the anchors only.

Only the two generation benchmarks are here: ``-t empathetic_dialogues`` (ED) and
``-t esconv``. Every number is on the *test* split.
"""
import re
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple, Union

MISSING = "–"  # ANCHORS.md's (and the report's) mark for "no number"

Value = Union[float, Dict[str, float]]

_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
# "2.76 greedy / 3.13 beam": numbers for several decoding variants
_VARIANT = re.compile(r"^(?P<number>-?\d+(?:\.\d+)?) (?P<variant>[A-Za-z][\w-]*)$")


def parse_cell(text: str) -> Optional[Value]:
    """The number(s) in an anchor cell: a float, ``{variant: float}``, or None.

    ``"–"`` and text that is not a plain number (``"16.95M"``) give None.
    """
    text = text.strip()
    if text == MISSING or not text:
        return None
    if _NUMBER.match(text):
        return float(text)
    variants = {}
    for part in text.split(" / "):
        match = _VARIANT.match(part.strip())
        if not match:
            return None
        variants[match.group("variant")] = float(match.group("number"))
    return variants


@dataclass(frozen=True)
class Column:
    """One column of an anchors table and the metric of ours it compares with."""

    header: str  # as ANCHORS.md writes it
    metric: Optional[str] = None  # our suite's name, None when we do not measure it
    definition: str = ""  # how the anchor's definition relates to ours
    # the emotion label set the anchors' numbers are over (``emotion_acc`` columns): a model of
    # ours predicting another set gets its set named in its cell
    label_set: Optional[str] = None


@dataclass(frozen=True)
class AnchorRow:
    """One row of an anchors table, every text exactly as ANCHORS.md gives it."""

    model: str
    source: str
    cells: Tuple[str, ...]  # one per column of the table, in order
    short: str  # a short source name for chart legends

    def cell(self, table: "AnchorTable", header: str) -> str:
        return self.cells[table.headers.index(header)]

    def value(self, table: "AnchorTable", metric: str) -> Optional[Value]:
        """The number(s) this row gives for our ``metric`` (None when it gives none)."""
        for column, text in zip(table.columns, self.cells):
            if column.metric == metric:
                return parse_cell(text)
        return None


@dataclass(frozen=True)
class AnchorTable:
    """The anchors of one dataset (one section of ANCHORS.md)."""

    dataset: str
    title: str  # the ANCHORS.md section heading
    tasks: Tuple[str, ...]  # ParlAI task strings these numbers are comparable with
    split: str
    columns: Tuple[Column, ...]
    rows: Tuple[AnchorRow, ...]
    chart_metrics: Tuple[str, ...]  # metrics of ours drawn next to the anchors (not ppl)
    # ANCHORS.md prints a Source column (True) or names the source in the heading (False)
    source_column: bool = True
    # lines of ANCHORS.md about this table, verbatim
    source_notes: Tuple[str, ...] = ()
    # task options the anchors' data view corresponds to (``--train-experiencer-only``)
    task_options: Dict[str, object] = field(default_factory=dict)

    def __post_init__(self):
        for row in self.rows:
            if len(row.cells) != len(self.columns):
                raise ValueError(
                    f"{self.dataset} anchor {row.model!r} ({row.source}) has "
                    f"{len(row.cells)} cells for {len(self.columns)} columns"
                )

    @property
    def headers(self) -> Tuple[str, ...]:
        return tuple(column.header for column in self.columns)

    @property
    def metrics(self) -> Tuple[str, ...]:
        return tuple(column.metric for column in self.columns if column.metric)

    def markdown_line(self, row: AnchorRow) -> str:
        """The row as ANCHORS.md's Markdown table writes it."""
        names = (row.model, row.source) if self.source_column else (row.model,)
        return "| " + " | ".join((*names, *row.cells)) + " |"


NA = MISSING  # short, for the tables below

_PPL = Column(
    "PPL",
    "ppl",
    "perplexity of the reference responses under each model's own vocabulary and "
    "tokenization (ours: ParlAI's `ppl` over our dictionary's tokens), so comparable only "
    "roughly",
)

EMPATHETIC_DIALOGUES = AnchorTable(
    dataset="empathetic_dialogues",
    title="EmpatheticDialogues (ED) — generation, test split",
    tasks=("empathetic_dialogues", "empathetic_dialogues:EmpatheticDialoguesTeacher"),
    split="test",
    columns=(
        Column("Params"),
        _PPL,
        Column(
            "Emotion acc (32)",
            "emotion_acc",
            "fraction of test examples whose predicted emotion (of 32) is the gold one = our "
            "`emotion_acc`; only models that predict emotions report it (a model of ours over "
            "another label set has it named in its cell, e.g. `(ed16: 16 classes)`)",
            label_set="ed32",
        ),
        Column(
            "BLEU",
            "mbleu",
            "MoEL/MIME's corpus BLEU-4 from `multi-bleu.perl -lc` on their tokenized text = "
            "our `mbleu` (the same algorithm after the same preprocessing; not `bleu4`, which "
            "is sacrebleu's smoothed BLEU-4)",
        ),
        Column(
            "Dist-1",
            "dist1",
            "corpus Distinct-1, x100 = our `dist1` (EmpDG's own split and tokenization differ)",
        ),
        Column("Dist-2", "dist2", "corpus Distinct-2, x100 = our `dist2`"),
        Column("Empathy", None, "human rating, 1–5; not measured by this command"),
        Column("Relevance", None, "human rating, 1–5; not measured by this command"),
        Column("Fluency", None, "human rating, 1–5; not measured by this command"),
    ),
    rows=(
        AnchorRow(
            "Multi-task Transformer", "MIME paper, Table 2",
            ("16.95M", NA, NA, "2.92", NA, NA, "3.67", "3.47", "4.30"), "MIME paper",
        ),
        AnchorRow(
            "MoEL", "MIME paper, Table 2",
            ("23.10M", NA, NA, "2.90", NA, NA, "3.71", "3.32", "4.31"), "MIME paper",
        ),
        AnchorRow(
            "MIME", "MIME paper, Table 2",
            ("17.80M", NA, NA, "2.98", NA, NA, "3.87", "3.60", "4.28"), "MIME paper",
        ),
        AnchorRow(
            "MIME", "MIME repo `output.txt` header",
            (NA, "37.54", "0.3488", "2.76 greedy / 3.13 beam", NA, NA, NA, NA, NA), "MIME repo",
        ),
        AnchorRow(
            "MoEL (re-implemented)", "EmpDG paper (COLING 2020), Table 1, own split",
            (NA, "33.58", "0.3200", NA, "1.38", "4.66", "3.47", "3.88", "3.68"), "EmpDG paper",
        ),
        AnchorRow(
            "MoEL",
            "computed from MoEL repo `generation_result.txt` (corpus level, whitespace "
            "tokens, x100)",
            (NA, NA, NA, NA, "0.62", "2.89", NA, NA, NA), "MoEL repo outputs",
        ),
        AnchorRow(
            "MIME beam", "computed from MIME repo `output.txt`",
            (NA, NA, NA, NA, "0.25", "0.87", NA, NA, NA), "MIME repo outputs",
        ),
        AnchorRow(
            "MoEL (baseline, ED_32)", "seed paper's report (Columbia, Figure 5)",
            (NA, "73.34", "0.346", "2.33 beam / 2.30 greedy", NA, NA, NA, NA, NA), "seed paper",
        ),
    ),
    chart_metrics=("mbleu", "dist1", "dist2"),
    source_notes=(
        "Human ratings above: 1–5 scale, 128 test samples (4 per emotion), 3 annotators.",
        "MIME's A/B test (win / lose / tie %): MIME vs MoEL 38.82 / 28.32 / 32.86; "
        "vs Multi-TR 42.25 / 24.60 / 33.15.",
        "BLEU in MoEL/MIME is corpus BLEU-4 from `multi-bleu.perl` on lower-cased, tokenized "
        "text.",
    ),
    # MoEL's preprocessing: each listener turn is a target (ParlAI's experiencer-only view)
    task_options={"train_experiencer_only": True},
)

ESCONV = AnchorTable(
    dataset="esconv",
    title="ESConv (emotional support), test split — secondary source (CauESC README)",
    tasks=("esconv", "esconv:default", "esconv:ESConvTeacher"),
    split="test",
    columns=(
        _PPL,
        Column(
            "BLEU-2",
            "bleu2",
            "CauESC's corpus BLEU-2 (implementation not stated) ~ our `bleu2` (sacrebleu "
            "cumulative BLEU-2, 13a, lower-cased, exp smoothing, x100)",
        ),
        Column(
            "ROUGE-L",
            "rougeL",
            "ROUGE-L F-measure x100 ~ our `rougeL` (rouge-score, best reference, mean)",
        ),
        Column("Dist-1", "dist1", "corpus Distinct-1 x100 ~ our `dist1`"),
        Column("Dist-2", "dist2", "corpus Distinct-2 x100 ~ our `dist2`"),
    ),
    rows=tuple(
        AnchorRow(model, "secondary source (CauESC README)", cells, "CauESC README")
        for model, cells in (
            ("Transformer", ("114.75", "6.20", "14.64", "0.13", "0.28")),
            ("MoEL", ("57.03", "5.48", "13.93", "0.74", "4.12")),
            ("MIME", ("56.06", "6.35", "14.66", "0.91", "5.17")),
            ("Blenderbot-Joint (pretrained 90M)", ("18.60", "5.80", "17.03", "3.08", "13.95")),
            ("MISC", ("16.16", "7.31", "17.91", "4.41", "19.71")),
        )
    ),
    chart_metrics=("bleu2", "rougeL", "dist1", "dist2"),
    source_column=False,
    source_notes=("Strategy accuracy: Blenderbot-Joint 31.17, MISC 31.63.",),
)

ANCHOR_TABLES: Dict[str, AnchorTable] = {
    table.dataset: table for table in (EMPATHETIC_DIALOGUES, ESCONV)
}


def anchors_for_task(task: str) -> Optional[AnchorTable]:
    """The anchors comparable with ParlAI task ``task`` (one task, not a list), or None."""
    for table in ANCHOR_TABLES.values():
        if task.strip() in table.tasks:
            return table
    return None
