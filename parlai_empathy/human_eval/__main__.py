"""``python -m parlai_empathy.human_eval``: run a human evaluation study, step by step.

::

    # 1. items: 128 ED test contexts (4 per emotion, seed 1234) and each model's reply
    python -m parlai_empathy.human_eval sample -t empathetic_dialogues \
        --train-experiencer-only true -mfs MODEL_A,MODEL_B --model-names a,b \
        --out study/items.jsonl
    # 2. Potato tasks: ratings/, ab-a-vs-b/, the answer key, and the annotators' logins
    #    (printed once; the study keeps only their hashes)
    python -m parlai_empathy.human_eval build study/items.jsonl --out study
    python -m parlai_empathy.human_eval logins study --add 2      # later: more, or --reset
    # 3. annotate: locally on 127.0.0.1, or prepare a crowd platform
    python -m parlai_empathy.human_eval serve study/ratings --port 8000
    python -m parlai_empathy.human_eval crowd study/ratings --platform prolific \
        --public-url https://eval.example.org
    # 4. analysis (Markdown, PNG, JSON) and the ACUTE-Eval-ready Conversations logs
    python -m parlai_empathy.human_eval analyze study --out study/results
    python -m parlai_empathy.human_eval export study/items.jsonl --out study/conversations

``sample`` is the ParlAI script ``parlai empathy_human_eval_sample`` (it takes the task's
own options); the other steps need no ParlAI options.
"""
import argparse
import json
import sys

from parlai_empathy.human_eval.annotations import AnnotationsError
from parlai_empathy.human_eval.items import ItemsError
from parlai_empathy.human_eval.logins import LoginsError, parse_logins_option
from parlai_empathy.human_eval.serve import ServeError

PROG = "python -m parlai_empathy.human_eval"


def _pairs(text):
    if not text:
        return None
    pairs = []
    for pair in text.split(","):
        parts = pair.split(":")
        if len(parts) != 2 or not all(parts):
            raise ItemsError(f"--pairs {text!r}: expected A:B[,C:D...]")
        pairs.append(tuple(parts))
    return pairs


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    steps = main.add_subparsers(dest="step", required=True)
    steps.add_parser("sample", help="sample items and generate replies (ParlAI options)",
                     add_help=False)

    build = steps.add_parser("build", help="write the Potato tasks and the answer key")
    build.add_argument("items", help="items file from `sample`")
    build.add_argument("--out", required=True, help="study folder")
    build.add_argument("--annotators", type=int, default=3, help="annotators per instance")
    build.add_argument("--check-every", type=int, default=10,
                       help="Potato injects an attention check after this many items")
    build.add_argument("--checks", type=int, default=3, help="attention-check items per task")
    build.add_argument("--per-annotator", type=int, default=None,
                       help="most instances one annotator gets (default: all)")
    build.add_argument("--pairs", default=None,
                       help="A/B pairs as a:b[,c:d] (default: every pair of models)")
    build.add_argument("--seed", type=int, default=1234, help="seed of orders and ids")
    build.add_argument("--logins", type=parse_logins_option, default=None,
                       help="annotator logins: a number (annotator01...) or names a,b,c "
                            "(default: enough for every instance's annotators)")

    logins = steps.add_parser("logins", help="add annotator logins, or give new passwords")
    logins.add_argument("study_dir")
    logins.add_argument("--add", type=parse_logins_option, default=None,
                        help="a number of new logins, or their names a,b,c")
    logins.add_argument("--reset", default="",
                        help="names (a,b) whose password is replaced")

    serve = steps.add_parser("serve", help="run a task's Potato server")
    serve.add_argument("task_dir", help="a task folder of the study (ratings, ab-...)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--host", default="127.0.0.1",
                       help="interface to bind (default loopback only)")
    serve.add_argument("--config", default="config.yaml", help="config file in the task folder")

    crowd = steps.add_parser("crowd", help="write a crowd-platform config, print its settings")
    crowd.add_argument("task_dir")
    crowd.add_argument("--platform", choices=["prolific", "mturk"], default="prolific")
    crowd.add_argument("--public-url", required=True,
                       help="https URL at which workers will reach the server")
    crowd.add_argument("--completion-code", default=None)

    analyze = steps.add_parser("analyze", help="import annotations, write the analysis")
    analyze.add_argument("study_dir")
    analyze.add_argument("--out", required=True,
                         help="output path without extension (.md, .png, .json)")

    export = steps.add_parser("export", help="items as ParlAI Conversations logs")
    export.add_argument("items")
    export.add_argument("--out", required=True, help="folder for <model>.jsonl files")
    return main


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sample"]:
        from parlai.scripts.empathy_human_eval_sample import EmpathyHumanEvalSample

        EmpathyHumanEvalSample.main(*argv[1:])
        return 0
    args = parser().parse_args(argv)
    try:
        if args.step == "build":
            from parlai_empathy.human_eval.items import read_items
            from parlai_empathy.human_eval.potato_task import build_study

            study = build_study(read_items(args.items), args.out, seed=args.seed,
                                annotators=args.annotators, check_every=args.check_every,
                                checks=args.checks, per_annotator=args.per_annotator,
                                pairs=_pairs(args.pairs), logins=args.logins)
            for task, spec in study.key["tasks"].items():
                print(f"{args.out}/{task}: {len(spec['instances'])} instances, "
                      f"{len(spec['checks'])} attention checks, {args.annotators} annotators "
                      "each")
            print(study.logins_text())
        elif args.step == "logins":
            from parlai_empathy.human_eval.logins import format_logins, update_logins

            reset = [name.strip() for name in args.reset.split(",") if name.strip()]
            print(format_logins(update_logins(args.study_dir, add=args.add, reset=reset)))
            print("A running server sees these after it is restarted.")
        elif args.step == "serve":
            from parlai_empathy.human_eval.serve import serve

            return serve(args.task_dir, args.port, args.host, args.config)
        elif args.step == "crowd":
            from parlai_empathy.human_eval.serve import crowd_config

            settings = crowd_config(args.task_dir, args.platform, args.public_url,
                                    args.completion_code)
            print(json.dumps(settings, indent=1))
        elif args.step == "analyze":
            from parlai_empathy.human_eval.analysis import analyze
            from parlai_empathy.human_eval.annotations import read_study
            from parlai_empathy.human_eval.report import render_markdown, write_report

            result = analyze(read_study(args.study_dir))
            files = write_report(result, args.out)
            print(render_markdown(result))
            print("wrote " + ", ".join(files.values()))
        elif args.step == "export":
            from parlai_empathy.human_eval.conversations_export import export_conversations
            from parlai_empathy.human_eval.items import read_items

            for model, path in export_conversations(read_items(args.items), args.out).items():
                print(f"{model}: {path}")
    except (ItemsError, AnnotationsError, ServeError, LoginsError) as error:
        print(f"{PROG} {args.step}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
