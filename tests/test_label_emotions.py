"""``parlai empathy_label_emotions`` on the PEC fixtures (zipped into a mirror as in
test_pec): the output is the PEC teacher's --pec-emotion-file; a run killed half-way and
rerun gives the same file as an uninterrupted one; bad input gets one clear error."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from parlai.core.agents import create_agent
from parlai.core.params import ParlaiParser

from parlai_empathy import emotions
from parlai_empathy.data import pec
from parlai_empathy.label_emotions import DELAY_ENV, LabelInputError, run
from parlai_empathy.mirror import MIRROR_ENV
from test_pec import make_teacher, zip_fixture
from tiny_encoder import make_tiny_encoder

PARLAI = os.path.join(os.path.dirname(sys.executable), "parlai")
PEC_VALID = 105 + 4  # examples of -t pec -dt valid in the fixture (test_pec.EXAMPLES)


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    root = tmp_path_factory.mktemp("label")
    mirror = str(root / "mirror")
    zip_fixture(mirror)
    datapath = str(root / "data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(MIRROR_ENV, mirror)
        pec.build({"datapath": datapath})
    encoder = make_tiny_encoder(str(root / "encoder"))
    model_file = str(root / "model" / "model")
    os.makedirs(os.path.dirname(model_file))
    opt = ParlaiParser(True, True).parse_args(
        ["-m", "empathy/emotion_classifier", "--encoder-path", encoder, "-mf", model_file,
         "--label-set", "ed32"]
    )
    create_agent(opt).save(model_file)
    shutil.rmtree(encoder)  # the model file must be enough
    return {"mirror": mirror, "datapath": datapath, "model_file": model_file, "root": root}


def command(setting, out, *extra):
    return [PARLAI, "empathy_label_emotions", "-mf", setting["model_file"], "-t", "pec",
            "-dt", "valid", "--datapath", setting["datapath"], "-bs", "4", "--out", str(out),
            *extra]


def run_to_end(args, env=None, timeout=300):
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})}, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return proc.returncode, out


def lines_of(path):
    if not os.path.exists(path):
        return 0
    with open(path, encoding="utf-8") as f:
        return f.read().count("\n")


@pytest.fixture(scope="module")
def uninterrupted(setting):
    out = setting["root"] / "full.jsonl"
    assert run(parse(setting, out))["examples"] == PEC_VALID
    return out


def test_output_is_the_pec_emotion_file(setting, uninterrupted):
    with open(uninterrupted, encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    assert len(records) == PEC_VALID
    assert [r["example"] for r in records] == list(range(PEC_VALID))
    assert [r["domain"] for r in records] == ["happy"] * 105 + ["offmychest"] * 4
    assert {r["split"] for r in records} == {"valid"}
    for r in records:
        assert r["emotion"] in emotions.ED_EMOTIONS and len(r["top5"]) == 5
        assert [r["emotion"], r["probability"]] == r["top5"][0]
        assert [p for _, p in r["top5"]] == sorted((p for _, p in r["top5"]), reverse=True)
    teacher = make_teacher("pec", "valid", setting["datapath"], "--pec-emotion-file", uninterrupted)
    by_key = {(r["domain"], r["index"]): r for r in records}
    messages = [teacher.act() for _ in range(teacher.num_examples())]
    assert len(messages) == PEC_VALID
    for message in messages:
        record = by_key[(message["domain"], message["conversation_index"])]
        assert message["emotion"] == record["emotion"]
        assert message["emotion_probability"] == record["probability"]


def test_killed_run_resumes_to_the_same_file(setting, uninterrupted, tmp_path):
    out = tmp_path / "labels.jsonl"
    partial = str(out) + ".partial"
    proc = subprocess.Popen(command(setting, out), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, DELAY_ENV: "0.3"},
                            start_new_session=True)
    try:
        deadline = time.time() + 180
        while lines_of(partial) < 12 and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be interrupted"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = lines_of(partial)
    assert 12 <= done < PEC_VALID and not out.exists()
    assert run(parse(setting, out))["resumed_after"] == done
    assert out.read_bytes() == uninterrupted.read_bytes()
    assert not os.path.exists(partial) and not os.path.exists(str(out) + ".partial.json")


def parse(setting, out, *extra):
    from parlai.scripts.empathy_label_emotions import EmpathyLabelEmotions

    return EmpathyLabelEmotions.setup_args().parse_args(
        [str(a) for a in command(setting, out, *extra)[2:]]
    )


def test_torn_last_line_is_cut_and_labelling_continues(
    setting, uninterrupted, tmp_path, monkeypatch
):
    import parlai_empathy.label_emotions as module

    def interrupt(_seconds):
        raise KeyboardInterrupt  # Ctrl-C right after the first batch

    out = tmp_path / "labels.jsonl"
    opt = parse(setting, out)
    with monkeypatch.context() as m:
        m.setenv(DELAY_ENV, "1")
        m.setattr(module.time, "sleep", interrupt)
        with pytest.raises(KeyboardInterrupt):
            run(opt)
    assert lines_of(str(out) + ".partial") == 4 and not out.exists()
    # what a run killed inside a write would leave: half of the next line
    with open(uninterrupted, encoding="utf-8") as f:
        fifth = f.readlines()[4]
    with open(str(out) + ".partial", "a", encoding="utf-8") as f:
        f.write(fifth[: len(fifth) // 2])
    assert run(opt)["resumed_after"] == 4
    assert out.read_bytes() == uninterrupted.read_bytes()


def test_bad_input_is_one_clear_error(setting, uninterrupted, tmp_path):
    with pytest.raises(LabelInputError, match=r"full\.jsonl exists; remove it"):
        run(parse(setting, uninterrupted))
    out = tmp_path / "other.jsonl"
    with open(str(out) + ".partial.json", "w") as f:
        json.dump({"model_file": "another"}, f)
    open(str(out) + ".partial", "w").close()
    with pytest.raises(LabelInputError, match=r"other\.jsonl\.partial belongs to another labelling run"):
        run(parse(setting, out))
    empty = tmp_path / "empty.txt"
    empty.write_text("text:I won!\tlabels:yay\tepisode_done:True\ntext: \tlabels:hm\tepisode_done:True\n")
    out = tmp_path / "e.jsonl"
    opt = parse(setting, out, "-t", "fromfile:parlaiformat", "--fromfile-datapath", empty)
    with pytest.raises(LabelInputError, match=r"example 1 of .* has an empty 'text' field"):
        run(opt)
    assert not out.exists()
    with pytest.raises(SystemExit, match=r"empathy_label_emotions: error: unknown task 'no_such_task'"):
        parse(setting, out, "-t", "no_such_task")
