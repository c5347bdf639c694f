"""Score a model's saved replies three ways, to see what detokenization does to the numbers.

The replies come from ParlAI world logs (``parlai empathy_report ... --world-logs PREFIX``
writes ``PREFIX.1.jsonl``)::

    python recipes/detokenization_check.py runs/rescore/moel_v2_beam.1.jsonl

Rows: the replies as the model gives them now (detokenized by its dictionary); the same
replies turned back into ParlAI ``re`` tokens (``i ' m sorry to hear that .``, what the
suite scored before the fix); those tokens detokenized again (must equal the first row).
"""
import json
import sys

from parlai.core.dict import DictionaryAgent

from parlai_empathy.dictionary import detokenize
from parlai_empathy.metrics import generation_metrics

SHOWN = ("mbleu", "bleu4", "rougeL", "dist1", "dist2", "resp_len")


def read_world_logs(path):
    """(reply, references) of every model turn in a world-log JSONL file."""
    pairs = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            for turn in json.loads(line)["dialog"]:
                teacher, model = turn[0], turn[-1]
                labels = teacher.get("eval_labels") or teacher.get("labels")
                if not labels or "text" not in model:
                    raise ValueError(f"{path}:{number}: a turn without labels or reply")
                pairs.append((model["text"], list(labels)))
    return pairs


def main(path):
    pairs = read_world_logs(path)
    replies, refs = [p[0] for p in pairs], [p[1] for p in pairs]
    spaced = [" ".join(DictionaryAgent.re_tokenize(r.lower())) for r in replies]
    rows = {
        "replies as given": replies,
        "as 're' tokens (the old scoring)": spaced,
        "'re' tokens detokenized": [detokenize(s, "re") for s in spaced],
    }
    print(f"{len(replies)} replies from {path}")
    print("| scored | " + " | ".join(SHOWN) + " |")
    print("|---|" + "---:|" * len(SHOWN))
    for name, hyps in rows.items():
        metrics = generation_metrics(hyps, refs)
        print(f"| {name} | " + " | ".join(f"{metrics[m].value():.2f}" for m in SHOWN) + " |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python recipes/detokenization_check.py WORLD_LOGS.jsonl")
    main(sys.argv[1])
