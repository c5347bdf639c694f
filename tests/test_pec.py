"""PEC teachers on a fixture in the release's exact format, served as a mirror zip.

PEC itself is not reachable here: ``tests/fixtures/pec/hf_pec`` (see its README) is zipped
into ``<tmp>/pec/hf_pec.zip`` and ``PARLAI_EMPATHY_MIRROR`` points at ``<tmp>``, so the real
builder (mirror download, unzip, ``.built``) and reader run on it.
"""
import json
import logging as std_logging
import os
import re
import runpy
import zipfile

import pytest
from parlai.core import build_data
from parlai.core.params import ParlaiParser
from parlai.core.teachers import create_task_agent_from_taskname
from parlai.utils import logging as parlai_logging

from parlai_cli import run_parlai
from parlai_empathy.data import pec
from parlai_empathy.mirror import MIRROR_ENV

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "pec")

# Counted by hand from the fixture (see its README) and re-checked with a throwaway parser:
# conversations per file, examples without / with --pec-filter.
SPLITS = ("train", "valid", "test")
CONVERSATIONS = {
    **dict(zip((("happy", s) for s in SPLITS), (6, 105, 102))),
    **dict(zip((("offmychest", s) for s in SPLITS), (5, 4, 3))),
}
EXAMPLES = {
    **dict(zip((("happy", s) for s in SPLITS), (6, 105, 102))),
    **dict(zip((("offmychest", s) for s in SPLITS), (4, 4, 3))),  # train: 1 without context
}
FILTERED = {
    **dict(zip((("happy", s) for s in SPLITS), (1, 44, 42))),
    **dict(zip((("offmychest", s) for s in SPLITS), (1, 0, 0))),
}
TASK_DOMAINS = {
    "pec": ("happy", "offmychest"),
    "pec:happy": ("happy",),
    "pec:offmychest": ("offmychest",),
}


def zip_fixture(mirror_root):
    os.makedirs(os.path.join(mirror_root, "pec"), exist_ok=True)
    archive = os.path.join(mirror_root, "pec", "hf_pec.zip")
    with zipfile.ZipFile(archive, "w") as zf:
        for folder, _dirs, files in sorted(os.walk(os.path.join(FIXTURE, "hf_pec"))):
            for name in sorted(files):
                path = os.path.join(folder, name)
                zf.write(path, os.path.relpath(path, FIXTURE))
    return archive


@pytest.fixture(scope="module")
def pec_mirror(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("pec_mirror"))
    zip_fixture(root)
    return root


@pytest.fixture(scope="module")
def pec_datapath(pec_mirror, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("pec_data"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(MIRROR_ENV, pec_mirror)
        pec.build({"datapath": path})
    return path


def make_teacher(task, datatype, datapath, *args):
    opt = ParlaiParser(True, False).parse_args(
        ["--task", task, "--datatype", datatype, "--datapath", datapath, *map(str, args)]
    )
    return create_task_agent_from_taskname(opt)[0]


def messages(teacher):
    return [teacher.data.build_table(episode[0]) for episode in teacher.data.data]


class Captured(std_logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def parlai_log():
    handler = Captured()
    parlai_logging.logger.addHandler(handler)
    yield handler.lines
    parlai_logging.logger.removeHandler(handler)


def test_fixture_files_are_the_generators_output():
    expected = runpy.run_path(os.path.join(FIXTURE, "generate.py"))["files"]()
    for relative, text in expected.items():
        with open(os.path.join(FIXTURE, *relative.split("/")), encoding="utf-8", newline="") as f:
            assert f.read() == text, f"{relative} differs: run tests/fixtures/pec/generate.py"


def test_build_unpacks_the_mirror_zip(pec_datapath):
    folder = os.path.join(pec_datapath, "pec")
    assert build_data.built(folder, version_string=pec.VERSION)
    assert not os.path.exists(os.path.join(folder, "hf_pec.zip"))
    files = sorted(os.listdir(os.path.join(folder, "hf_pec", "offmychest")))
    assert files == ["persona.txt", "test.txt", "train.txt", "valid.txt"]


@pytest.mark.parametrize("task", sorted(TASK_DOMAINS))
@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_counts(pec_datapath, task, split):
    datatype = "train:ordered" if split == "train" else split
    domains = TASK_DOMAINS[task]
    teacher = make_teacher(task, datatype, pec_datapath)
    expected = sum(EXAMPLES[d, split] for d in domains)
    assert teacher.num_episodes() == teacher.num_examples() == expected
    assert [m["domain"] for m in messages(teacher)] == [
        d for d in domains for _ in range(EXAMPLES[d, split])
    ]
    filtered = make_teacher(task, datatype, pec_datapath, "--pec-filter", "true")
    assert filtered.num_examples() == sum(FILTERED[d, split] for d in domains)


def test_conversation_counts_include_dropped_ones(pec_datapath):
    data_dir = os.path.join(pec_datapath, "pec", "hf_pec")
    for (domain, split), count in CONVERSATIONS.items():
        _, report = pec.load_examples(data_dir, domain, split)
        assert report.conversations == count
        assert report.examples == EXAMPLES[domain, split]


def test_first_message_field_by_field(pec_datapath):
    teacher = make_teacher("pec:happy", "train:ordered", pec_datapath)
    message = teacher.act()
    assert message["id"] == "pec:happy"
    assert message["text"] == "\n".join(
        [
            "I finally finished the marathon I had been training for all year and my legs "
            "still feel like jelly today.",  # continuation line joined with one space
            "That is amazing, congratulations on sticking with the plan for so many months!",
            "Thanks! What kept me going was the crowd cheering at every single mile.",
        ]
    )
    assert list(message["labels"]) == [
        "Crowds make such a difference, I remember crying at the finish line of my first race."
    ]
    assert message["context_speakers"] == ["sunny_day", "Zoë-Ωmega", "sunny_day"]
    assert message["response_speaker"] == "x--y-_"
    assert message["domain"] == "happy"
    assert message["conversation_index"] == 0
    assert message["episode_done"] is True
    assert "label_candidates" not in message and "emotion" not in message
    # x--y-_ has 26 persona sentences: 10 sampled, kept in file order
    numbers = [int(re.search(r"fact number (\d+)", p).group(1)) for p in message["personas"]]
    assert len(numbers) == 10 and numbers == sorted(numbers) and len(set(numbers)) == 10
    assert all(p.startswith("I am x--y-_ and fact number ") for p in message["personas"])
    assert set(numbers) <= set(range(1, 27))


def test_personas_are_deterministic_and_sized_by_the_option(pec_datapath):
    first = messages(make_teacher("pec", "valid", pec_datapath))
    again = messages(make_teacher("pec", "valid", pec_datapath))
    assert [m["personas"] for m in first] == [m["personas"] for m in again]
    happy_only = messages(make_teacher("pec:happy", "valid", pec_datapath))
    assert [m["personas"] for m in happy_only] == [m["personas"] for m in first[:105]]
    # different conversations of the same speaker draw different samples
    by_speaker = {}
    for m in first:
        by_speaker.setdefault(m["response_speaker"], set()).add(tuple(m["personas"]))
    assert len(by_speaker["user03"]) > 1  # 29 sentences, 10 drawn
    train = ("pec:happy", "train:ordered", pec_datapath)
    everything = messages(make_teacher(*train, "--pec-num-personas", "-1"))
    assert len(everything[0]["personas"]) == 26
    assert everything[5]["personas"] == []  # ghost_writer is not in persona.txt
    three = messages(make_teacher(*train, "--pec-num-personas", "3"))
    assert [len(m["personas"]) for m in three] == [3, 3, 3, 3, 3, 0]
    assert all(p in everything[0]["personas"] for p in three[0]["personas"])


def test_label_candidates(pec_datapath):
    teacher = make_teacher("pec", "valid", pec_datapath)
    happy = [m for m in messages(teacher) if m["domain"] == "happy"]
    responses = {m["labels"][0] for m in happy}
    assert len(responses) == 104  # one response occurs twice
    for m in happy:
        cands = m["label_candidates"]
        assert len(cands) == 100 and len(set(cands)) == 100
        assert cands.count(m["labels"][0]) == 1
        assert set(cands) <= responses
    assert len({tuple(m["label_candidates"]) for m in happy}) == len(happy)
    assert len({m["label_candidates"].index(m["labels"][0]) for m in happy}) > 10  # gold moves
    # deterministic, and the same whichever teacher (or filter) loads the conversation
    again = messages(make_teacher("pec:happy", "valid", pec_datapath, "--pec-filter", "true"))
    by_index = {m["conversation_index"]: m["label_candidates"] for m in happy}
    assert all(m["label_candidates"] == by_index[m["conversation_index"]] for m in again)
    # fewer than 100 distinct responses in the split: all of them, gold included
    small = [m for m in messages(teacher) if m["domain"] == "offmychest"]
    all_small = {m["labels"][0] for m in small}
    assert all(len(m["label_candidates"]) == 4 for m in small)
    assert all(set(m["label_candidates"]) == all_small for m in small)


def test_filter_keeps_exactly_the_conversations_that_pass(pec_datapath):
    options = ("train:ordered", pec_datapath, "--pec-filter", "true")
    happy = messages(make_teacher("pec:happy", *options))
    assert [m["conversation_index"] for m in happy] == [0]
    boundary = messages(make_teacher("pec:offmychest", *options))
    assert [m["conversation_index"] for m in boundary] == [0]
    assert boundary[0]["labels"][0] == "one two three four five six seven eight nine ten"


def test_parsing_edge_cases(pec_datapath):
    msgs = messages(make_teacher("pec:offmychest", "train:ordered", pec_datapath))
    # conversation 1 has a single utterance: no context, dropped
    assert [m["conversation_index"] for m in msgs] == [0, 2, 3, 4]
    separator_inside = msgs[1]
    assert separator_inside["context_speakers"] == ["Ünïcödé_user"]
    assert separator_inside["text"] == (
        "My ex wrote ---+--- in every message, as if it were a secret code."
    )
    assert msgs[3]["text"] == (
        "I miss my best friend who moved abroad. We used to talk every day. "
        "Now it is once a month if I am lucky."
    )


def test_missing_persona_speaker_is_kept_counted_and_logged(pec_datapath, parlai_log):
    data_dir = os.path.join(pec_datapath, "pec", "hf_pec")
    examples, report = pec.load_examples(data_dir, "happy", "train")
    assert report.missing_persona == 1 and report.missing_persona_speakers == ["ghost_writer"]
    assert examples[5]["response_speaker"] == "ghost_writer" and examples[5]["personas"] == []
    assert any("missing from persona.txt" in line and "ghost_writer" in line for line in parlai_log)
    settings = pec.PECSettings(filter_like_seed_paper=True)
    _, filtered = pec.load_examples(data_dir, "happy", "train", settings)
    assert filtered.missing_persona == 1 and filtered.examples == 1


def test_parlai_verify_data_is_clean(pec_datapath):
    from parlai.scripts.verify_data import VerifyData

    counts = VerifyData.main(task="pec", datatype="valid", datapath=pec_datapath)
    assert counts["exs"] == 109
    assert all(v == 0 for k, v in counts.items() if k != "exs"), counts


def test_display_data_cli_with_the_fixture_mirror(pec_mirror, tmp_path):
    proc = run_parlai(
        ["display_data", "-t", "pec", "-dt", "valid", "-n", "3", "--datapath", tmp_path / "data"]
        + ["--display-add-fields", "personas,domain,response_speaker"],
        env={MIRROR_ENV: pec_mirror},
    )
    out = proc.stdout
    assert "Today I am thrilled about my garden, it took 2 weeks to get here." in out
    assert "Your garden story number 0 in valid made me smile, well done!" in out
    assert "[personas]:" in out and "[domain]: happy" in out and "[response_speaker]: user02" in out
    assert "loaded 109 episodes with a total of 109 examples" in out
    assert "only 4 distinct responses" in out  # offmychest/valid is small


# --- emotion labels file -----------------------------------------------------------------------


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_emotion_file_fills_the_emotion_field(pec_datapath, tmp_path, parlai_log):
    lines = [
        {"domain": "happy", "split": "valid", "index": 0, "emotion": "joyful"},
        {"domain": "happy", "split": "valid", "index": 2, "emotion": "Proud"},
        {"domain": "offmychest", "split": "valid", "index": 1, "emotion": "devastated"},
        {"domain": "happy", "split": "train", "index": 0, "emotion": "excited"},
    ]
    path = write(tmp_path / "emotions.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    msgs = messages(make_teacher("pec", "valid", pec_datapath, "--pec-emotion-file", path))
    assert msgs[0]["emotion"] == "joyful" and msgs[2]["emotion"] == "proud"
    assert "emotion" not in msgs[1]
    assert msgs[106]["domain"] == "offmychest" and msgs[106]["emotion"] == "devastated"
    assert sum("emotion" in m for m in msgs) == 3
    assert any("103 examples have no label" in line for line in parlai_log)


def emotion_line(domain="happy", split="valid", index=1, emotion="sad", drop=None):
    record = {"domain": domain, "split": split, "index": index, "emotion": emotion}
    record.pop(drop, None)
    return json.dumps(record)


@pytest.mark.parametrize(
    "line, message",
    [
        (emotion_line(emotion="happy"), "unknown emotion 'happy'"),
        (emotion_line()[:-1], "malformed JSON"),
        (emotion_line(drop="index"), 'expected an object with "domain"'),
        (emotion_line(domain="sad"), "domain must be one of"),
        (emotion_line(index=-1), "non-negative integer"),
        (emotion_line(index=0), "already labelled on line 1"),
        (emotion_line(index=105), "out of range"),
        (emotion_line()[:-1] + ', "probability": 1.5}', "probability must be a number in [0, 1]"),
        (emotion_line()[:-1] + ', "probability": "high"}', "probability must be a number"),
    ],
)
def test_bad_emotion_file_names_file_and_line(pec_datapath, tmp_path, line, message):
    good = emotion_line(index=0)
    path = write(tmp_path / "emotions.jsonl", f"{good}\n\n{line}\n")
    with pytest.raises(pec.PECFormatError) as err:
        make_teacher("pec:happy", "valid", pec_datapath, "--pec-emotion-file", path)
    assert f"{path}:3: " in str(err.value) and message in str(err.value)


# --- bad release files -------------------------------------------------------------------------


def test_line_without_separator_and_nothing_to_continue_names_file_and_line(tmp_path):
    end = "*" * 20
    text = "\n".join(
        ["alice---+---hello there", "bob---+---hi!", end, "", "a line with no speaker", end]
    )
    path = write(tmp_path / "valid.txt", text + "\n")
    with pytest.raises(pec.PECFormatError) as err:
        list(pec.read_conversations(path))
    assert f"{path}:5: " in str(err.value) and "---+---" in str(err.value)
    path = write(tmp_path / "test.txt", "starts without a speaker\n")
    with pytest.raises(pec.PECFormatError, match=re.escape(f"{path}:1: ")):
        list(pec.read_conversations(path))


def test_unterminated_last_conversation_is_ignored_with_a_warning(tmp_path, parlai_log):
    text = "\n".join(["a---+---one", "b---+---two", "*" * 20, "c---+---three", "d---+---four"])
    path = write(tmp_path / "train.txt", text)
    conversations = list(pec.read_conversations(path))
    assert [c.response for c in conversations] == ["two"]
    assert any(f"{path}:4" in line and "not closed" in line for line in parlai_log)


def test_missing_split_or_persona_file_names_the_file(tmp_path):
    data = tmp_path / "data"
    hf_pec = data / "pec" / "hf_pec"
    for domain in pec.DOMAINS:
        (hf_pec / domain).mkdir(parents=True)
        for name in ("train", "valid", "persona"):
            text = "alice---+---hi\nbob---+---hello\n" + "*" * 20 + "\n"
            write(hf_pec / domain / f"{name}.txt", text)
    build_data.mark_done(str(data / "pec"), version_string=pec.VERSION)
    assert make_teacher("pec", "valid", str(data)).num_examples() == 2
    missing = hf_pec / "happy" / "test.txt"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        make_teacher("pec", "test", str(data))
    os.remove(hf_pec / "offmychest" / "persona.txt")
    missing = hf_pec / "offmychest" / "persona.txt"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        make_teacher("pec:offmychest", "valid", str(data))


def test_archive_without_a_member_fails_and_leaves_nothing_built(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    (mirror / "pec").mkdir(parents=True)
    with zipfile.ZipFile(mirror / "pec" / "hf_pec.zip", "w") as zf:
        zf.writestr("hf_pec/happy/train.txt", "a---+---x\nb---+---y\n" + "*" * 20 + "\n")
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(pec.PECFormatError, match="no member hf_pec/happy/valid.txt"):
        pec.build({"datapath": str(data)})
    assert not (data / "pec").exists()
