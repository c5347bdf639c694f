"""Emotion classification teachers on the real ED and ESConv files (through the mirror):
``-t ed_emotion[:situation]`` (32 emotions or ``--emotion-groups 16``) and
``-t esconv_emotion[:situation]``."""
import collections

import pytest
from parlai.core.params import ParlaiParser
from parlai.core.teachers import create_task_agent_from_taskname

from parlai_empathy import emotions
from parlai_empathy.data import emotion_classification as ec

# Counted on the real files with a throwaway reader (each conversation grouped by conv_id,
# listener turns = even utterance_idx) and equal to what ParlAI's own teacher yields with
# --train-experiencer-only true (checked for valid below).
ED_CONTEXT = {"train": 40252, "valid": 5736, "test": 5257}
ED_SITUATION = {"train": 19532, "valid": 2769, "test": 2546}
ESCONV_CONTEXT = {"train": 10191, "valid": 2156, "test": 2295}
ESCONV_SITUATION = {"train": 910, "valid": 195, "test": 195}

FIRST_VALID_TEXT = (
    "Today,as i was leaving for work in the morning,i had a tire burst in the middle of a "
    "busy road. That scared the hell out of me!"
)


def teacher(task, datatype, datapath, *args):
    opt = ParlaiParser(True, False).parse_args(
        ["--task", task, "--datatype", datatype, "--datapath", datapath, *map(str, args)]
    )
    return create_task_agent_from_taskname(opt)[0]


def all_messages(t):
    return [t.act() for _ in range(t.num_examples())]


@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_ed_counts(ed_datapath, split):
    datatype = "train:evalmode" if split == "train" else split
    context = teacher("ed_emotion", datatype, ed_datapath)
    situation = teacher("ed_emotion:situation", datatype, ed_datapath)
    assert (context.num_examples(), context.num_episodes()) == (ED_CONTEXT[split],) * 2
    assert (situation.num_examples(), situation.num_episodes()) == (ED_SITUATION[split],) * 2


def test_ed_fields_and_moel_view(ed_datapath):
    messages = all_messages(teacher("ed_emotion", "valid", ed_datapath))
    first, second = messages[:2]
    assert first["text"] == FIRST_VALID_TEXT
    assert first["eval_labels"] == ["terrified"] and first["emotion"] == "terrified"
    assert first["emotion_group"] == "fear" and first["situation"] == FIRST_VALID_TEXT
    assert (first["conv_id"], first["utterance_idx"]) == ("hit:3_conv:6", 2)
    assert second["text"] == (
        FIRST_VALID_TEXT + "\nAre you fine now?\nYeah,i'm doing alright now, but with minor "
        "injuries."
    )
    assert all(m["episode_done"] for m in messages)
    assert {m["eval_labels"][0] for m in messages} == set(emotions.ED_EMOTIONS)

    # the same contexts as the generators' history on ParlAI's own teacher (MoEL's view)
    stock = teacher("empathetic_dialogues", "valid", ed_datapath, "--train-experiencer-only", "true")
    expected, history = [], []
    for message in all_messages(stock):
        expected.append(("\n".join(history + [message["text"]]), message["emotion"]))
        history += [message["text"], message["eval_labels"][0]]
        if message["episode_done"]:
            history = []
    assert [(m["text"], m["emotion"]) for m in messages] == expected


def test_ed_situation_fields(ed_datapath):
    messages = all_messages(teacher("ed_emotion:situation", "valid", ed_datapath))
    assert messages[0]["text"] == FIRST_VALID_TEXT
    assert messages[0]["eval_labels"] == ["terrified"]
    assert len({m["conv_id"] for m in messages}) == len(messages)


def test_ed_16_groups(ed_datapath):
    fine = all_messages(teacher("ed_emotion", "valid", ed_datapath))
    grouped = all_messages(teacher("ed_emotion", "valid", ed_datapath, "--emotion-groups", 16))
    assert [m["text"] for m in grouped] == [m["text"] for m in fine]
    assert [m["eval_labels"][0] for m in grouped] == [
        emotions.group_of(m["eval_labels"][0]) for m in fine
    ]
    assert {m["eval_labels"][0] for m in grouped} == set(emotions.GROUP_NAMES)
    counts = collections.Counter(m["eval_labels"][0] for m in grouped)
    fine_counts = collections.Counter(m["eval_labels"][0] for m in fine)
    for group, members in emotions.EMOTION_GROUPS:
        assert counts[group] == sum(fine_counts[e] for e in members)
    # the seed's groups, spot-checked
    assert emotions.group_of("anxious") == "fear" and emotions.group_of("content") == "gratitude"


@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_esconv_counts(mirror, datapath, monkeypatch, split):
    monkeypatch.setenv("PARLAI_EMPATHY_MIRROR", mirror)
    datatype = "train:evalmode" if split == "train" else split
    context = teacher("esconv_emotion", datatype, datapath)
    situation = teacher("esconv_emotion:situation", datatype, datapath)
    assert context.num_examples() == ESCONV_CONTEXT[split]
    assert situation.num_examples() == ESCONV_SITUATION[split]
    if split == "valid":
        messages = all_messages(context)
        assert messages[0]["text"] == (
            "Hi, what I can help you with today?\nHi I had problems in the past and somehow "
            "right now"
        )
        assert messages[0]["eval_labels"] == ["depression"] == [messages[0]["emotion_type"]]
        assert {m["eval_labels"][0] for m in messages} <= set(emotions.ESCONV_EMOTION_TYPES)


HEADER = "conv_id,utterance_idx,context,prompt,speaker_idx,utterance,selfeval,tags\n"


def test_ed_bad_emotion_names_file_and_line(tmp_path):
    path = tmp_path / "valid.csv"
    path.write_text(
        HEADER
        + "hit:1_conv:1,1,joyful,I won,1,I won the lottery,5|5|5_2|2|5,\n"
        + "hit:1_conv:1,2,happyish,I won,2,Congrats!,5|5|5_2|2|5,\n"
    )
    with pytest.raises(ec.EmotionDataError, match=r"valid\.csv:3: .*unknown emotion 'happyish'"):
        list(ec.ed_examples(str(path)))


def test_ed_empty_context_names_file_and_line(tmp_path):
    path = tmp_path / "valid.csv"
    path.write_text(
        HEADER
        + "hit:1_conv:1,1,joyful,I won,1, ,5|5|5_2|2|5,\n"
        + "hit:1_conv:1,2,joyful,I won,2,Congrats!,5|5|5_2|2|5,\n"
    )
    with pytest.raises(ec.EmotionDataError, match=r"valid\.csv:3: empty dialogue context"):
        list(ec.ed_examples(str(path)))
