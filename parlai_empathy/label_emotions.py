"""``parlai empathy_label_emotions``: label every example of a ParlAI task with an emotion
classifier.

::

    parlai empathy_label_emotions -mf runs/emo_ed/model -t pec -dt valid \
        --out pec_valid_emotions.jsonl
    parlai train_model -m empathy/... -t pec --pec-emotion-file pec_valid_emotions.jsonl ...

Output: JSON Lines, one object per example in the task's order::

    {"task": "pec", "split": "valid", "example": 0, "index": 0, "domain": "happy",
     "emotion": "joyful", "probability": 0.61, "top5": [["joyful", 0.61], ...]}

``example`` is the position in the whole task (0-based), ``index`` the example's
``conversation_index`` when the teacher gives one (PEC) and else its position in its own
teacher, ``domain`` is copied when the example has one. That is the format of
``--pec-emotion-file`` (:func:`parlai_empathy.data.pec.read_emotion_labels`), which reads
``domain``, ``split``, ``index`` and ``emotion`` (and keeps ``probability``).

The classifier reads what the generators would see: ``--label-context history`` (default)
joins the episode so far (texts and gold replies, one a line, as ParlAI's history) with the
example's text; ``text`` uses the example's text alone. Examples go through the model in
batches of ``--batchsize``, with a progress bar.

Interruptions: lines go to ``OUT.partial`` batch by batch, each batch written whole and
fsync'd, next to ``OUT.partial.json`` that records what the run labels (model, task, split,
context). Running the same command again continues after the last complete line (a torn
last line is cut off); a different command refuses to touch another run's partial file. At
the end ``OUT.partial`` is renamed to ``OUT``, so ``OUT`` is never half-written. An existing
``OUT`` is not overwritten.
"""
import json
import os
import time
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

PROG = "parlai empathy_label_emotions"
DESCRIPTION = (
    "Label every example of a task with an emotion classifier: JSON Lines with the predicted "
    "emotion, its probability and the top 5 (the format of --pec-emotion-file); resumable."
)
TOP_K = 5
PARTIAL_SUFFIX = ".partial"
MARKER_SUFFIX = ".partial.json"
# seconds to sleep after each batch: lets the tests interrupt a run half-way on a tiny model
DELAY_ENV = "PARLAI_EMPATHY_LABEL_BATCH_DELAY"


class LabelInputError(ValueError):
    """Bad input for the labelling command; the message says what and where."""


def add_label_args(parser):
    """The command's options, on a ``ParlaiParser(True, True)``."""
    from parlai_empathy.report.command import check_task_option

    check_task_option(parser, PROG)
    parser.set_params(datatype="valid", batchsize=32)
    group = parser.add_argument_group("Emotion labelling")
    group.add_argument("--out", default=None, help="output JSON Lines file (required)")
    group.add_argument(
        "--label-context",
        default="history",
        choices=["history", "text"],
        help="history: the episode so far and the example's text, one turn a line (what "
        "ParlAI's history gives a generator); text: the example's text alone",
    )
    return parser


# --- the partial file ------------------------------------------------------------------------


def _fsync_dir(path: str) -> None:
    fd = os.open(os.path.dirname(os.path.abspath(path)) or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _resume(out: str, identity: Dict[str, Any]) -> int:
    """Examples already labelled in ``out.partial`` (0 for a new run); cuts a torn line."""
    partial, marker = out + PARTIAL_SUFFIX, out + MARKER_SUFFIX
    if os.path.exists(marker):
        with open(marker, encoding="utf-8") as f:
            try:
                saved = json.load(f)
            except json.JSONDecodeError:
                saved = None
        if saved != identity:
            raise LabelInputError(
                f"{partial} belongs to another labelling run ({marker}: {saved}); remove "
                f"{partial} and {marker} to start again"
            )
    elif os.path.exists(partial):
        raise LabelInputError(
            f"{partial} exists without its resume marker {marker}; remove it to start again"
        )
    if not os.path.exists(partial):  # a new run (or one stopped before its first line)
        tmp = marker + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(identity, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, marker)
        with open(partial, "w", encoding="utf-8"):
            pass
        _fsync_dir(out)
        return 0
    with open(partial, "rb+") as f:
        data = f.read()
        keep = data.rfind(b"\n") + 1  # complete lines only
        if keep != len(data):
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
    lines = data[:keep].splitlines()
    for number, line in enumerate(lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict) or record.get("example") != number:
            raise LabelInputError(
                f"{partial}:{number + 1}: not the line of example {number} this command "
                f"writes; remove {partial} and {marker} to start again"
            )
    return len(lines)


# --- the task's examples ---------------------------------------------------------------------


def _split(datatype: str) -> str:
    return datatype.split(":")[0]


def _examples(opt) -> Iterator[Tuple[str, int, Any, str]]:
    """``(teacher id, position in that teacher, message, context text)`` in task order."""
    from parlai.core.teachers import create_task_agent_from_taskname

    task_opt = dict(opt)
    split = _split(opt["datatype"])
    # one ordered pass over the data, whatever the split
    task_opt["datatype"] = f"{split}:evalmode" if split == "train" else split
    task_opt["batchsize"] = 1
    from parlai.core.opt import Opt

    for teacher in create_task_agent_from_taskname(Opt(task_opt)):
        history: List[str] = []
        for position in range(teacher.num_examples()):
            message = teacher.act()
            text = message.get("text")
            if not isinstance(text, str) or not text.strip():
                raise LabelInputError(
                    f"example {position} of {teacher.getID()} ({split}) has an empty "
                    f"'text' field: nothing to classify"
                )
            if opt.get("label_context", "history") == "history":
                context = "\n".join(history + [text])
                labels = message.get("labels") or message.get("eval_labels")
                history.extend([text] + ([labels[0]] if labels else []))
            else:
                context = text
            if message.get("episode_done", True):
                history = []
            yield teacher.getID(), position, message, context


# --- run ---------------------------------------------------------------------------------------


def run(opt: Mapping[str, Any]) -> Dict[str, Any]:
    """Label the task's examples into ``opt['out']``; return a summary."""
    from parlai.core.agents import create_agent
    from parlai.utils import logging
    from tqdm import tqdm

    from parlai_empathy.report.command import check_task
    from parlai_empathy.report.evaluate import ReportInputError

    out = opt.get("out")
    if not out:
        raise LabelInputError("no output file given (--out FILE)")
    if os.path.exists(out):
        raise LabelInputError(f"{out} exists; remove it (or choose another --out) to label again")
    if not opt.get("task"):
        raise LabelInputError("no task given (-t TASK)")
    try:
        check_task(opt["task"])
    except ReportInputError as error:
        raise LabelInputError(str(error)) from None
    model_file = opt.get("model_file")
    if not model_file or not os.path.isfile(model_file):
        raise LabelInputError(f"model file {model_file!r} does not exist (-mf MODEL)")
    batchsize = max(1, int(opt.get("batchsize") or 1))
    agent_opt = dict(opt)
    agent_opt["batchsize"] = 1  # the agent is only used through classify()
    from parlai.core.opt import Opt

    agent = create_agent(Opt(agent_opt), requireModelExists=True)
    if not hasattr(agent, "classify"):
        raise LabelInputError(
            f"{model_file} is a {type(agent).__name__}, not an emotion classifier "
            "(-m empathy/emotion_classifier)"
        )
    agent.opt["top_k"] = TOP_K
    split = _split(opt["datatype"])
    identity = {
        "model_file": os.path.abspath(model_file),
        "task": opt["task"],
        "split": split,
        "label_context": opt.get("label_context", "history"),
        "classes": list(agent.class_list),
    }
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    done = _resume(out, identity)
    if done:
        logging.info(f"{PROG}: resuming {out + PARTIAL_SUFFIX} after {done} examples")
    delay = float(os.environ.get(DELAY_ENV) or 0)

    partial = out + PARTIAL_SUFFIX
    total = 0
    with open(partial, "a", encoding="utf-8") as f, tqdm(
        desc="labelling", unit="ex", initial=done, disable=None
    ) as progress:
        pending: List[Tuple[Dict[str, Any], str]] = []

        def flush():
            if not pending:
                return
            tops = agent.classify([context for _, context in pending])
            lines = []
            for (record, _), top in zip(pending, tops):
                record.update(emotion=top[0][0], probability=top[0][1], top5=top)
                lines.append(json.dumps(record, ensure_ascii=False) + "\n")
            f.write("".join(lines))
            f.flush()
            os.fsync(f.fileno())
            progress.update(len(pending))
            pending.clear()
            if delay:
                time.sleep(delay)

        for number, (teacher_id, position, message, context) in enumerate(_examples(opt)):
            total = number + 1
            if number < done:
                continue
            record: Dict[str, Any] = {"task": teacher_id, "split": split, "example": number}
            index = message.get("conversation_index", position)
            record["index"] = index
            if message.get("domain") is not None:
                record["domain"] = message["domain"]
            pending.append((record, context))
            if len(pending) == batchsize:
                flush()
        flush()
    if total < done:
        raise LabelInputError(
            f"{partial} holds {done} examples but the task has only {total}; remove it and "
            f"{out + MARKER_SUFFIX} to start again"
        )
    os.replace(partial, out)
    os.remove(out + MARKER_SUFFIX)
    _fsync_dir(out)
    logging.info(f"{PROG}: {total} examples labelled into {out}")
    return {"out": out, "examples": total, "resumed_after": done}
