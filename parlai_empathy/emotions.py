"""One source of truth for every emotion and strategy label set used in this project.

Every agent, teacher and metric maps names to ids through this module, so an id always
means the same label.

* :data:`ED_EMOTIONS`: the 32 EmpatheticDialogues emotions (Rashkin et al., ACL 2019) in
  the id order of the original MoEL code (Lin et al., EMNLP 2019; HLTCHKUST/MoEL,
  ``utils/data_loader.py``, ``emo_map``), which MIME (Majumder et al., EMNLP 2020;
  declare-lab/MIME) reuses. ``emotion_id('surprised') == 0`` as there.
* :data:`EMOTION_GROUPS`: the 16 groups of the seed paper ("Improving Empathetic Response
  Generation", Columbia 2022; see ``shared/docs/ANCHORS.md``), in the order the paper lists
  them; the group names are ours.
* :data:`POSITIVE_EMOTIONS` / :data:`NEGATIVE_EMOTIONS`: MIME's 13 / 19 polarity split
  (declare-lab/MIME, ``model/VAE_noEmo_posterior.py``), in MIME's own list order; note that
  MIME counts ``anticipating`` as negative.
* :data:`ESCONV_EMOTION_TYPES` and :data:`ESCONV_STRATEGIES`: ESConv's ``emotion_type``
  values and its 8 support strategies (Liu et al., ACL 2021), the latter in the order of
  thu-coai/Emotional-Support-Conversation ``strategy.json``. ESConv's polarity split
  (:data:`ESCONV_POSITIVE_TYPES` / :data:`ESCONV_NEGATIVE_TYPES`) is ours: every one of its
  11 types (anxiety, depression, sadness, anger, fear, disgust, shame, nervousness, guilt,
  jealousy, pain) is a negative feeling -- ESConv's seekers come for support with a problem
  -- so the positive side is empty and a polarity-grouped model (MIME) has a single group.
* :func:`polarity_groups` / :func:`label_polarity`: the polarity groups of a label set (ids),
  and the polarity of one of its labels.
* :data:`LABEL_SETS`: the label sets a model can classify (``--emotion-labels``), each with
  the message field that holds the gold label; :func:`resolve_label_set` picks one for a task
  (and ``--emotion-groups 16`` turns ``ed32`` into ``ed16``). ``ed16`` reads the same
  ``emotion`` field as ``ed32`` (ED's teacher, and PEC's from ``--pec-emotion-file``) and maps
  each of the 32 emotions to its group (:func:`group_id_of`).
* Polarity of a group (``ed16``, for MIME): the polarity of most of its members; every group
  is single-polarity except ``anticipation`` (MIME counts ``prepared`` as positive,
  ``anticipating`` and ``apprehensive`` as negative), which is negative.

Example::

    python -c "from parlai_empathy import emotions as e; print(e.emotion_id('joyful'), e.group_of('joyful'), e.polarity_of('joyful'))"
"""
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

# --- EmpatheticDialogues: 32 emotions, id = position (MoEL's emo_map order) ---------------
ED_EMOTIONS: Tuple[str, ...] = (
    "surprised", "excited", "annoyed", "proud", "angry", "sad", "grateful", "lonely",
    "impressed", "afraid", "disgusted", "confident", "terrified", "hopeful", "anxious",
    "disappointed", "joyful", "prepared", "guilty", "furious", "nostalgic", "jealous",
    "anticipating", "embarrassed", "content", "devastated", "sentimental", "caring",
    "trusting", "ashamed", "apprehensive", "faithful",
)
NUM_EMOTIONS = len(ED_EMOTIONS)

# --- Seed paper: 16 emotion groups, (group name, members) in the paper's order ---------------
EMOTION_GROUPS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ("fear", ("afraid", "terrified", "anxious")),
    ("anger", ("angry", "annoyed", "furious")),
    ("shame", ("guilty", "embarrassed", "ashamed")),
    ("anticipation", ("prepared", "anticipating", "apprehensive")),
    ("hope", ("hopeful", "confident")),
    ("gratitude", ("grateful", "content")),
    ("joy", ("excited", "joyful")),
    ("disappointment", ("disappointed", "disgusted")),
    ("pride", ("proud", "impressed")),
    ("sadness", ("sad", "devastated")),
    ("nostalgia", ("sentimental", "nostalgic")),
    ("trust", ("trusting", "faithful")),
    ("caring", ("caring",)),
    ("jealousy", ("jealous",)),
    ("loneliness", ("lonely",)),
    ("surprise", ("surprised",)),
)
GROUP_NAMES: Tuple[str, ...] = tuple(name for name, _ in EMOTION_GROUPS)
NUM_GROUPS = len(GROUP_NAMES)

# --- MIME: polarity split (MIME's list order) -------------------------------------------------
POSITIVE_EMOTIONS: Tuple[str, ...] = (
    "confident", "joyful", "grateful", "impressed", "proud", "excited", "trusting",
    "hopeful", "faithful", "prepared", "content", "surprised", "caring",
)
NEGATIVE_EMOTIONS: Tuple[str, ...] = (
    "afraid", "angry", "annoyed", "anxious", "apprehensive", "ashamed", "devastated",
    "disappointed", "disgusted", "embarrassed", "furious", "guilty", "jealous", "lonely",
    "nostalgic", "sad", "sentimental", "terrified", "anticipating",
)
POSITIVE = "positive"
NEGATIVE = "negative"

# --- ESConv ---------------------------------------------------------------------------------
ESCONV_EMOTION_TYPES: Tuple[str, ...] = (
    "anxiety", "depression", "sadness", "anger", "fear", "disgust", "shame",
    "nervousness", "guilt", "jealousy", "pain",
)
ESCONV_STRATEGIES: Tuple[str, ...] = (
    "Question",
    "Restatement or Paraphrasing",
    "Reflection of feelings",
    "Self-disclosure",
    "Affirmation and Reassurance",
    "Providing Suggestions",
    "Information",
    "Others",
)
STRATEGY_TOKENS: Tuple[str, ...] = tuple(f"[{s}]" for s in ESCONV_STRATEGIES)
# Polarity of ESConv's types (ours; see the module docstring): all negative feelings.
ESCONV_POSITIVE_TYPES: Tuple[str, ...] = ()
ESCONV_NEGATIVE_TYPES: Tuple[str, ...] = ESCONV_EMOTION_TYPES

_EMOTION_IDS: Dict[str, int] = {name: i for i, name in enumerate(ED_EMOTIONS)}
_GROUP_IDS: Dict[str, int] = {name: i for i, name in enumerate(GROUP_NAMES)}
_GROUP_OF: Dict[str, str] = {
    member: name for name, members in EMOTION_GROUPS for member in members
}
_POLARITY: Dict[str, str] = {
    **{e: POSITIVE for e in POSITIVE_EMOTIONS},
    **{e: NEGATIVE for e in NEGATIVE_EMOTIONS},
}
_ESCONV_EMOTION_IDS = {name: i for i, name in enumerate(ESCONV_EMOTION_TYPES)}
_STRATEGY_IDS = {name: i for i, name in enumerate(ESCONV_STRATEGIES)}

# MIME's index lists (positions in ED_EMOTIONS), for models that gather logits by polarity.
POSITIVE_IDS: Tuple[int, ...] = tuple(_EMOTION_IDS[e] for e in POSITIVE_EMOTIONS)
NEGATIVE_IDS: Tuple[int, ...] = tuple(_EMOTION_IDS[e] for e in NEGATIVE_EMOTIONS)


def _check_tables():
    assert len(_EMOTION_IDS) == NUM_EMOTIONS == 32
    assert sorted(_GROUP_OF) == sorted(ED_EMOTIONS) and NUM_GROUPS == 16
    assert sum(len(m) for _, m in EMOTION_GROUPS) == NUM_EMOTIONS  # a partition
    assert sorted(_POLARITY) == sorted(ED_EMOTIONS)
    assert (len(POSITIVE_EMOTIONS), len(NEGATIVE_EMOTIONS)) == (13, 19)
    assert len(ESCONV_EMOTION_TYPES) == 11 and len(ESCONV_STRATEGIES) == 8
    assert sorted(ESCONV_POSITIVE_TYPES + ESCONV_NEGATIVE_TYPES) == sorted(ESCONV_EMOTION_TYPES)


_check_tables()


def _unknown(kind: str, name, valid) -> ValueError:
    return ValueError(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(valid)}")


def normalize_emotion(name: str) -> str:
    """Return the canonical (lower-case, stripped) ED emotion name, or raise ValueError."""
    key = name.strip().lower() if isinstance(name, str) else None
    if key not in _EMOTION_IDS:
        raise _unknown("emotion", name, ED_EMOTIONS)
    return key


def emotion_id(name: str) -> int:
    """Id (0..31, MoEL order) of an ED emotion; case and surrounding spaces are ignored."""
    return _EMOTION_IDS[normalize_emotion(name)]


def emotion_name(index: int) -> str:
    """The ED emotion with id ``index``."""
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < NUM_EMOTIONS:
        raise ValueError(f"emotion id must be an int in 0..{NUM_EMOTIONS - 1}, got {index!r}")
    return ED_EMOTIONS[index]


def group_of(name: str) -> str:
    """Name of the seed paper's group (of 16) that holds the ED emotion ``name``."""
    return _GROUP_OF[normalize_emotion(name)]


def group_id_of(name: str) -> int:
    """Id (0..15, position in :data:`GROUP_NAMES`) of the group of the ED emotion ``name``."""
    return _GROUP_IDS[group_of(name)]


def group_id(group: str) -> int:
    """Id of a group given its name (one of :data:`GROUP_NAMES`)."""
    if not isinstance(group, str) or group not in _GROUP_IDS:
        raise _unknown("emotion group", group, GROUP_NAMES)
    return _GROUP_IDS[group]


def group_members(group: str) -> Tuple[str, ...]:
    """The ED emotions of a group, as the seed paper lists them."""
    return EMOTION_GROUPS[group_id(group)][1]


def polarity_of(name: str) -> str:
    """``'positive'`` or ``'negative'``: MIME's polarity of the ED emotion ``name``."""
    return _POLARITY[normalize_emotion(name)]


def is_positive(name: str) -> bool:
    return polarity_of(name) == POSITIVE


def esconv_emotion_type_id(name: str) -> int:
    """Id (0..10) of an ESConv ``emotion_type`` value (exact, lower-case names)."""
    if not isinstance(name, str) or name not in _ESCONV_EMOTION_IDS:
        raise _unknown("ESConv emotion_type", name, ESCONV_EMOTION_TYPES)
    return _ESCONV_EMOTION_IDS[name]


def strategy_id(name: str) -> int:
    """Id (0..7) of an ESConv strategy, e.g. ``strategy_id('Question') == 0``."""
    if not isinstance(name, str) or name not in _STRATEGY_IDS:
        raise _unknown("ESConv strategy", name, ESCONV_STRATEGIES)
    return _STRATEGY_IDS[name]


def strategy_token(name: str) -> str:
    """The special token of a strategy as the ESConv code writes it: ``'[Question]'``."""
    return STRATEGY_TOKENS[strategy_id(name)]


def _esconv_type_id(name: str) -> int:
    return esconv_emotion_type_id(name.strip().lower() if isinstance(name, str) else name)


@dataclass(frozen=True)
class EmotionLabelSet:
    """The emotions a model classifies and where a teacher's message keeps the gold one."""

    name: str
    labels: Tuple[str, ...]
    field: str
    to_id: Callable[[str], int]


def _group_label_id(name: str) -> int:
    """Id of a gold label in ``ed16``: an ED emotion (mapped to its group) or a group name."""
    key = name.strip().lower() if isinstance(name, str) else name
    if key in _GROUP_IDS:
        return _GROUP_IDS[key]
    return group_id_of(name)


LABEL_SETS: Dict[str, EmotionLabelSet] = {
    "ed32": EmotionLabelSet("ed32", ED_EMOTIONS, "emotion", emotion_id),
    "ed16": EmotionLabelSet("ed16", GROUP_NAMES, "emotion", _group_label_id),
    "esconv": EmotionLabelSet("esconv", ESCONV_EMOTION_TYPES, "emotion_type", _esconv_type_id),
}

_ESCONV_TASKS = ("esconv", "parlai.tasks.esconv.agents")


EMOTION_GROUP_CHOICES = (32, 16)


def resolve_label_set(choice: Optional[str], task: Optional[str], groups: int = 32) -> str:
    """The label set for ``--emotion-labels choice`` on ``--task task``.

    ``auto`` (or None) gives ``esconv`` when every task is ESConv and ``ed32`` otherwise; a
    mix of ESConv and other tasks must choose explicitly. ``groups=16``
    (``--emotion-groups 16``) gives ``ed16`` instead of ``ed32``; it has no meaning for
    ESConv's labels (an error).
    """
    if groups not in EMOTION_GROUP_CHOICES:
        raise ValueError(f"--emotion-groups must be 32 or 16, got {groups!r}")
    resolved = _resolve_label_set(choice, task)
    if groups == 16:
        if resolved == "esconv":
            raise ValueError(
                f"--emotion-groups 16 groups the 32 EmpatheticDialogues emotions; --task "
                f"{task} uses ESConv's emotion_type labels (--emotion-labels esconv), which "
                "have no groups: drop --emotion-groups 16 or use an ED-labelled task"
            )
        return "ed16"
    return resolved


def _resolve_label_set(choice: Optional[str], task: Optional[str]) -> str:
    choice = choice or "auto"
    if choice != "auto":
        if choice not in LABEL_SETS:
            raise ValueError(
                f"--emotion-labels {choice!r} is not one of {', '.join(LABEL_SETS)} or auto"
            )
        return choice
    tasks = [t.split(":")[0].strip() for t in (task or "").split(",") if t.strip()]
    is_esconv = [t in _ESCONV_TASKS for t in tasks]
    if tasks and all(is_esconv):
        return "esconv"
    if any(is_esconv):
        raise ValueError(
            f"--task {task} mixes ESConv with other tasks; choose the emotion label "
            "set explicitly with --emotion-labels ed32 or --emotion-labels esconv"
        )
    return "ed32"


def _group_polarity(group: str) -> str:
    """The polarity of most members of a group (see the module docstring)."""
    members = group_members(group)
    positives = sum(is_positive(member) for member in members)
    return POSITIVE if 2 * positives > len(members) else NEGATIVE


_POLARITY_SPLITS: Dict[str, Tuple[Tuple[str, ...], Tuple[str, ...]]] = {
    "ed32": (POSITIVE_EMOTIONS, NEGATIVE_EMOTIONS),
    "ed16": (
        tuple(g for g in GROUP_NAMES if _group_polarity(g) == POSITIVE),
        tuple(g for g in GROUP_NAMES if _group_polarity(g) == NEGATIVE),
    ),
    "esconv": (ESCONV_POSITIVE_TYPES, ESCONV_NEGATIVE_TYPES),
}


def polarity_groups(label_set: str) -> Tuple[Tuple[str, Tuple[int, ...]], ...]:
    """``((polarity, label ids), ...)`` of a label set (``ed32``, ``ed16``, ``esconv``),
    positive first, leaving out an empty side: ED gives MIME's two groups (13 / 19 ids), its
    16 groups 7 / 9, ESConv one group (``'negative'``, all 11 ids)."""
    if label_set not in LABEL_SETS:
        raise ValueError(f"unknown label set {label_set!r}; valid: {', '.join(LABEL_SETS)}")
    labels = LABEL_SETS[label_set]
    groups = []
    for polarity, names in zip((POSITIVE, NEGATIVE), _POLARITY_SPLITS[label_set]):
        if names:
            groups.append((polarity, tuple(labels.to_id(name) for name in names)))
    return tuple(groups)


def label_polarity(label_set: str, label: str) -> str:
    """``'positive'`` or ``'negative'``: the polarity of ``label`` in ``label_set``."""
    labels = LABEL_SETS[label_set]
    index = labels.to_id(label)
    for polarity, ids in polarity_groups(label_set):
        if index in ids:
            return polarity
    raise AssertionError(f"{label!r} has no polarity in {label_set}")  # tables are checked
