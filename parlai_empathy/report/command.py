"""``parlai empathy_report``: evaluate models on a task, next to ANCHORS.md's numbers.

::

    parlai empathy_report -mfs runs/a/model,zoo:empathy/tiny_generator_ed/model \
        -t empathetic_dialogues --train-experiencer-only true -dt test \
        --out docs/results_ed_test [--num-examples N] [--inference beam --beam-size 5]

Each model file is evaluated in this process by ParlAI's ``eval_model`` with the options
given here (task, datatype, task options such as ``--train-experiencer-only``,
``--num-examples``, ``--inference``, ``--beam-size``, ``--batchsize`` ...) overriding the
model's saved ones, exactly as ``parlai eval_model -mf MODEL <the same options>`` would,
with one exception: it generates (``--skip-generation false``) unless the command line says
otherwise, also for models trained with ``--skip-generation true``.
It writes

* ``<out>.md``: our rows and the dataset's anchor rows side by side, the settings of each
  evaluation and all the suite's metrics (:mod:`.render`);
* ``<out>.png``: a grouped bar chart of the comparable metrics and ppl (:mod:`.chart`);
* ``<out>.json``: every number unrounded, with ParlAI's whole report per model;
* with ``--world-logs PREFIX``: each model's replies, as eval_model's world logs
  (``PREFIX.N.jsonl`` for the N-th model), to read or re-score them.

A missing model file or an unknown task stops the command with one error naming it,
before anything is evaluated.
"""
import json
import os
from typing import Any, Dict, List, Mapping

from parlai_empathy.report.anchors import anchors_for_task
from parlai_empathy.report.evaluate import (
    ModelEvaluation,
    ReportInputError,
    evaluate_model,
    resolve_model_file,
)

PROG = "parlai empathy_report"
DESCRIPTION = (
    "Evaluate models on a task and write a Markdown table next to the ANCHORS.md numbers, "
    "a PNG chart and a JSON file."
)

# options of the report itself: everything else given on the command line goes to eval_model
REPORT_OPTIONS = frozenset({"model_files", "out", "seed", "world_logs"})
# options shown in their own columns (or machine-specific): not listed as "other options"
SHOWN_OPTIONS = frozenset(
    {"task", "datatype", "num_examples", "inference", "beam_size", "datapath", "model_file"}
)


def check_task(task: str) -> str:
    """``task`` if ParlAI can load a teacher for each of its tasks; else an error naming it."""
    from parlai.core.loader import load_teacher_module
    from parlai.tasks.tasks import ids_to_tasks

    for name in ids_to_tasks(task).split(","):
        module = "parlai.tasks." + name.split(":")[0]
        try:
            load_teacher_module(name)
        except ModuleNotFoundError as error:
            if error.name and module.startswith(error.name):
                raise ReportInputError(f"unknown task {name!r} (no module {module})") from None
            raise ReportInputError(f"task {name!r} cannot be loaded: {error}") from None
        except (ImportError, AttributeError) as error:
            raise ReportInputError(f"unknown task {name!r} ({error})") from None
    return task


def check_task_option(parser, prog: str):
    """Make ``-t`` of ``parser`` stop with one line naming an unknown task.

    ParlAI loads the task's module while it parses (for the task's own options), and
    argparse would wrap the error into "invalid value" after printing ParlAI's whole help
    text: the name is checked first instead.
    """

    def task_argument(task: str) -> str:
        try:
            return check_task(task)
        except ReportInputError as error:
            raise SystemExit(f"{prog}: error: {error}") from None

    for action in parser._actions:
        if action.dest == "task":
            action.type = task_argument


def add_report_args(parser):
    """The report's options, on a ``ParlaiParser(True, False)``."""
    check_task_option(parser, PROG)
    parser.set_params(datatype="valid")  # as eval_model: the train split needs :evalmode
    group = parser.add_argument_group("Empathy report")
    group.add_argument(
        "-mfs", "--model-files", default=None,
        help="comma-separated model files to evaluate, zoo: paths too (required)",
    )
    group.add_argument(
        "--out", default=None,
        help="output path without extension: writes <out>.md, <out>.png and <out>.json "
        "(required)",
    )
    group.add_argument(
        "-ne", "--num-examples", type=int, default=-1,
        help="evaluate on at most this many examples (ParlAI rounds up to whole batches)",
    )
    group.add_argument(
        "--inference", default=None,
        help="decoding for every model (greedy, beam, topk, nucleus ...); default: each "
        "model's own",
    )
    group.add_argument(
        "--beam-size", type=int, default=None, help="beam size; default: each model's own"
    )
    group.add_argument(
        "--skip-generation", type="bool", default=False,
        help="ppl only, no generation metrics (default: generate, whatever the model's .opt "
        "says)",
    )
    group.add_argument(
        "--world-logs", default=None,
        help="save every model's replies with eval_model's world logger: model N of "
        "--model-files to <this>.N.jsonl (default: not saved)",
    )
    group.add_argument(
        "--seed", type=int, default=1234,
        help="seed set before each model's evaluation (matters for sampling inference and "
        "for models that sample inside, e.g. MIME's stochastic mixture)",
    )
    return parser


def _command_line(overrides: Mapping[str, Any]) -> str:
    from parlai_empathy.report.render import format_options

    return f"{PROG} {format_options(overrides)}"


def _split_model_files(text) -> List[str]:
    files = [name.strip() for name in (text or "").split(",") if name.strip()]
    if not files:
        raise ReportInputError("no model files given (-mfs MODEL[,MODEL...])")
    return files


def run(opt: Mapping[str, Any]) -> Dict[str, Any]:
    """Evaluate, write ``<out>.md``, ``<out>.png`` and ``<out>.json``; return the JSON."""
    from parlai.utils import logging

    from parlai_empathy.report.chart import write_chart
    from parlai_empathy.report.render import json_report, markdown

    model_files = _split_model_files(opt.get("model_files"))
    if not opt.get("out"):
        raise ReportInputError("no output path given (--out PATH, without extension)")
    if not opt.get("task"):
        raise ReportInputError("no task given (-t TASK)")
    check_task(opt["task"])
    if "train" in opt["datatype"] and "evalmode" not in opt["datatype"]:
        raise ReportInputError(
            f"datatype {opt['datatype']}: evaluate the training set with -dt train:evalmode"
        )
    datapath = opt["datapath"]
    for model_file in model_files:
        resolve_model_file(model_file, datapath)  # every input is checked before evaluating

    overrides = dict(opt.get("override") or {})
    eval_options = {k: v for k, v in overrides.items() if k not in REPORT_OPTIONS}
    eval_options.setdefault("task", opt["task"])
    eval_options.setdefault("datatype", opt["datatype"])
    if opt.get("num_examples") is not None:
        eval_options.setdefault("num_examples", opt["num_examples"])
    other_options = {k: v for k, v in eval_options.items() if k not in SHOWN_OPTIONS}
    # A model trained with --skip-generation true saves it in its .opt, and eval_model would
    # then generate nothing: the report exists for the generation metrics, so it generates
    # unless its own command line says --skip-generation true.
    eval_options["skip_generation"] = bool(opt.get("skip_generation"))

    evaluations: List[ModelEvaluation] = []
    for i, model_file in enumerate(model_files, start=1):
        logging.info(f"empathy_report: evaluating model {i}/{len(model_files)}: {model_file}")
        options = dict(eval_options)
        if opt.get("world_logs"):
            options["world_logs"] = f"{opt['world_logs']}.{i}.jsonl"
        evaluations.append(evaluate_model(model_file, options, opt["seed"], datapath))

    out = opt["out"]
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    files = {"markdown": out + ".md", "chart": out + ".png", "json": out + ".json"}
    anchors = anchors_for_task(opt["task"])
    context = dict(
        task=opt["task"],
        datatype=opt["datatype"],
        command=_command_line(overrides),
        other_options=other_options,
    )
    write_chart(
        files["chart"], evaluations, anchors,
        title=f"{opt['task']} ({opt['datatype']}): ours"
        + (" vs ANCHORS.md" if anchors is not None else ""),
    )
    text = markdown(
        evaluations, anchors, chart_file=os.path.basename(files["chart"]), **context
    )
    with open(files["markdown"], "w", encoding="utf-8") as f:
        f.write(text)
    result = json_report(evaluations, anchors, files=files, **context)
    with open(files["json"], "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2, ensure_ascii=False)
        f.write("\n")
    for kind, path in files.items():
        logging.info(f"empathy_report: wrote the {kind} {path}")
    return result
