"""Read the annotations Potato stored for a study and check them against ``key.json``.

Potato writes each annotator's state to ``<task>/annotation_output/<user>/user_state.json``
on every submission: ``instance_id_ordering`` (the instances assigned to that annotator,
injected attention checks included) and ``instance_id_to_label_to_value`` (their answers,
``[[{"schema": ..., "name": ...}, value], ...]`` per instance). This module turns those
files into :class:`Judgement` records, one per (annotator, instance), keeping only answers
to instances the annotator was assigned, and scores every annotator's attention checks.
"""
import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from parlai_empathy.human_eval.potato_task import AB_SCHEME, RATING_SCALES


class AnnotationsError(ValueError):
    """A study folder or annotation file that cannot be read; the message names it."""


@dataclass
class Judgement:
    task: str  # task folder name: "ratings" or "ab-<A>-vs-<B>"
    annotator: str
    instance_id: str
    answers: Dict[str, str]  # schema -> value ("1".."5", or "A" / "B" / "tie")


@dataclass
class AnnotatorRecord:
    annotator: str
    task: str
    checks_passed: int = 0
    checks_failed: int = 0
    unassigned_answers: int = 0  # answers to instances never assigned to them: ignored

    @property
    def failed(self) -> bool:
        return self.checks_failed > 0


@dataclass
class StudyAnnotations:
    key: dict
    judgements: List[Judgement] = field(default_factory=list)  # checks excluded
    annotators: List[AnnotatorRecord] = field(default_factory=list)

    def excluded(self, task: str) -> List[str]:
        return sorted(a.annotator for a in self.annotators if a.task == task and a.failed)


def load_key(study_dir: str) -> dict:
    path = os.path.join(study_dir, "key.json")
    if not os.path.isfile(path):
        raise AnnotationsError(f"{path}: no answer key (build the study first)")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise AnnotationsError(f"{path}: not JSON ({error.msg}, line {error.lineno})") from None


def _answers(path: str, raw) -> Dict[str, str]:
    answers: Dict[str, str] = {}
    if not isinstance(raw, list):
        raise AnnotationsError(f"{path}: an instance's labels are not a list")
    for entry in raw:
        try:
            label, value = entry
            schema, name = label["schema"], label["name"]
        except (TypeError, ValueError, KeyError):
            raise AnnotationsError(f"{path}: unreadable label entry {entry!r}") from None
        answers[schema] = str(value if value not in (None, "", True) else name)
    return answers


def _check_passed(expected: Dict[str, str], answers: Dict[str, str]) -> bool:
    return all(str(answers.get(k, "")).lower() == str(v).lower() for k, v in expected.items())


def _complete(kind: str, answers: Dict[str, str]) -> Optional[Dict[str, str]]:
    """The answers of a finished judgement, or None when a scale is missing or invalid."""
    if kind == "ratings":
        if all(answers.get(s) in {"1", "2", "3", "4", "5"} for s in RATING_SCALES):
            return {s: answers[s] for s in RATING_SCALES}
        return None
    value = answers.get(AB_SCHEME)
    return {AB_SCHEME: value} if value in {"A", "B", "tie"} else None


def read_task(study_dir: str, task: str, key: dict, into: StudyAnnotations):
    spec = key["tasks"][task]
    kind = spec["kind"]
    output = os.path.join(study_dir, task, "annotation_output")
    if not os.path.isdir(output):
        return
    for user in sorted(os.listdir(output)):
        path = os.path.join(output, user, "user_state.json")
        if not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8") as handle:
                state = json.load(handle)
        except json.JSONDecodeError as error:
            raise AnnotationsError(f"{path}: not JSON ({error.msg}, line {error.lineno})") \
                from None
        annotator = str(state.get("user_id", user))
        assigned = set(state.get("instance_id_ordering") or [])
        labels = state.get("instance_id_to_label_to_value") or {}
        record = AnnotatorRecord(annotator, task)
        for instance_id, raw in labels.items():
            answers = _answers(path, raw)
            if instance_id not in assigned:
                record.unassigned_answers += 1
                continue
            if instance_id in spec["checks"]:
                if _check_passed(spec["checks"][instance_id], answers):
                    record.checks_passed += 1
                else:
                    record.checks_failed += 1
                continue
            if instance_id not in spec["instances"]:
                record.unassigned_answers += 1  # not an instance of this study
                continue
            complete = _complete(kind, answers)
            if complete is not None:
                into.judgements.append(Judgement(task, annotator, instance_id, complete))
        into.annotators.append(record)


def read_study(study_dir: str) -> StudyAnnotations:
    """Every task's annotations in ``study_dir``, checked against its ``key.json``."""
    key = load_key(study_dir)
    study = StudyAnnotations(key)
    for task in key["tasks"]:
        read_task(study_dir, task, key, study)
    return study
