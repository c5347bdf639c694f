"""One Markdown table of retrieval results from ``parlai eval_model --report-filename``
JSON files (the ``recipes/cobert_*.sh`` tables)::

    python -m parlai_empathy.ranking_table --out runs/cobert_ed/results.md \
        "CoBERT (MiniLM, fine-tuned)=runs/cobert_ed/eval_cobert.json" \
        "TF-IDF=runs/cobert_ed/eval_tfidf.json"

Columns: examples, hits@1, hits@10, MRR (``hits@k`` as ParlAI's teacher counts them over
each example's candidates; ``mrr`` as the ranker reports it).
"""
import argparse
import json
import sys
from typing import List, Tuple

COLUMNS = (("exs", "examples"), ("hits@1", "hits@1"), ("hits@10", "hits@10"), ("mrr", "MRR"))


def read_report(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a parlai eval_model report ({exc})") from None
    report = data.get("report") if isinstance(data, dict) else None
    if not isinstance(report, dict) or "exs" not in report:
        raise ValueError(f"{path}: no 'report' with 'exs' (written by --report-filename?)")
    return report


def table(rows: List[Tuple[str, dict]]) -> str:
    lines = ["| model | " + " | ".join(title for _, title in COLUMNS) + " |",
             "|---|" + "---:|" * len(COLUMNS)]
    for name, report in rows:
        cells = []
        for key, _ in COLUMNS:
            value = report.get(key)
            if value is None:
                cells.append("–")
            elif key == "exs":
                cells.append(str(int(value)))
            else:
                cells.append(f"{float(value):.4f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parlai_empathy.ranking_table",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("rows", nargs="+", help="NAME=REPORT.json, in table order")
    parser.add_argument("--out", default=None, help="also write the table to this file")
    args = parser.parse_args(argv)
    rows = []
    for row in args.rows:
        name, sep, path = row.rpartition("=")
        if not sep or not name:
            parser.error(f"{row!r}: expected NAME=REPORT.json")
        rows.append((name, read_report(path)))
    text = table(rows)
    if args.out:
        from parlai_empathy.atomic import atomic_write_text

        atomic_write_text(args.out, text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
