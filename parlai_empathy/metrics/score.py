"""Score files of generated responses with the evaluation suite ParlAI reports.

One response per line in ``--hyp``, the reference on the same line of each ``--ref`` file
(several ``--ref`` files give several references, as multi-bleu.perl's ``ref0``, ``ref1``);
optional ``--contexts``, gold ``--emotions`` and ``--pred-emotions`` files are parallel too::

    python -m parlai_empathy.metrics.score --hyp beam.txt --ref ref.txt --json scores.json
    parlai empathy_score --hyp beam.txt --ref ref.txt \
        --emotions emotion.txt --pred-emotions predicted.txt

It prints every metric of :func:`~parlai_empathy.metrics.parlai_metrics.generation_metrics`
(plus ``emotion_acc`` when both emotion files are given) and multi-bleu.perl's own summary
line; ``--json`` saves them, ``--per-example`` writes one JSON line per response. The
released outputs of MoEL and MIME and our own ``eval_model`` outputs go through the same
code; for the released files, which are tokenized already, ``--tokenizer whitespace`` reads
them exactly as multi-bleu.perl did (it reproduces MIME's published 3.13 / 2.76 BLEU).
Responses saved as a ParlAI dictionary's spaced tokens (``i ' m sorry to hear that .`` from
the ``re`` tokenizer, e.g. world logs of an older model) are first made sentences again with
``--detokenize re`` (any ``--dict-tokenizer`` name; :func:`parlai_empathy.dictionary.detokenize`),
as our generators now do before they report.
Bad input (a missing file, files whose line counts differ, text that is not UTF-8)
stops with one error naming the file and line.
"""
import argparse
import json
import os
import sys
from dataclasses import dataclass, replace
from typing import Dict, List, Mapping, Optional, Sequence

from parlai.core.metrics import AverageMetric, Metric

from parlai_empathy.dictionary import DETOKENIZABLE, detokenize
from parlai_empathy.metrics.bleu import SACREBLEU_SIGNATURE, multi_bleu_score
from parlai_empathy.metrics.emotion import emotion_hits
from parlai_empathy.metrics.parlai_metrics import METRIC_DESCRIPTIONS, generation_metrics
from parlai_empathy.metrics.rouge import rouge_l
from parlai_empathy.metrics.sentiment import vader_delta
from parlai_empathy.metrics.tokenization import TOKENIZERS, get_tokenizer

DESCRIPTION = "Score a file of generated responses against references (the empathy suite)."


class ScoreInputError(ValueError):
    """An input file is missing, unreadable or not parallel to the responses."""


@dataclass
class ScoreInputs:
    """Parallel lines: ``refs[i]`` are the references of ``hyps[i]``."""

    hyps: List[str]
    refs: List[List[str]]
    contexts: Optional[List[str]] = None
    emotions: Optional[List[str]] = None
    pred_emotions: Optional[List[str]] = None


def read_lines(path: str) -> List[str]:
    """The lines of a UTF-8 text file, without their line endings."""
    if not os.path.exists(path):
        raise ScoreInputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ScoreInputError(f"{path}: is a directory, not a file")
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the final newline ends the last line; it does not start a new one
    decoded = []
    for number, line in enumerate(lines, start=1):
        try:
            decoded.append(line.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as error:
            raise ScoreInputError(
                f"{path}:{number}: not UTF-8 text ({error.reason} at byte {error.start})"
            ) from None
    return decoded


def _check_parallel(hyp_path: str, n_hyps: int, path: str, lines: List[str]):
    if len(lines) != n_hyps:
        longer, shorter = (path, hyp_path) if len(lines) > n_hyps else (hyp_path, path)
        first_extra = min(len(lines), n_hyps) + 1
        raise ScoreInputError(
            f"{path} has {len(lines)} lines but {hyp_path} has {n_hyps}: "
            f"{longer}:{first_extra} has no counterpart in {shorter}"
        )


def load_inputs(
    hyp: str,
    refs: Sequence[str],
    contexts: Optional[str] = None,
    emotions: Optional[str] = None,
    pred_emotions: Optional[str] = None,
) -> ScoreInputs:
    """Read and check the parallel files."""
    if not refs:
        raise ScoreInputError("no references file given (--ref)")
    hyps = read_lines(hyp)
    if not hyps:
        raise ScoreInputError(f"{hyp}: no responses (the file is empty)")
    ref_columns = []
    for path in refs:
        lines = read_lines(path)
        _check_parallel(hyp, len(hyps), path, lines)
        ref_columns.append(lines)
    optional = {}
    named = {"contexts": contexts, "emotions": emotions, "pred_emotions": pred_emotions}
    for name, path in named.items():
        if path:
            optional[name] = read_lines(path)
            _check_parallel(hyp, len(hyps), path, optional[name])
    return ScoreInputs(hyps=hyps, refs=[list(r) for r in zip(*ref_columns)], **optional)


def score_metrics(inputs: ScoreInputs, tokenizer: str = "paper") -> Dict[str, Metric]:
    """Every metric of the suite over the whole corpus, as ParlAI metrics."""
    metrics = generation_metrics(inputs.hyps, inputs.refs, tokenizer=tokenizer)
    if inputs.emotions is not None and inputs.pred_emotions is not None:
        hits = emotion_hits(inputs.pred_emotions, inputs.emotions)
        metrics["emotion_acc"] = AverageMetric(sum(hits), len(hits))
    return metrics


def score(inputs: ScoreInputs, tokenizer: str = "paper") -> Dict[str, float]:
    """Every metric of the suite over the whole corpus, by name."""
    return {name: metric.value() for name, metric in score_metrics(inputs, tokenizer).items()}


def per_example(inputs: ScoreInputs, tokenizer: str = "paper") -> List[dict]:
    """One row per response: its texts and the metrics that are defined per response."""
    tokenize = get_tokenizer(tokenizer)
    rows = []
    for i, (hyp, refs) in enumerate(zip(inputs.hyps, inputs.refs)):
        hyp_tokens = tokenize(hyp)
        row = {"line": i + 1}
        if inputs.contexts is not None:
            row["context"] = inputs.contexts[i]
        if inputs.emotions is not None:
            row["emotion"] = inputs.emotions[i]
        if inputs.pred_emotions is not None:
            row["pred_emotion"] = inputs.pred_emotions[i]
        row.update(
            hyp=hyp,
            refs=refs,
            resp_len=len(hyp_tokens),
            rougeL=rouge_l(" ".join(hyp_tokens), [" ".join(tokenize(r)) for r in refs]),
            vader_delta=vader_delta(hyp, refs[0]),
        )
        rows.append(row)
    return rows


def add_score_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The scorer's options, on an argparse (or ParlaiParser) parser."""
    group = parser.add_argument_group("Empathy scorer")
    # --hyp and --ref are checked by run(): ParlAI's --help would trip over required=True
    group.add_argument("--hyp", default=None, help="generated responses, one per line (required)")
    group.add_argument(
        "--ref", nargs="+", default=None, metavar="REF",
        help="reference file(s) parallel to --hyp, several for several references (required)",
    )
    group.add_argument(
        "--contexts", default=None, help="dialogue contexts, one per line (kept in --per-example)"
    )
    group.add_argument("--emotions", default=None, help="gold emotion labels, one per line")
    group.add_argument(
        "--pred-emotions", default=None, help="predicted emotion labels, one per line"
    )
    group.add_argument(
        "--tokenizer", default="paper", choices=sorted(TOKENIZERS),
        help="paper: MoEL/MIME preprocessing (default); whitespace: text is already tokenized",
    )
    group.add_argument(
        "--detokenize", default=None, choices=sorted(DETOKENIZABLE), metavar="DICT_TOKENIZER",
        help="the responses are a ParlAI dictionary's tokens joined by spaces (e.g. 're'): "
        "detokenize them first, as our generators do (default: they are text)",
    )
    group.add_argument("--json", default=None, help="also write the scores to this JSON file")
    group.add_argument(
        "--per-example", default=None, help="write one JSON line per response to this file"
    )
    return parser


def run(opt: Mapping) -> Dict[str, float]:
    """Score, print the table and write the requested files; returns the scores."""
    if not opt.get("hyp"):
        raise ScoreInputError("no responses file given (--hyp)")
    if bool(opt.get("emotions")) != bool(opt.get("pred_emotions")):
        raise ScoreInputError("emotion accuracy needs both --emotions and --pred-emotions")
    inputs = load_inputs(
        opt["hyp"],
        opt.get("ref"),
        contexts=opt.get("contexts"),
        emotions=opt.get("emotions"),
        pred_emotions=opt.get("pred_emotions"),
    )
    if opt.get("detokenize"):
        inputs = replace(inputs, hyps=[detokenize(h, opt["detokenize"]) for h in inputs.hyps])
    tokenizer = opt.get("tokenizer") or "paper"
    metrics = score_metrics(inputs, tokenizer)
    values = {name: metric.value() for name, metric in metrics.items()}
    mbleu_line = str(multi_bleu_score(metrics["mbleu"].stats))

    print(
        f"{len(inputs.hyps)} responses in {opt['hyp']}, {len(opt['ref'])} reference file(s), "
        f"tokenizer: {tokenizer}"
        + (f", responses detokenized from '{opt['detokenize']}' tokens"
           if opt.get("detokenize") else "")
    )
    width = max(len(name) for name in values)
    for name, value in values.items():
        print(f"{name:<{width}}  {value:10.4f}  {METRIC_DESCRIPTIONS[name]}")
    print(f"multi-bleu.perl: {mbleu_line}")

    if opt.get("json"):
        report = {
            "scores": values,
            "multi_bleu": mbleu_line,
            "n_responses": len(inputs.hyps),
            "tokenizer": tokenizer,
            "detokenized_from": opt.get("detokenize"),
            "sacrebleu": SACREBLEU_SIGNATURE,
            "files": {
                key: opt.get(key)
                for key in ("hyp", "ref", "contexts", "emotions", "pred_emotions")
                if opt.get(key)
            },
            "definitions": {name: METRIC_DESCRIPTIONS[name] for name in values},
        }
        with open(opt["json"], "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
    if opt.get("per_example"):
        with open(opt["per_example"], "w", encoding="utf-8") as f:
            for row in per_example(inputs, tokenizer):
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return values


def main(argv: Optional[Sequence[str]] = None) -> int:
    prog = "python -m parlai_empathy.metrics.score"
    parser = add_score_args(argparse.ArgumentParser(prog=prog, description=DESCRIPTION))
    args = parser.parse_args(argv)
    try:
        run(vars(args))
    except ScoreInputError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
