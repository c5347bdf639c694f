"""Evaluation items: contexts sampled from a task's test split, one response per model.

MoEL and MIME rated 128 test contexts, 4 per emotion (32 ED emotions). :func:`sample_items`
does the same for any ParlAI task whose messages carry a group field (``emotion`` for
``empathetic_dialogues``, ``emotion_type`` for ``esconv``): it reads the split with the
task's own teacher, keeps each example's whole preceding dialogue as its context, and draws
``per_group`` examples of every group with a seeded generator. :func:`generate_responses`
then asks each model (any ``-mf``, ``zoo:`` included) for its reply with ParlAI's agent
API, the dialogue fed as one history joined by the model's own ``--delimiter``, the way
the model saw its training data.

Items are written as JSON lines (:func:`write_items`); everything downstream (the Potato
tasks, the analysis, the Conversations export) reads that file.
"""
import json
import os
import random
from dataclasses import asdict, dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence

from parlai_empathy.atomic import atomic_write_text

SPEAKER, LISTENER = "Speaker", "Listener"


class ItemsError(ValueError):
    """Bad items input or options; the message names the file, line or field."""


@dataclass
class EvalItem:
    """One context to evaluate, with the reference and each model's response."""

    item_id: str
    task: str
    datatype: str
    group: str
    context: List[Dict[str, str]]  # [{"speaker": ..., "text": ...}], oldest first
    reference: str
    responses: Dict[str, str] = field(default_factory=dict)  # model name -> response

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


def read_task_examples(opt) -> List[dict]:
    """Every example of ``opt['task']`` / ``opt['datatype']`` with its dialogue so far.

    Each returned dict is the teacher's message plus ``context``: the turns before the
    label (earlier texts and labels of the episode, then this text), as speaker turns.
    """
    from parlai.agents.repeat_label.repeat_label import RepeatLabelAgent
    from parlai.core.worlds import create_task

    opt = opt.copy()
    opt["batchsize"] = 1  # the episodes in order, one message at a time (-bs is for decoding)
    if "train" in opt["datatype"] and "evalmode" not in opt["datatype"]:
        opt["datatype"] = opt["datatype"].split(":")[0] + ":evalmode"
    world = create_task(opt, RepeatLabelAgent(opt))
    examples: List[dict] = []
    history: List[Dict[str, str]] = []
    while not world.epoch_done():
        world.parley()
        message = world.get_acts()[0]
        if message.get("text") is None and not message.get("labels"):
            continue  # a batch-padding or end-of-data act
        text = message.get("text", "")
        labels = message.get("labels") or message.get("eval_labels") or [""]
        context = history + [{"speaker": SPEAKER, "text": text}]
        examples.append(dict(message, context=context, reference=labels[0]))
        history = context + [{"speaker": LISTENER, "text": labels[0]}]
        if message.get("episode_done"):
            history = []
    return examples


def sample_items(
    examples: Sequence[dict],
    task: str,
    datatype: str,
    group_field: str,
    per_group: int,
    seed: int,
) -> List[EvalItem]:
    """``per_group`` examples of every value of ``group_field``, drawn with ``seed``.

    Groups are taken in sorted order and items keep the split's order inside a group, so
    the same seed gives the same items on any machine.
    """
    if per_group < 1:
        raise ItemsError(f"--per-group must be at least 1 (got {per_group})")
    groups: Dict[str, List[int]] = {}
    for index, example in enumerate(examples):
        value = example.get(group_field)
        if value is None or value == "":
            raise ItemsError(
                f"task {task} ({datatype}): example {index} has no {group_field!r} field "
                f"(fields: {', '.join(sorted(k for k in example if k != 'context'))}); "
                "choose the task's label field with --group-field"
            )
        groups.setdefault(str(value), []).append(index)
    rng = random.Random(seed)
    items: List[EvalItem] = []
    for group in sorted(groups):
        members = groups[group]
        if len(members) < per_group:
            raise ItemsError(
                f"task {task} ({datatype}): group {group!r} has {len(members)} examples, "
                f"fewer than --per-group {per_group}"
            )
        for index in sorted(rng.sample(members, per_group)):
            example = examples[index]
            items.append(
                EvalItem(
                    item_id=f"{task.replace(':', '_')}-{datatype.split(':')[0]}-{index:05d}",
                    task=task,
                    datatype=datatype,
                    group=group,
                    context=example["context"],
                    reference=example["reference"],
                )
            )
    return items


def generate_responses(items: List[EvalItem], name: str, model_file: str, datapath: str,
                       overrides=None, batchsize: int = 1):
    """Fill ``item.responses[name]`` with the reply of ``model_file`` to each context.

    Each context is a fresh episode. ``batchsize`` contexts are decoded together (ParlAI's
    ``batch_act``, as ``eval_model`` does: padding is masked, so a reply does not depend on
    its batch). ``zoo:`` model files are fetched into ``datapath`` (the command's
    ``--datapath``).
    """
    from parlai.core.agents import create_agent_from_model_file, create_agent_from_shared

    from parlai_empathy.report.evaluate import ReportInputError, resolve_model_file

    if batchsize < 1:
        raise ItemsError(f"--batchsize must be at least 1, not {batchsize}")
    try:
        resolved = resolve_model_file(model_file, datapath)
    except ReportInputError as error:
        raise ItemsError(str(error)) from None
    settings = {"skip_generation": False, "interactive_mode": True, "datapath": datapath}
    agent = create_agent_from_model_file(resolved, dict(settings, **(overrides or {})))
    delimiter = agent.opt.get("delimiter", "\n")
    copies = [agent]
    for start in range(0, len(items), batchsize):
        chunk = items[start:start + batchsize]
        while len(copies) < len(chunk):
            copies.append(create_agent_from_shared(agent.share()))
        observations = []
        for copy, item in zip(copies, chunk):
            copy.reset()
            text = delimiter.join(turn["text"] for turn in item.context)
            observations.append(copy.observe({"id": "context", "text": text,
                                              "episode_done": True}))
        replies = agent.batch_act(observations)
        for copy, item, reply in zip(copies, chunk, replies):
            copy.self_observe(reply)
            item.responses[name] = str(reply.get("text", ""))


def write_items(path: str, items: Iterable[EvalItem]):
    """The items as JSON lines, written whole or not at all."""
    atomic_write_text(path, "".join(item.to_json() + "\n" for item in items))


def read_items(path: str) -> List[EvalItem]:
    """Items from :func:`write_items`' file; errors name the line and the field."""
    if not os.path.isfile(path):
        raise ItemsError(f"{path}: no such items file")
    items: List[EvalItem] = []
    seen = set()
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ItemsError(f"{path}:{number}: not JSON ({error.msg})") from None
            if not isinstance(record, dict):
                raise ItemsError(f"{path}:{number}: expected a JSON object")
            try:
                item = EvalItem(**record)
            except TypeError as error:
                raise ItemsError(f"{path}:{number}: {error}") from None
            if not isinstance(item.responses, dict) or not all(
                isinstance(v, str) for v in item.responses.values()
            ):
                raise ItemsError(f"{path}:{number}: field 'responses' must map names to text")
            if not isinstance(item.context, list) or not all(
                isinstance(t, dict) and isinstance(t.get("text"), str) for t in item.context
            ):
                raise ItemsError(
                    f"{path}:{number}: field 'context' must be a list of {{speaker, text}}"
                )
            if item.item_id in seen:
                raise ItemsError(f"{path}:{number}: duplicate item_id {item.item_id!r}")
            seen.add(item.item_id)
            items.append(item)
    if not items:
        raise ItemsError(f"{path}: no items")
    return items


def model_names(items: Sequence[EvalItem]) -> List[str]:
    """The models every item has a response from, in first-item order."""
    names = list(items[0].responses)
    for item in items:
        missing = [n for n in names if n not in item.responses]
        if missing:
            raise ItemsError(f"item {item.item_id}: no response from {', '.join(missing)}")
    return names


def parse_model_list(model_files: str, names: Optional[str]) -> Dict[str, str]:
    """``-mfs a,b`` and ``--model-names x,y`` as {name: model file}; names default to the
    model files' folder names."""
    files = [f for f in (model_files or "").split(",") if f]
    if not files:
        raise ItemsError("give at least one model file with -mfs")
    if names:
        labels = [n for n in names.split(",") if n]
        if len(labels) != len(files):
            raise ItemsError(
                f"--model-names has {len(labels)} names for {len(files)} model files"
            )
    else:
        labels = [os.path.basename(os.path.dirname(f.replace("zoo:", ""))) or f for f in files]
    if len(set(labels)) != len(labels):
        raise ItemsError(f"model names must differ (got {', '.join(labels)}): use --model-names")
    return dict(zip(labels, files))
