"""ESConv (Liu et al., "Towards Emotional Support Dialog Systems", ACL 2021): build and read.

The split files of the ``thu-coai/esconv`` Hugging Face dataset (``train.json``,
``valid.json``, ``test.json``; JSON Lines, one dialogue per line) are installed under
``<datapath>/esconv/`` mirror first (``<mirror>/esconv/<split>.json``), then from the Hub,
each checked against a pinned sha256 (a built folder whose files changed is rebuilt). The
readers check every field they use (errors name ``file:line``) and turn one dialogue into
ParlAI examples:

* :func:`supporter_episode` (``-t esconv``): one example per supporter turn, in ParlAI's
  episodic layout, so the usual history handling rebuilds the whole preceding dialogue;
* :func:`strategy_examples` (``-t esconv:strategy``): one self-contained example per
  supporter turn whose label is that turn's strategy.

Consecutive turns of the same speaker are joined with a space first. When the supporter
speaks first, the seeker's (empty) turn is ParlAI's silence token ``__SILENCE__``.

    parlai display_data -t esconv -dt test -n 5 --display-add-fields strategy,emotion_type
"""
import json
import os
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple

from parlai_empathy.emotions import ESCONV_EMOTION_TYPES, ESCONV_STRATEGIES, strategy_token
from parlai_empathy.mirror import RemoteFile, build_once, check_sha256, download, sha256_of

VERSION = "hf-thu-coai-esconv-1"
SPLITS = ("train", "valid", "test")
HUB = "https://huggingface.co/datasets/thu-coai/esconv/resolve/main"
SPLIT_FILES: Dict[str, RemoteFile] = {
    "train": RemoteFile(
        "esconv/train.json",
        f"{HUB}/train.json",
        "e401fc5010879dfec7bb716caf072706877a6863dc9d775d39c7296d74feb4fc",
    ),
    "valid": RemoteFile(
        "esconv/valid.json",
        f"{HUB}/valid.json",
        "4458152869827ed82e2f0f4a0cdc3e6c33b224f03353f9f1b4ed93d24730b531",
    ),
    "test": RemoteFile(
        "esconv/test.json",
        f"{HUB}/test.json",
        "44ee8e25a5cd08149c9c114d9ddb4bdbb7c0d2f8d503b41a35a8fb4a7ce68777",
    ),
}
SILENCE = "__SILENCE__"  # ParlAI's token for "the other side said nothing yet"
SEEKER, SUPPORTER = "usr", "sys"
METADATA_FIELDS = ("emotion_type", "problem_type", "situation", "experience_type")
_STRATEGIES = frozenset(ESCONV_STRATEGIES)
_EMOTION_TYPES = frozenset(ESCONV_EMOTION_TYPES)


class ESConvFormatError(ValueError):
    """An ESConv split file is not in the expected layout; the message names file:line."""


# --- build ------------------------------------------------------------------------------------


def build(opt) -> str:
    """Install the three split files under ``<datapath>/esconv`` once; return that folder."""
    folder = os.path.join(opt["datapath"], "esconv")
    build_once(folder, VERSION, populate, record_files=True, vet_unrecorded=unknown_copy)
    return folder


def populate(folder: str) -> None:
    for remote in SPLIT_FILES.values():
        download(remote, os.path.join(folder, remote.filename))


def unknown_copy(folder: str) -> Optional[str]:
    """For a folder marked built without a record of its files (an earlier version of this
    package): None when it holds the pinned (or trusted) files, else why to rebuild it."""
    for remote in SPLIT_FILES.values():
        path = os.path.join(folder, remote.filename)
        if not os.path.isfile(path):
            return f"{path} is missing"
        try:
            check_sha256(remote, sha256_of(path), path)
        except ValueError as exc:
            return f"{path}: {exc}"
    return None


def split_path(folder: str, split: str) -> str:
    if split not in SPLIT_FILES:
        raise ValueError(f"unknown ESConv split {split!r}; expected one of {SPLITS}")
    return os.path.join(folder, SPLIT_FILES[split].filename)


# --- read -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    """Consecutive utterances of one speaker joined into one turn."""

    speaker: str  # "usr" (seeker) or "sys" (supporter)
    texts: Tuple[str, ...]
    strategies: Tuple[str, ...] = ()  # one per utterance, supporter turns only

    @property
    def text(self) -> str:
        return " ".join(self.texts)

    def text_with_strategy_tokens(self) -> str:
        """``[Question] utterance [Others] next utterance``: every part keeps its token."""
        return " ".join(f"{strategy_token(s)} {t}" for s, t in zip(self.strategies, self.texts))


@dataclass(frozen=True)
class Dialogue:
    path: str
    line: int  # 1-based line of the dialogue in its split file
    record: dict
    turns: Tuple[Turn, ...]

    def metadata(self) -> Dict[str, str]:
        return {field: self.record[field] for field in METADATA_FIELDS}


def read_dialogues(path: str) -> Iterator[Dialogue]:
    """Yield the dialogues of one split file, checked; errors name ``file:line``."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"ESConv split file {path} does not exist (remove {os.path.dirname(path)} to "
            "rebuild it from the mirror or the Hugging Face Hub)"
        )
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ESConvFormatError(
                    f"{path}:{number}: malformed JSON line ({exc.msg} at column {exc.colno})"
                ) from None
            yield Dialogue(path, number, record, _turns(record, f"{path}:{number}"))


def _turns(record, where: str) -> Tuple[Turn, ...]:
    if not isinstance(record, dict):
        raise ESConvFormatError(f"{where}: expected a JSON object, got {type(record).__name__}")
    for field in METADATA_FIELDS + ("dialog",):
        if field not in record:
            raise ESConvFormatError(f"{where}: missing field {field!r}")
    for field in METADATA_FIELDS:
        if not isinstance(record[field], str):
            raise ESConvFormatError(
                f"{where}: {field!r} must be a string, got {_json_type(record[field])}"
            )
    # the names the emotion-aware agents map to ids (agents/empathy/moel.py: stripped, lower)
    if record["emotion_type"].strip().lower() not in _EMOTION_TYPES:
        raise ESConvFormatError(
            f"{where}: unknown emotion_type {record['emotion_type']!r}; expected one of "
            f"{', '.join(ESCONV_EMOTION_TYPES)}"
        )
    if not isinstance(record["dialog"], list):
        raise ESConvFormatError(f"{where}: 'dialog' must be a list of turns")
    turns: List[Turn] = []
    for index, utterance in enumerate(record["dialog"]):
        at = f"{where}: dialog[{index}]"
        if not isinstance(utterance, dict) or not isinstance(utterance.get("text"), str):
            raise ESConvFormatError(f"{at}: expected an object with a string 'text'")
        speaker = utterance.get("speaker")
        if speaker not in (SEEKER, SUPPORTER):
            raise ESConvFormatError(f"{at}: speaker must be 'usr' or 'sys', got {speaker!r}")
        strategies: Tuple[str, ...] = ()
        if speaker == SUPPORTER:
            strategy = utterance.get("strategy")
            if not isinstance(strategy, str) or strategy not in _STRATEGIES:
                raise ESConvFormatError(
                    f"{at}: unknown strategy {strategy!r}; expected one of "
                    f"{', '.join(ESCONV_STRATEGIES)}"
                )
            strategies = (strategy,)
        text = utterance["text"].strip()
        if turns and turns[-1].speaker == speaker:
            last = turns.pop()
            turns.append(Turn(speaker, last.texts + (text,), last.strategies + strategies))
        else:
            turns.append(Turn(speaker, (text,), strategies))
    return tuple(turns)


def _json_type(value) -> str:
    kind = {type(None): "null", bool: "a boolean", int: "a number", float: "a number",
            list: "a list", dict: "an object"}.get(type(value), type(value).__name__)
    return kind if value is None else f"{kind} ({json.dumps(value)[:60]})"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def supporter_episode(
    dialogue: Dialogue, strategy_tokens: bool = False, include_situation: bool = False
) -> List[dict]:
    """The examples of one dialogue in ParlAI's episodic layout (see the module docstring).

    Each example: ``text`` = the seeker turn since the previous supporter turn (or
    ``__SILENCE__``), ``labels`` = [the supporter turn], ``strategy`` = the strategy the
    supporter turn opens with, ``strategies`` = one per joined utterance, and the dialogue's
    metadata. Seeker turns after the last supporter turn have no label and are dropped.
    """
    examples = []
    pending: List[str] = [_one_line(dialogue.record["situation"])] if include_situation else []
    for turn in dialogue.turns:
        if turn.speaker == SEEKER:
            pending.append(turn.text)
            continue
        label = turn.text_with_strategy_tokens() if strategy_tokens else turn.text
        examples.append(
            {
                "text": "\n".join(pending) if pending else SILENCE,
                "labels": [label],
                "strategy": turn.strategies[0],
                "strategies": list(turn.strategies),
                **dialogue.metadata(),
            }
        )
        pending = []
    return examples


def strategy_examples(dialogue: Dialogue, include_situation: bool = False) -> List[dict]:
    """One example per supporter turn: the whole preceding dialogue (newline-joined, one
    turn a line) as ``text`` and the strategy that turn opens with as the label, with the
    8 strategies as ``label_candidates``. Each example is its own episode because the
    labels (strategy names) must not enter the dialogue history."""
    examples = []
    context: List[str] = [_one_line(dialogue.record["situation"])] if include_situation else []
    for turn in dialogue.turns:
        if turn.speaker == SUPPORTER:
            examples.append(
                {
                    "text": "\n".join(context) if context else SILENCE,
                    "labels": [turn.strategies[0]],
                    "label_candidates": list(ESCONV_STRATEGIES),
                    "strategy": turn.strategies[0],
                    "strategies": list(turn.strategies),
                    **dialogue.metadata(),
                }
            )
        context.append(turn.text)
    return examples

