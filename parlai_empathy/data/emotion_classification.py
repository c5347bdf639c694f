"""Emotion classification examples from EmpatheticDialogues and ESConv.

EmpatheticDialogues (``-t ed_emotion``), read from the same CSV files as ParlAI's stock
``empathetic_dialogues`` teacher, parsed the same way (fields split on ``,``, ``_comma_``
restored, a conversation = consecutive lines with one ``conv_id``):

* ``context`` view: MoEL's view of the data, i.e. what the generators trained with
  ``-t empathetic_dialogues --train-experiencer-only true`` see. For every listener turn
  (even ``utterance_idx``) the text is the whole preceding dialogue, one utterance a line
  (exactly ParlAI's history string of that example: the speaker turns as the stock teacher
  gives them, the listener turns stripped); the label is the conversation's emotion.
* ``situation`` view: one example per conversation, the situation prompt as text.

With ``groups=True`` the label is the seed paper's group of the emotion (16 groups,
:data:`parlai_empathy.emotions.EMOTION_GROUPS`); the fine emotion stays in ``emotion``.

ESConv (``-t esconv_emotion``): for every supporter turn the whole preceding dialogue (turns
of one speaker joined as ``-t esconv`` joins them, one turn a line) with the dialogue's
``emotion_type`` as label; a supporter turn that opens the dialogue has no context and gives
no example. ``situation`` view: one example per dialogue, the seeker's situation as text.

Every example is its own episode. Errors name ``file:line``.

    parlai display_data -t ed_emotion -dt valid -n 3 --display-add-fields emotion,situation
"""
import os
from typing import Dict, Iterator, List

from parlai_empathy import emotions
from parlai_empathy.data import esconv

VIEWS = ("context", "situation")


class EmotionDataError(ValueError):
    """A data file cannot give emotion classification examples; names ``file:line``."""


def ed_split_path(datapath: str, split: str) -> str:
    """Where ``empathetic_dialogues_build.build`` installs ED's ``split`` CSV file."""
    return os.path.join(datapath, "empatheticdialogues", "empatheticdialogues", f"{split}.csv")


def _ed_conversations(path: str) -> Iterator[List[tuple]]:
    """Yield each conversation as a list of ``(line number, fields)``."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"EmpatheticDialogues split file {path} does not exist")
    current: List[tuple] = []
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, start=1):
            if number == 1:
                continue  # header
            parts = raw.strip().split(",")
            if len(parts) < 8:
                raise EmotionDataError(
                    f"{path}:{number}: expected at least 8 comma-separated fields, found "
                    f"{len(parts)}"
                )
            if current and current[-1][1][0] != parts[0]:
                yield current
                current = []
            current.append((number, parts))
    if current:
        yield current


def _ed_label(path: str, number: int, emotion: str, groups: bool) -> Dict[str, str]:
    try:
        emotion = emotions.normalize_emotion(emotion)
    except ValueError as exc:
        raise EmotionDataError(f"{path}:{number}: field 'context' (the emotion): {exc}") from None
    label = emotions.group_of(emotion) if groups else emotion
    return {"labels": [label], "emotion": emotion, "emotion_group": emotions.group_of(emotion)}


def ed_examples(path: str, view: str = "context", groups: bool = False) -> Iterator[dict]:
    """The emotion classification examples of one ED split file (module docstring)."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    for conversation in _ed_conversations(path):
        first_line, first = conversation[0]
        situation = first[3].replace("_comma_", ",")
        common = {"situation": situation, "conv_id": first[0]}
        if view == "situation":
            if not situation.strip():
                raise EmotionDataError(f"{path}:{first_line}: empty situation (field 'prompt')")
            yield {"text": situation, **_ed_label(path, first_line, first[2], groups), **common}
            continue
        history: List[str] = []
        for position, (number, parts) in enumerate(conversation):
            utterance = parts[5].replace("_comma_", ",")
            if int(parts[1]) != position + 1:
                raise EmotionDataError(
                    f"{path}:{number}: utterance_idx {parts[1]} out of order (expected "
                    f"{position + 1} in conversation {parts[0]})"
                )
            if position % 2 == 1:  # a listener turn: its preceding dialogue is one example
                if not "".join(history).strip():
                    raise EmotionDataError(f"{path}:{number}: empty dialogue context")
                yield {
                    "text": "\n".join(history),
                    **_ed_label(path, number, parts[2], groups),
                    **common,
                    "utterance_idx": position + 1,
                }
                utterance = utterance.strip()  # ParlAI's teacher strips its labels
            history.append(utterance)


def esconv_examples(path: str, view: str = "context") -> Iterator[dict]:
    """The emotion classification examples of one ESConv split file (module docstring)."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    for dialogue in esconv.read_dialogues(path):
        where = f"{dialogue.path}:{dialogue.line}"
        try:
            label = emotions.ESCONV_EMOTION_TYPES[
                emotions.esconv_emotion_type_id(dialogue.record["emotion_type"])
            ]
        except ValueError as exc:
            raise EmotionDataError(f"{where}: field 'emotion_type': {exc}") from None
        common = {"labels": [label], **dialogue.metadata()}
        if view == "situation":
            situation = " ".join(dialogue.record["situation"].split())
            if not situation:
                raise EmotionDataError(f"{where}: empty situation")
            yield {"text": situation, **common}
            continue
        context: List[str] = []
        for turn in dialogue.turns:
            if turn.speaker == esconv.SUPPORTER and context:
                yield {"text": "\n".join(context), **common}
            context.append(turn.text)
