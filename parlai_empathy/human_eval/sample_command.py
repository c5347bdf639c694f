"""``parlai empathy_human_eval_sample``: evaluation items and every model's responses.

::

    parlai empathy_human_eval_sample -t empathetic_dialogues --train-experiencer-only true \
        -dt test -mfs zoo:empathy/moel_ed/model,runs/baseline/model \
        --model-names moel,baseline --out study/items.jsonl

Reads the split with the task's teacher (task options such as ``--train-experiencer-only``
apply), draws ``--per-group`` examples of every value of ``--group-field`` with ``--seed``
(defaults: 4 per ED emotion, seed 1234: MoEL's and MIME's 128 items) and writes each
model's response (the model's saved decoding settings; ``--inference`` / ``--beam-size``
override them for every model), ``-bs`` contexts at a time (default 32; the replies do not
depend on it).
"""
from typing import Any, Dict, Mapping

from parlai_empathy.human_eval.items import (
    ItemsError,
    generate_responses,
    parse_model_list,
    read_task_examples,
    sample_items,
    write_items,
)
from parlai_empathy.report.evaluate import ReportInputError, resolve_model_file

PROG = "parlai empathy_human_eval_sample"
DESCRIPTION = "Sample human-evaluation items from a task's split and generate each model's reply."


def add_sample_args(parser):
    """The command's options, on a ``ParlaiParser(True, False)``."""
    from parlai_empathy.report.command import check_task_option

    check_task_option(parser, PROG)
    parser.set_params(datatype="test", batchsize=32)
    group = parser.add_argument_group("Human evaluation items")
    group.add_argument("-mfs", "--model-files", default=None,
                       help="comma-separated model files, zoo: paths too (required)")
    group.add_argument("--model-names", default=None,
                       help="comma-separated names shown in the analysis (default: each "
                       "model file's folder name)")
    group.add_argument("--out", default=None, help="items file to write, JSON lines (required)")
    group.add_argument("--group-field", default="emotion",
                       help="message field to stratify by (ED: emotion; esconv: emotion_type)")
    group.add_argument("--per-group", type=int, default=4, help="items per group value")
    group.add_argument("--seed", type=int, default=1234, help="seed of the draw")
    group.add_argument("--inference", default=None,
                       help="decoding for every model; default: each model's own")
    group.add_argument("--beam-size", type=int, default=None,
                       help="beam size; default: each model's own")
    return parser


def run(opt: Mapping[str, Any]):
    from parlai.utils import logging

    if not opt.get("out"):
        raise ItemsError("no output file given (--out FILE)")
    if not opt.get("task"):
        raise ItemsError("no task given (-t TASK)")
    models = parse_model_list(opt.get("model_files"), opt.get("model_names"))
    for model_file in models.values():  # every model loads before any work is done
        try:
            resolve_model_file(model_file, opt["datapath"])
        except ReportInputError as error:
            raise ItemsError(str(error)) from None
    examples = read_task_examples(opt)
    items = sample_items(examples, opt["task"], opt["datatype"], opt["group_field"],
                         opt["per_group"], opt["seed"])
    overrides: Dict[str, Any] = {}
    if opt.get("inference"):
        overrides["inference"] = opt["inference"]
    if opt.get("beam_size"):
        overrides["beam_size"] = opt["beam_size"]
    for name, model_file in models.items():
        logging.info(f"generating {len(items)} responses with {name} ({model_file})")
        generate_responses(items, name, model_file, opt["datapath"], overrides,
                           batchsize=opt["batchsize"])
    write_items(opt["out"], items)
    logging.info(f"wrote {len(items)} items ({len(examples)} examples in the split) "
                 f"to {opt['out']}")
    return {"items": len(items), "examples": len(examples), "models": list(models)}
