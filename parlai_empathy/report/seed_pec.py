"""The seed paper's PEC table, our models next to its numbers (``recipes/persona_moel_pec.sh``).

::

    python -m parlai_empathy.report.seed_pec \
        --run "persona-aware MoEL=runs/pmoel/eval/persona_moel" \
        --run "MoEL=runs/pmoel/eval/moel" --out runs/pmoel/seed_table.md

Each ``--run NAME=PREFIX`` names the ``parlai eval_model --report-filename`` files
``PREFIX_beam.json`` and ``PREFIX_greedy.json`` of one model on ``-t pec --pec-filter true
-dt test`` (16 emotion groups). The table prints, per model, emotion accuracy and ppl (from
the beam run: neither depends on decoding), BLEU (our ``mbleu``, multi-bleu.perl BLEU-4 x100),
METEOR (NLTK, in [0, 1]; ``skipped`` without NLTK's WordNet data), the VADER sentiment change
of the response over the reference, and Distinct-1/2, beam and greedy; then the seed paper's
rows (``shared/docs/ANCHORS.md``, "Seed paper" section), their text unchanged. The file is
written whole or not at all.
"""
import argparse
import json
import os
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from parlai_empathy.atomic import atomic_write_text

MISSING = "–"
INFERENCES = ("beam", "greedy")

# (header, our metric, digits); the seed's columns first
COLUMNS: Tuple[Tuple[str, str, int], ...] = (
    ("Emotion acc (16)", "emotion_acc", 3),
    ("BLEU", "mbleu", 2),
    ("METEOR", "meteor", 3),
    ("PPL", "ppl", 1),
    ("VADER Δ", "vader_delta", 3),
    ("Dist-1", "dist1", 2),
    ("Dist-2", "dist2", 2),
)
DECODING_FREE = ("emotion_acc", "ppl")

# ANCHORS.md, "Seed paper ... persona-aware MoEL", Results (test); cells as it writes them
# (the METEOR pair is in the order of the BLEU pair before it: beam, then greedy)
SEED_ROWS: Tuple[Tuple[str, Dict[str, str]], ...] = (
    ("ModMoEL + persona on PEC_16 (seed paper)", {
        "emotion_acc": "0.233", "mbleu": "2.17 beam / 2.11 greedy",
        "meteor": "0.106 beam / 0.111 greedy", "ppl": "144.7",
    }),
    ("ModMoEL without persona on PEC_16 (seed paper)", {
        "emotion_acc": "0.285", "mbleu": "1.75", "ppl": "146.3",
    }),
)
SEED_NOTES = (
    "Seed rows: ANCHORS.md (seed paper, PEC filtered to contexts with >1 speaker, >= 20 "
    "context words, >= 25 persona sentences, responses >= 10 words; labels from its BERT "
    "emotion classifier over 16 groups). The seed reported a VADER sentiment increase without "
    "a number here.",
    "Ours: `-t pec --pec-filter true -dt test`, emotion labels from our classifier mapped to "
    "the 16 groups; BLEU = multi-bleu.perl BLEU-4 x100 on the paper tokens (`mbleu`); METEOR "
    "= NLTK's, in [0, 1]; VADER Δ = mean compound(response) - compound(reference); "
    "emotion accuracy and ppl do not depend on decoding (beam run shown).",
)


class SeedTableError(ValueError):
    """A report file is missing or not an eval_model report; the message names it."""


def read_report(path: str) -> Dict[str, float]:
    """The ``report`` of a ``parlai eval_model --report-filename`` file."""
    if not os.path.isfile(path):
        raise SeedTableError(f"{path} does not exist (run eval_model --report-filename first)")
    try:
        with open(path, encoding="utf-8") as f:
            report = json.load(f)["report"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise SeedTableError(f"{path} is not an eval_model report file ({exc})") from None
    return {k: v for k, v in report.items() if isinstance(v, (int, float))}


def _number(value: Optional[float], digits: int) -> Optional[str]:
    return None if value is None else f"{value:.{digits}f}"


def our_cell(metric: str, digits: int, reports: Mapping[str, Mapping[str, float]]) -> str:
    if metric in DECODING_FREE:
        return _number(reports["beam"].get(metric), digits) or MISSING
    values = [(inference, _number(reports[inference].get(metric), digits))
              for inference in INFERENCES]
    if all(v is None for _, v in values):
        return "skipped (no WordNet data)" if metric == "meteor" else MISSING
    return " / ".join(f"{v or MISSING} {inference}" for inference, v in values)


def render(runs: Sequence[Tuple[str, Mapping[str, Mapping[str, float]]]]) -> str:
    """The Markdown table: ``runs`` as ``(name, {'beam': report, 'greedy': report})``."""
    headers = ["Model", *(header for header, _, _ in COLUMNS)]
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
    ]
    for name, reports in runs:
        cells = [our_cell(metric, digits, reports) for _, metric, digits in COLUMNS]
        lines.append("| " + " | ".join([f"{name} (ours)", *cells]) + " |")
    for name, cells in SEED_ROWS:
        lines.append("| " + " | ".join(
            [name, *(cells.get(metric, MISSING) for _, metric, _ in COLUMNS)]
        ) + " |")
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {note}" for note in SEED_NOTES) + "\n"


def parse_run(text: str) -> Tuple[str, str]:
    name, sep, prefix = text.partition("=")
    if not sep or not name.strip() or not prefix.strip():
        raise SeedTableError(f"--run {text!r}: expected NAME=PREFIX")
    return name.strip(), prefix.strip()


def main(argv: Optional[List[str]] = None) -> str:
    parser = argparse.ArgumentParser(
        prog="python -m parlai_empathy.report.seed_pec", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--run", action="append", required=True,
                        help="NAME=PREFIX: PREFIX_beam.json and PREFIX_greedy.json (repeat)")
    parser.add_argument("--out", required=True, help="the Markdown file to write")
    args = parser.parse_args(argv)
    try:
        runs = []
        for text in args.run:
            name, prefix = parse_run(text)
            runs.append((name, {i: read_report(f"{prefix}_{i}.json") for i in INFERENCES}))
    except SeedTableError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    table = render(runs)
    atomic_write_text(args.out, table)
    print(table)
    return table


if __name__ == "__main__":
    main()
