"""Build Potato annotation tasks from evaluation items: ratings and A/B preference.

A study folder holds one Potato task per page type and one answer key:

* ``ratings/``: every (item, model) response rated 1-5 on Empathy, Relevance and Fluency,
  the three scales of the MoEL and MIME human evaluations, on one page;
* ``ab-<A>-vs-<B>/``: for each pair of models, both responses to the same context side by
  side (win / lose / tie), the left/right order drawn per item with the seed;
* ``key.json``: which model wrote each instance, the A/B order of each pair instance and the
  expected answer of each attention check. It stays outside the task folders: Potato puts
  every data field of an instance into the page, so the data files carry only opaque ids
  and the texts a worker must see.

Each task asks for 3 annotators per instance by default (``num_annotators_per_item``) and
uses Potato's own attention checks, injected every ``check_every`` items for every
annotator. Sessions persist across server restarts (``persist_sessions`` with a fixed
``secret_key``), and Potato writes each annotator's answers to
``annotation_output/<user>/user_state.json`` on every submission.

Annotators log in with a name and a password made here (:mod:`.logins`): the passwords
come back to the caller once, each task keeps only their salted hashes, and Potato accepts
no other account. Every file written here is mode 0600 (the config holds the session
signing key).
"""
import hashlib
import itertools
import json
import math
import os
import random
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import yaml

from parlai_empathy.atomic import atomic_write_text
from parlai_empathy.human_eval.items import EvalItem, ItemsError, model_names
from parlai_empathy.human_eval.logins import (
    format_logins,
    hash_password,
    login_names,
    new_password,
    password_login_config,
    write_logins,
)

RATING_SCALES = ("empathy", "relevance", "fluency")

# Our wording of the three criteria as the MoEL / MIME papers define them.
SCALE_QUESTIONS = {
    "empathy": "Empathy: does the response show that the listener understands how the "
    "speaker feels about what they are telling?",
    "relevance": "Relevance: does the response stay on the topic the speaker is talking about?",
    "fluency": "Fluency: is the response natural, grammatical and easy to understand?",
}

RATINGS_INSTRUCTIONS = (
    "You will read the start of a conversation in which a Speaker talks about a personal "
    "experience, and one reply by the Listener. Rate the reply from 1 (not at all) to 5 "
    "(completely) on three criteria. "
    + " ".join(SCALE_QUESTIONS[s] for s in RATING_SCALES)
    + " Some items are attention checks that tell you which answer to give."
)

AB_INSTRUCTIONS = (
    "You will read the start of a conversation in which a Speaker talks about a personal "
    "experience, and two possible replies by the Listener. Choose the reply that is better "
    "overall: more empathetic (it understands how the speaker feels), more relevant to what "
    "the speaker said, and more fluent. Choose Tie only when neither is better. Some items "
    "are attention checks that tell you which answer to give."
)

AB_SCHEME = "preference"
AB_LABELS = ("A", "B")
TIE = "tie"


def _opaque_id(prefix: str, seed: int, *parts: str) -> str:
    digest = hashlib.sha256("\x1f".join((str(seed),) + parts).encode("utf-8")).hexdigest()
    return f"{prefix}{digest[:12]}"


def _display_context(item: EvalItem) -> List[Dict[str, str]]:
    return [{"speaker": t.get("speaker", ""), "text": t["text"]} for t in item.context]


def _likert_schemes() -> List[dict]:
    return [
        {
            "annotation_type": "likert",
            "name": scale,
            "description": SCALE_QUESTIONS[scale],
            "size": 5,
            "min_label": "1: not at all",
            "max_label": "5: completely",
            "displaying_score": True,
            "label_requirement": {"required": True},
        }
        for scale in RATING_SCALES
    ]


def _ab_scheme() -> dict:
    return {
        "annotation_type": "pairwise",
        "name": AB_SCHEME,
        "description": "Which reply is better?",
        "mode": "binary",
        "items_key": "responses",
        "labels": list(AB_LABELS),
        "allow_tie": True,
        "tie_label": TIE,
        "label_requirement": {"required": True},
    }


def _base_config(name: str, annotators: int, check_every: int, seed: int,
                 per_annotator: Optional[int], names: Sequence[str]) -> dict:
    config = {
        "annotation_task_name": name,
        "task_dir": ".",
        "output_annotation_dir": "annotation_output",
        "data_files": ["data/items.jsonl"],
        "item_properties": {"id_key": "id", "text_key": "text"},
        "num_annotators_per_item": annotators,
        "max_annotations_per_item": annotators,
        "assignment_strategy": "least_annotated",
        "random_seed": seed,
        "require_fully_annotated": True,
        "persist_sessions": True,
        "secret_key": secrets.token_hex(32),
        "attention_checks": {
            "enabled": True,
            "items_file": "data/attention_checks.jsonl",
            "frequency": check_every,
            # analysis excludes failing annotators; Potato warns at the first failure and
            # stops handing out work at the third
            "failure_handling": {"warn_threshold": 1, "block_threshold": 3},
        },
    }
    if per_annotator:
        config["max_annotations_per_user"] = per_annotator
    return password_login_config(config, names)


def _write_task(folder: str, config: dict, instances: List[dict], checks: List[dict],
                stored_logins: Dict[str, str]):
    os.makedirs(os.path.join(folder, "data"), exist_ok=True)
    write_logins(folder, stored_logins)
    atomic_write_text(
        os.path.join(folder, "data", "items.jsonl"),
        "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in instances),
    )
    atomic_write_text(
        os.path.join(folder, "data", "attention_checks.jsonl"),
        "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in checks),
    )
    atomic_write_text(
        os.path.join(folder, "config.yaml"), yaml.safe_dump(config, sort_keys=False, width=100)
    )


def _rating_checks(items: Sequence[EvalItem], count: int, seed: int) -> List[dict]:
    rng = random.Random(seed + 1)
    checks = []
    for n in range(count):
        item = items[rng.randrange(len(items))]
        answer = str(1 + (n * 2) % 5)  # 1, 3, 5, 2, 4, ...
        text = (
            f"This is an attention check. Please answer {answer} for Empathy, {answer} for "
            f"Relevance and {answer} for Fluency."
        )
        checks.append(
            {
                "id": _opaque_id("c", seed, "ratings-check", str(n)),
                "text": text,
                "context": _display_context(item),
                "response": text,
                "expected_answer": {scale: answer for scale in RATING_SCALES},
            }
        )
    return checks


def _ab_checks(items: Sequence[EvalItem], count: int, seed: int, pair: str) -> List[dict]:
    rng = random.Random(seed + 2)
    checks = []
    for n in range(count):
        item = items[rng.randrange(len(items))]
        answer = AB_LABELS[n % 2]
        check = f"This is an attention check. Please choose reply {answer}."
        other = item.reference
        responses = [check, other] if answer == "A" else [other, check]
        checks.append(
            {
                "id": _opaque_id("c", seed, pair, "ab-check", str(n)),
                "text": check,
                "context": _display_context(item),
                "responses": responses,
                "expected_answer": {AB_SCHEME: answer},
            }
        )
    return checks


def ab_folder_name(model_a: str, model_b: str) -> str:
    return f"ab-{model_a}-vs-{model_b}"


@dataclass
class BuiltStudy:
    key: dict  # what key.json holds
    passwords: Dict[str, str]  # login name -> password; nowhere else in plain text

    def logins_text(self) -> str:
        return format_logins(self.passwords)


def logins_needed(items: Sequence[EvalItem], annotators: int,
                  per_annotator: Optional[int]) -> int:
    """Accounts enough to give every instance of every task ``annotators`` annotators."""
    if not per_annotator:
        return annotators
    ratings = len(items) * len(model_names(items))  # the largest task
    return max(annotators, math.ceil(annotators * ratings / per_annotator))


def build_study(
    items: Sequence[EvalItem],
    out_dir: str,
    seed: int = 1234,
    annotators: int = 3,
    check_every: int = 10,
    checks: int = 3,
    per_annotator: Optional[int] = None,
    pairs: Optional[Sequence[Tuple[str, str]]] = None,
    title: str = "Empathetic dialogue evaluation",
    logins: Union[None, int, Sequence[str]] = None,
) -> BuiltStudy:
    """Write the ratings task, one A/B task per pair, and ``key.json``.

    Returns the key and the annotators' passwords, which are stored nowhere (each task
    keeps their hashes): the caller hands them out.

    Everything is written into a staging folder inside ``out_dir`` and moved into place at
    the end, ``key.json`` last: an interrupted build leaves no task that looks built. A
    folder that already holds a study (its ``key.json``) is refused: new ids and orders
    would orphan the annotations collected for it.

    :param pairs: model pairs for A/B tasks; default every pair, in the items' model order.
    :param logins: how many annotator logins (``annotator01``...), or their names; default
        :func:`logins_needed`.
    """
    if os.path.exists(os.path.join(out_dir, "key.json")):
        raise ItemsError(f"{out_dir} already holds a study (key.json); build into a new folder")
    names = login_names(logins if logins is not None
                        else logins_needed(items, annotators, per_annotator))
    passwords = {name: new_password() for name in names}
    stored = {name: hash_password(password) for name, password in passwords.items()}
    os.makedirs(out_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".build-", dir=out_dir)
    try:
        key = _build_into(items, staging, seed, annotators, check_every, checks,
                          per_annotator, pairs, title, stored)
        for task in key["tasks"]:
            target = os.path.join(out_dir, task)
            if os.path.isdir(os.path.join(target, "annotation_output")):
                raise ItemsError(f"{target} holds annotations but no key.json: move it away")
            shutil.rmtree(target, ignore_errors=True)  # left by an interrupted build
            os.replace(os.path.join(staging, task), target)
        os.replace(os.path.join(staging, "key.json"), os.path.join(out_dir, "key.json"))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return BuiltStudy(key, passwords)


def _build_into(items, out_dir, seed, annotators, check_every, checks, per_annotator, pairs,
                title, stored_logins) -> dict:
    names = model_names(items)
    if annotators < 1:
        raise ItemsError(f"annotators per item must be at least 1 (got {annotators})")
    if check_every < 1 or checks < 1:
        raise ItemsError("attention checks are required: --check-every and --checks >= 1")
    if pairs is None:
        pairs = list(itertools.combinations(names, 2))
    for a, b in pairs:
        for name in (a, b):
            if name not in names:
                raise ItemsError(f"A/B pair {a}:{b}: no model named {name!r} in the items")
        if a == b:
            raise ItemsError(f"A/B pair {a}:{b}: a model against itself")
    key = {"seed": seed, "annotators": annotators, "models": names, "tasks": {}}

    rng = random.Random(seed)
    instances, ids = [], {}
    for item in items:
        for name in names:
            iid = _opaque_id("r", seed, item.item_id, name)
            ids[iid] = {"item_id": item.item_id, "model": name, "group": item.group}
            response = item.responses[name]
            instances.append({"id": iid, "text": response, "context": _display_context(item),
                              "response": response})
    rng.shuffle(instances)
    rating_checks = _rating_checks(items, checks, seed)
    _write_task(
        os.path.join(out_dir, "ratings"),
        dict(_base_config(f"{title}: ratings", annotators, check_every, seed, per_annotator,
                          stored_logins),
             instance_display={"fields": [{"key": "context", "type": "dialogue"},
                                          {"key": "response", "type": "text"}]},
             annotation_instructions=RATINGS_INSTRUCTIONS,
             annotation_schemes=_likert_schemes()),
        instances,
        rating_checks,
        stored_logins,
    )
    key["tasks"]["ratings"] = {
        "kind": "ratings",
        "instances": ids,
        "checks": {c["id"]: c["expected_answer"] for c in rating_checks},
    }

    for a, b in pairs:
        folder = ab_folder_name(a, b)
        instances, ids = [], {}
        for item in items:
            iid = _opaque_id("p", seed, folder, item.item_id)
            swapped = rng.random() < 0.5
            shown = (b, a) if swapped else (a, b)
            ids[iid] = {"item_id": item.item_id, "A": shown[0], "B": shown[1],
                        "group": item.group}
            instances.append({
                "id": iid,
                "text": item.context[-1]["text"] if item.context else "",
                "context": _display_context(item),
                "responses": [item.responses[shown[0]], item.responses[shown[1]]],
            })
        rng.shuffle(instances)
        ab_checks = _ab_checks(items, checks, seed, folder)
        _write_task(
            os.path.join(out_dir, folder),
            dict(_base_config(f"{title}: {a} vs {b}", annotators, check_every, seed,
                              per_annotator, stored_logins),
                 instance_display={"fields": [{"key": "context", "type": "dialogue"}]},
                 annotation_instructions=AB_INSTRUCTIONS,
                 annotation_schemes=[_ab_scheme()]),
            instances,
            ab_checks,
            stored_logins,
        )
        key["tasks"][folder] = {
            "kind": "ab",
            "models": [a, b],
            "instances": ids,
            "checks": {c["id"]: c["expected_answer"] for c in ab_checks},
        }
    atomic_write_text(os.path.join(out_dir, "key.json"), json.dumps(key, indent=1))
    return key
