"""ESConv teachers on the real split files (from the mirror), and the reader's errors."""
import json
import os
import re

import pytest
from parlai.core import build_data
from parlai.core.params import ParlaiParser
from parlai.core.teachers import create_task_agent_from_taskname

from parlai_empathy.data import esconv
from parlai_empathy.emotions import ESCONV_STRATEGIES
from parlai_cli import run_parlai

# Counted once with an independent throwaway script over the JSON Lines files (records;
# supporter turns after joining consecutive same-speaker turns; dialogues opening with the
# supporter).
DIALOGUES = {"train": 910, "valid": 195, "test": 195}
EXAMPLES = {"train": 10679, "valid": 2257, "test": 2389}
OPENED_BY_SUPPORTER = {"train": 488, "valid": 101, "test": 94}

FIRST_TEST_SITUATION = (
    "I am always depressed and the upcoming holidays are making it a lot worse."
)


@pytest.fixture(scope="module")
def esconv_datapath(mirror, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("esconv_data"))
    esconv.build({"datapath": path})
    return path


def make_teacher(task, datatype, datapath, *args):
    parser = ParlaiParser(True, False)
    opt = parser.parse_args(
        ["--task", task, "--datatype", datatype, "--datapath", datapath, *map(str, args)]
    )
    return create_task_agent_from_taskname(opt)[0]


def first_acts(teacher, n):
    return [teacher.act() for _ in range(n)]


@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_counts_per_split(esconv_datapath, split):
    datatype = "train:ordered" if split == "train" else split
    teacher = make_teacher("esconv", datatype, esconv_datapath)
    assert teacher.num_episodes() == DIALOGUES[split]
    assert teacher.num_examples() == EXAMPLES[split]
    silences = sum(
        episode[0]["text"] == esconv.SILENCE for episode in teacher.data.data
    )
    assert silences == OPENED_BY_SUPPORTER[split]
    strategy = make_teacher("esconv:strategy", datatype, esconv_datapath)
    assert strategy.num_episodes() == strategy.num_examples() == EXAMPLES[split]


def test_first_test_messages_field_by_field(esconv_datapath):
    teacher = make_teacher("esconv", "test", esconv_datapath)
    acts = first_acts(teacher, 4)
    first = acts[0]
    assert first["id"] == "esconv"
    assert first["text"] == "__SILENCE__"  # the supporter opens the dialogue
    assert list(first["eval_labels"]) == ["Hello. How are you today?"]
    assert first["strategy"] == "Others"
    assert first["strategies"] == ["Others"]
    assert first["emotion_type"] == "depression"
    assert first["problem_type"] == "ongoing depression"
    assert first["experience_type"] == "Current Experience"
    assert first["situation"] == FIRST_TEST_SITUATION
    assert first["episode_done"] is False
    assert acts[1]["text"] == "hi i am okay, a little bit sad though"
    assert acts[1]["strategy"] == "Question"
    # two seeker turns and two supporter turns, each joined with a space
    assert acts[3]["text"] == (
        "Yes. I am a college student and I live on campus. The day before I moved in my "
        "dad said some unforgivable things to me and we haven't spoke since I have no "
        "choice but to go live at home over the break but I am very scared about it"
    )
    assert list(acts[3]["eval_labels"]) == [
        "Do you feel scared for your own self? Or of the situation in general? I'm sorry "
        "to hear that. Relationships with parents can be very difficult sometimes. I'm "
        "around college age as well and also live at home. So I can understand your "
        "struggle."
    ]
    assert acts[3]["strategy"] == "Question"
    assert acts[3]["strategies"] == ["Question", "Self-disclosure"]


def test_episode_text_and_labels_rebuild_the_dialogue(esconv_datapath):
    """ParlAI's history (texts and labels of the episode so far) is the whole dialogue."""
    teacher = make_teacher("esconv", "test", esconv_datapath)
    episode = teacher.data.data[0]
    with open(os.path.join(esconv_datapath, "esconv", "test.json"), encoding="utf-8") as f:
        raw = json.loads(f.readline())["dialog"]
    merged = []
    for turn in raw:
        if merged and merged[-1][0] == turn["speaker"]:
            merged[-1] = (turn["speaker"], merged[-1][1] + " " + turn["text"])
        else:
            merged.append((turn["speaker"], turn["text"]))
    while merged[-1][0] == "usr":  # a final seeker turn has no label
        merged.pop()
    history = []
    for message in episode:
        if message["text"] != "__SILENCE__":
            history.append(message["text"])
        history.append(message["labels"][0])
    assert history == [text for _, text in merged]
    assert len(episode) == 11  # supporter turns after joining


def test_strategy_token_option_prefixes_every_joined_utterance(esconv_datapath):
    plain = first_acts(make_teacher("esconv", "test", esconv_datapath), 4)
    joint = first_acts(
        make_teacher("esconv", "test", esconv_datapath, "--esconv-strategy-token", "true"), 4
    )
    assert joint[0]["eval_labels"][0] == "[Others] Hello. How are you today?"
    assert joint[3]["eval_labels"][0] == (
        "[Question] Do you feel scared for your own self? Or of the situation in general? "
        "I'm sorry to hear that. Relationships with parents can be very difficult sometimes. "
        "[Self-disclosure] I'm around college age as well and also live at home. So I can "
        "understand your struggle."
    )
    assert [a["text"] for a in joint] == [a["text"] for a in plain]


def test_include_situation_option(esconv_datapath):
    acts = first_acts(
        make_teacher("esconv", "test", esconv_datapath, "--esconv-include-situation", "true"), 2
    )
    # the supporter speaks first, so the situation alone is the first context turn
    assert acts[0]["text"] == FIRST_TEST_SITUATION
    assert acts[1]["text"] == "hi i am okay, a little bit sad though"


def test_strategy_teacher(esconv_datapath):
    teacher = make_teacher("esconv:strategy", "test", esconv_datapath)
    acts = first_acts(teacher, 4)
    assert acts[0]["id"] == "esconv:strategy"
    labels = [a["eval_labels"][0] for a in acts]
    assert labels == ["Others", "Question", "Affirmation and Reassurance", "Question"]
    assert all(list(a["label_candidates"]) == list(ESCONV_STRATEGIES) for a in acts)
    assert all(a["episode_done"] for a in acts)
    assert acts[0]["text"] == "__SILENCE__"
    assert acts[2]["text"] == "\n".join(
        [
            "Hello. How are you today?",
            "hi i am okay, a little bit sad though",
            "Okay. I am very sorry to hear that! Do you want to tell me more about that?",
            "Well with the holidays coming up i have been very stressed and nervous about "
            "what i am going to do",
        ]
    )
    assert acts[2]["emotion_type"] == "depression"


@pytest.mark.parametrize("task", ["esconv", "esconv:strategy"])
def test_parlai_verify_data_is_clean(esconv_datapath, task):
    from parlai.scripts.verify_data import VerifyData

    counts = VerifyData.main(task=task, datatype="test", datapath=esconv_datapath)
    assert counts["exs"] == EXAMPLES["test"]
    for problem in (
        "missing_text",
        "missing_labels",
        "empty_string_label_candidates",
        "label_candidates_with_missing_label",
        "did_not_return_message",
    ):
        assert counts[problem] == 0, problem
    expected_missing_cands = EXAMPLES["test"] if task == "esconv" else 0
    assert counts["missing_label_candidates"] == expected_missing_cands


def test_display_data_cli_shows_the_extra_fields(esconv_datapath):
    fields = "strategy,emotion_type,problem_type,situation,experience_type"
    proc = run_parlai(
        ["display_data", "-t", "esconv", "-dt", "test", "-n", "5"]
        + ["--datapath", esconv_datapath, "--display-add-fields", fields]
    )
    out = proc.stdout
    assert "__SILENCE__" in out
    assert "Hello. How are you today?" in out
    assert "[strategy]:" in out and "Affirmation and Reassurance" in out
    assert "[emotion_type]:" in out and "depression" in out
    assert "[problem_type]:" in out and "[experience_type]:" in out
    assert FIRST_TEST_SITUATION in out
    assert f"loaded 195 episodes with a total of {EXAMPLES['test']} examples" in out


# --- errors ------------------------------------------------------------------------------------

GOOD = {
    "experience_type": "Current Experience",
    "emotion_type": "anxiety",
    "problem_type": "job crisis",
    "situation": "I lost my job.",
    "dialog": [
        {"text": "Hi, how can I help?", "speaker": "sys", "strategy": "Question"},
        {"text": "I lost my job.", "speaker": "usr"},
        {"text": "That is hard.", "speaker": "sys", "strategy": "Reflection of feelings"},
    ],
}


def write_lines(path, lines):
    path.write_text("\n".join(lines), encoding="utf-8")  # no final newline, like the release
    return str(path)


def test_reader_on_a_small_file_without_final_newline(tmp_path):
    path = write_lines(tmp_path / "test.json", [json.dumps(GOOD)] * 2)
    dialogues = list(esconv.read_dialogues(path))
    assert [d.line for d in dialogues] == [1, 2]
    episode = esconv.supporter_episode(dialogues[0])
    assert [(e["text"], e["labels"]) for e in episode] == [
        ("__SILENCE__", ["Hi, how can I help?"]),
        ("I lost my job.", ["That is hard."]),
    ]


def test_malformed_json_line_names_file_and_line(tmp_path):
    lines = [json.dumps(GOOD), '{"dialog": [', json.dumps(GOOD)]
    path = write_lines(tmp_path / "valid.json", lines)
    with pytest.raises(esconv.ESConvFormatError, match=re.escape(f"{path}:2: malformed JSON")):
        list(esconv.read_dialogues(path))


def test_unknown_strategy_names_file_and_line(tmp_path):
    bad = json.loads(json.dumps(GOOD))
    bad["dialog"][2]["strategy"] = "Hugging"
    lines = [json.dumps(GOOD), json.dumps(GOOD), json.dumps(bad)]
    path = write_lines(tmp_path / "train.json", lines)
    with pytest.raises(esconv.ESConvFormatError) as err:
        list(esconv.read_dialogues(path))
    assert f"{path}:3" in str(err.value) and "'Hugging'" in str(err.value)
    assert "Providing Suggestions" in str(err.value)  # lists the valid strategies


def test_missing_fields_and_speakers_name_file_and_line(tmp_path):
    no_dialog = {k: v for k, v in GOOD.items() if k != "dialog"}
    path = write_lines(tmp_path / "a.json", [json.dumps(no_dialog)])
    expected = re.escape(f"{path}:1: missing field 'dialog'")
    with pytest.raises(esconv.ESConvFormatError, match=expected):
        list(esconv.read_dialogues(path))
    bad = json.loads(json.dumps(GOOD))
    bad["dialog"][1]["speaker"] = "seeker"
    path = write_lines(tmp_path / "b.json", [json.dumps(bad)])
    expected = re.escape(f"{path}:1: dialog[1]: speaker must be 'usr' or 'sys'")
    with pytest.raises(esconv.ESConvFormatError, match=expected):
        list(esconv.read_dialogues(path))


@pytest.mark.parametrize(
    "field, value, error",
    [
        ("situation", None, "'situation' must be a string, got null"),
        ("emotion_type", 3, "'emotion_type' must be a string, got a number (3)"),
        ("emotion_type", "joy", "unknown emotion_type 'joy'; expected one of anxiety, depression"),
        ("problem_type", ["job crisis"], "'problem_type' must be a string, got a list"),
        ("experience_type", {"a": 1}, "'experience_type' must be a string, got an object"),
    ],
    ids=["situation-null", "emotion-number", "emotion-unknown", "problem-list", "experience-object"],
)
def test_wrongly_typed_metadata_names_file_and_line(tmp_path, field, value, error):
    """A metadata field of the wrong type or an unknown emotion_type is the same file:line
    error as any malformed line, not an AttributeError later or a None in every message."""
    bad = dict(GOOD, **{field: value})
    path = write_lines(tmp_path / "valid.json", [json.dumps(GOOD), json.dumps(bad)])
    with pytest.raises(esconv.ESConvFormatError) as err:
        list(esconv.read_dialogues(path))
    assert str(err.value).startswith(f"{path}:2: {error}"), str(err.value)


def test_emotion_type_spelled_as_the_agents_accept_it(tmp_path):
    """Case and surrounding spaces do not matter, as for the agents' emotion ids."""
    path = write_lines(tmp_path / "test.json", [json.dumps(dict(GOOD, emotion_type=" Anxiety"))])
    (dialogue,) = esconv.read_dialogues(path)
    assert dialogue.metadata()["emotion_type"] == " Anxiety"


def test_missing_split_file_names_the_file(tmp_path):
    path = tmp_path / "esconv" / "test.json"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        list(esconv.read_dialogues(str(path)))


def test_unrecorded_folder_with_other_files_is_rebuilt(mirror, monkeypatch, tmp_path):
    """A folder marked built without a record of its files (an earlier version of this
    package) and holding files other than the pinned ones is rebuilt from the mirror."""
    monkeypatch.setenv("PARLAI_EMPATHY_MIRROR", mirror)
    folder = tmp_path / "data" / "esconv"
    folder.mkdir(parents=True)
    for split in ("train", "valid"):
        write_lines(folder / f"{split}.json", [json.dumps(GOOD)])
    build_data.mark_done(str(folder), version_string=esconv.VERSION)
    teacher = make_teacher("esconv", "valid", str(tmp_path / "data"))
    assert teacher.num_episodes() == DIALOGUES["valid"]
    assert make_teacher("esconv", "test", str(tmp_path / "data")).num_episodes() == DIALOGUES["test"]


def test_unrecorded_folder_with_the_pinned_files_is_kept(mirror, monkeypatch, tmp_path):
    """The same folder holding exactly the pinned files is kept, with no download."""
    import shutil

    monkeypatch.delenv("PARLAI_EMPATHY_MIRROR", raising=False)
    folder = tmp_path / "data" / "esconv"
    folder.mkdir(parents=True)
    for split in ("train", "valid", "test"):  # plain copies: the mirror may be read-only
        shutil.copyfile(os.path.join(mirror, "esconv", f"{split}.json"), folder / f"{split}.json")
    build_data.mark_done(str(folder), version_string=esconv.VERSION)
    marker = (folder / ".built").read_text()
    assert make_teacher("esconv", "test", str(tmp_path / "data")).num_episodes() == DIALOGUES["test"]
    assert (folder / ".built").read_text() == marker
    assert (folder / ".manifest.json").is_file()
