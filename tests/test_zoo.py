"""The zoo mechanism: release archives packed, verified, unpacked, versioned, served."""
import os
import tarfile

import pytest

from parlai_cli import run_parlai
from parlai_empathy import zoo
from parlai_empathy.mirror import MIRROR_ENV, DownloadError, sha256_of


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny generator trained for real on integration_tests."""
    root = tmp_path_factory.mktemp("zoo_model")
    model_file = root / "model"
    run_parlai(["train_model", "-m", "empathy/tiny_generator", "-t", "integration_tests",
                "-mf", model_file, "--max-train-steps", 60, "-vstep", 30,
                "--datapath", root / "data"])
    return model_file


@pytest.fixture
def releases(trained, tmp_path, monkeypatch):
    """Two versions of one release in a local release folder (PARLAI_EMPATHY_ZOO_URL)."""
    folder = tmp_path / "releases"
    v1 = zoo.pack(str(trained), "tiny_test", "v1", str(folder))
    v2 = zoo.pack(str(trained), "tiny_test", "v2", str(folder), fp16=True)
    monkeypatch.setenv(zoo.ZOO_URL_ENV, str(folder))
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    return {
        "v1": zoo.ZooRelease("tiny_test", "v1", sha256_of(v1)),
        "v2": zoo.ZooRelease("tiny_test", "v2", sha256_of(v2)),
        "folder": folder,
    }


def test_pack_is_reproducible_and_slim(trained, tmp_path):
    a = zoo.pack(str(trained), "x", "v1", str(tmp_path / "a"))
    b = zoo.pack(str(trained), "x", "v1", str(tmp_path / "b"))
    assert sha256_of(a) == sha256_of(b)
    with tarfile.open(a) as tar:
        assert sorted(tar.getnames()) == ["model", "model.dict", "model.opt"]
    # optimizer state dropped: the release is smaller than the training checkpoint
    assert os.path.getsize(a) < os.path.getsize(trained)


def test_download_unpacks_into_models_empathy(releases, datapath):
    folder = zoo.download(releases["v1"], datapath)
    assert folder == os.path.join(datapath, "models", "empathy", "tiny_test")
    assert sorted(f for f in os.listdir(folder) if not f.startswith(".")) == [
        "model", "model.dict", "model.opt"]
    assert open(os.path.join(folder, ".built")).read().split("\n")[1] == "v1"


def test_version_change_refetches(releases, datapath):
    folder = zoo.download(releases["v1"], datapath)
    v1_weights = open(os.path.join(folder, "model"), "rb").read()
    zoo.download(releases["v2"], datapath)
    assert open(os.path.join(folder, ".built")).read().split("\n")[1] == "v2"
    assert open(os.path.join(folder, "model"), "rb").read() != v1_weights  # fp16 now


def test_checksum_mismatch_keeps_the_installed_version(releases, datapath):
    zoo.download(releases["v1"], datapath)
    bad = zoo.ZooRelease("tiny_test", "v2", "0" * 64)
    with pytest.raises(DownloadError) as err:
        zoo.download(bad, datapath)
    assert "sha256 mismatch" in str(err.value) and zoo.ZOO_URL_ENV in str(err.value)
    folder = bad.folder(datapath)
    assert open(os.path.join(folder, ".built")).read().split("\n")[1] == "v1"
    leftovers = [f for f in os.listdir(os.path.dirname(folder)) if "building" in f]
    assert leftovers == []


def test_missing_release_names_every_place_looked(monkeypatch, datapath, tmp_path):
    monkeypatch.setenv(zoo.ZOO_URL_ENV, str(tmp_path / "empty"))
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path / "mirror"))
    with pytest.raises(DownloadError) as err:
        zoo.download(zoo.ZooRelease("nothing_here", "v1", "0" * 64), datapath)
    message = str(err.value)
    assert "nothing_here-v1.tar.gz" in message
    assert str(tmp_path / "empty") in message and str(tmp_path / "mirror") in message
    assert not os.path.exists(os.path.join(datapath, "models", "empathy", "nothing_here"))


def test_eval_model_and_chat_from_the_bundled_zoo_release(mirror, datapath, tmp_path):
    """``-mf zoo:empathy/tiny_generator_ed/model`` through the real CLI, from a fresh
    datapath: the bundled archive is verified, unpacked and evaluated, then chats."""
    env = {MIRROR_ENV: mirror}
    report_file = tmp_path / "report.json"
    run_parlai(
        ["eval_model", "-mf", "zoo:empathy/tiny_generator_ed/model",
         "-t", "empathetic_dialogues", "--train-experiencer-only", "true", "-dt", "test",
         "--num-examples", 32, "--datapath", datapath, "--report-filename", report_file],
        env=env,
    )
    folder = os.path.join(datapath, "models", "empathy", "tiny_generator_ed")
    assert sorted(f for f in os.listdir(folder) if not f.startswith(".")) == [
        "model", "model.dict", "model.opt"]
    import json

    report = json.load(open(report_file))["report"]
    assert report["exs"] >= 32
    # a model trained on ED predicts ED text far better than chance (vocab of 10k tokens)
    assert report["ppl"] < 200
    for name in ("mbleu", "dist1", "dist2", "rougeL", "vader_delta"):
        assert name in report
    chat = run_parlai(
        ["interactive", "-mf", "zoo:empathy/tiny_generator_ed/model", "--datapath", datapath],
        stdin="I just lost my job today and I feel awful.\n", env=env, timeout=120,
    ).stdout
    replies = [line.split("]:", 1)[1] for line in chat.splitlines() if "[TinyGenerator]:" in line]
    assert len(replies) == 1 and replies[0].strip()


def _chat_once(model_file, speaker, text, datapath, env):
    """One message to ``parlai interactive -mf MODEL_FILE``: (its one reply, the whole
    output). The reply is a sentence, not ParlAI's spaced tokens ("i ' m sorry to hear
    that ."), and the model's emotion is shown with it."""
    chat = run_parlai(["interactive", "-mf", model_file, "--datapath", datapath],
                      stdin=text + "\n", env=env, timeout=180).stdout
    replies = [line.split("]:", 1)[1].strip() for line in chat.splitlines()
               if f"[{speaker}]:" in line]
    assert len(replies) == 1 and replies[0], chat[-3000:]
    assert replies[0][0].isupper() and " ' " not in replies[0], replies[0]
    assert not any(f" {mark}" in replies[0] for mark in ".,!?"), replies[0]
    assert "[emotion]:" in chat and "[emotion_prob]:" in chat
    return replies[0], chat


# Golden numbers of the frozen v3 release on the first 64 ED valid examples (batch 16),
# measured on the release when it was made: a change that alters the model's computation
# changes them.
MOEL_V3_VALID64 = {"ppl": 68.36230, "emotion_acc": 9 / 64, "emotion_acc@5": 34 / 64}


def _golden_valid64(model_file, golden, env, datapath, tmp_path):
    """``parlai eval_model`` of a zoo generator on the first 64 ED valid examples (batch 16,
    no generation) gives the release's golden numbers."""
    import json

    report_file = tmp_path / "report.json"
    run_parlai(
        ["eval_model", "-mf", model_file, "-t", "empathetic_dialogues",
         "--train-experiencer-only", "true", "-dt", "valid", "--num-examples", 64,
         "--batchsize", 16, "--skip-generation", "true", "--datapath", datapath,
         "--report-filename", report_file],
        env=env,
    )
    report = json.load(open(report_file))["report"]
    assert report["exs"] == 64
    for name, value in golden.items():
        assert report[name] == pytest.approx(value, abs=1e-3), name


def test_moel_zoo_release_evaluates_and_chats_with_its_emotion(mirror, datapath, tmp_path):
    """``zoo:empathy/moel_ed/model``: the bundled MoEL release through the real CLI."""
    env = {MIRROR_ENV: mirror}
    _golden_valid64("zoo:empathy/moel_ed/model", MOEL_V3_VALID64, env, datapath, tmp_path)
    _chat_once("zoo:empathy/moel_ed/model", "Moel",
               "My dog died yesterday and I can't stop crying.", datapath, env)


# Golden numbers of the frozen MoEL-16 v1 release on the same 64 examples: emotion accuracy
# over the 16 groups (ED's labels mapped to their group). Measured on the release when it was
# made.
MOEL16_V1_VALID64 = {"ppl": 63.79267, "emotion_acc": 18 / 64, "emotion_acc@5": 47 / 64}


def test_moel16_zoo_release_evaluates_and_chats_in_the_16_groups(mirror, datapath, tmp_path):
    """``zoo:empathy/moel16_ed/model``: MoEL over the 16 groups, through the real CLI; its
    chat shows a group, not one of the 32 emotions."""
    import re

    from parlai_empathy import emotions

    env = {MIRROR_ENV: mirror}
    _golden_valid64("zoo:empathy/moel16_ed/model", MOEL16_V1_VALID64, env, datapath, tmp_path)
    _, chat = _chat_once("zoo:empathy/moel16_ed/model", "Moel",
                         "My dog died yesterday and I can't stop crying.", datapath, env)
    shown = re.search(r"\[emotion\]: (\S+)", chat).group(1)
    assert shown in emotions.GROUP_NAMES and len(emotions.GROUP_NAMES) == 16, shown


# Golden numbers of the frozen MIME v1 release on the first 64 ED valid examples (batch 16):
# ppl and emotion accuracy. MIME samples its emotion mixture at inference too (as the
# original), so they are measured through `parlai empathy_report`, which seeds torch (1234)
# before evaluating; measured on the release when it was made.
MIME_V1_VALID64 = {"ppl": 60.62391, "emotion_acc": 10 / 64}


def test_mime_zoo_release_evaluates_and_chats_with_emotion_and_polarity(mirror, datapath,
                                                                       tmp_path):
    """``zoo:empathy/mime_ed/model``: the bundled MIME release through the real CLI."""
    import json

    env = {MIRROR_ENV: mirror}
    out = tmp_path / "report"
    run_parlai(
        ["empathy_report", "-mfs", "zoo:empathy/mime_ed/model", "-t", "empathetic_dialogues",
         "--train-experiencer-only", "true", "-dt", "valid", "-ne", 64, "-bs", 16,
         "--skip-generation", "true", "--datapath", datapath, "--out", out],
        env=env,
    )
    evaluation = json.load(open(f"{out}.json"))["models"][0]
    for name, value in MIME_V1_VALID64.items():
        assert evaluation["metrics"][name] == pytest.approx(value, abs=1e-3), name
    # its mixture samples whatever the decoding: the report records the seed it ran with
    assert evaluation["settings"]["seed"] == 1234
    assert "| 1234 |" in open(f"{out}.md").read()
    _, chat = _chat_once("zoo:empathy/mime_ed/model", "Mime",
                         "I finally got the job I wanted and I am so happy!", datapath, env)
    assert "[polarity]: positive" in chat or "[polarity]: negative" in chat


# Golden numbers of the frozen emotion classifier v1 on the first 64 ED valid contexts (the
# MoEL view, batch 16): correct predictions and the mean loss, over the 32 emotions and over
# the 16 groups (its probabilities summed per group). Measured on the release when it was made.
CLASSIFIER_V1_VALID64 = {32: (19, 2.60948), 16: (25, 2.09728)}


@pytest.mark.parametrize("groups", [32, 16])
def test_emotion_classifier_release_golden_numbers(mirror, datapath, tmp_path, groups):
    """``zoo:empathy/emotion_classifier_ed/model`` through the real ``parlai eval_model``."""
    import json

    report_file = tmp_path / "report.json"
    run_parlai(
        ["eval_model", "-mf", "zoo:empathy/emotion_classifier_ed/model", "-t", "ed_emotion",
         "-dt", "valid", "--num-examples", 64, "--batchsize", 16, "--emotion-groups", groups,
         "--datapath", datapath, "--report-filename", report_file],
        env={MIRROR_ENV: mirror},
    )
    report = json.load(open(report_file))["report"]
    correct, loss = CLASSIFIER_V1_VALID64[groups]
    assert report["exs"] == 64
    assert report["accuracy"] * 64 == pytest.approx(correct)
    assert report["loss"] == pytest.approx(loss, abs=1e-3)
    classes = [key[len("class_"):-len("_f1")] for key in report if key.endswith("_f1")
               and key.startswith("class_")]
    assert len(classes) == groups


def test_emotion_classifier_release_chats_with_top5(mirror, datapath):
    """``parlai interactive -mf zoo:empathy/emotion_classifier_ed/model``: the top five
    emotions with probabilities, for a text whose emotion is plain."""
    chat = run_parlai(
        ["interactive", "-mf", "zoo:empathy/emotion_classifier_ed/model", "--datapath", datapath],
        stdin="My best friend forgot my birthday and I feel so sad and alone.\n",
        env={MIRROR_ENV: mirror}, timeout=180,
    ).stdout
    replies = [line.split("]:", 1)[1].strip() for line in chat.splitlines()
               if "[EmotionClassifier]:" in line]
    assert len(replies) == 1, chat[-3000:]
    top = [part.rsplit(" ", 1) for part in replies[0].split(" | ")]
    probabilities = [float(p) for _, p in top]
    assert len(top) == 5 and probabilities == sorted(probabilities, reverse=True)
    assert {label for label, _ in top[:2]} & {"sad", "lonely", "disappointed"}, replies[0]


# Golden numbers of the frozen CoBERT v4 release on the first 16 ED test examples of
# -t empathy_ranking:ed (100 candidates each, batch 8): gold ranked first, and the MRR.
# Measured on the release when it was made.
COBERT_V4_TEST16 = {"hits@1": 10, "mrr": 0.69991}


def test_cobert_release_golden_numbers_and_chat(mirror, datapath, tmp_path):
    """``zoo:empathy/cobert_ed/model`` through the real CLI: 100-candidate ranking on ED
    test, then a chat answered from the candidates shipped with the release (their
    encodings are shipped too: nothing is re-encoded)."""
    import json

    env = {MIRROR_ENV: mirror}
    report_file = tmp_path / "report.json"
    run_parlai(
        ["eval_model", "-mf", "zoo:empathy/cobert_ed/model", "-t", "empathy_ranking:ed",
         "-dt", "test", "-ecands", "inline", "--num-examples", 16, "--batchsize", 8,
         "--datapath", datapath, "--report-filename", report_file],
        env=env, timeout=300,
    )
    report = json.load(open(report_file))["report"]
    assert report["exs"] == 16
    assert report["hits@1"] * 16 == pytest.approx(COBERT_V4_TEST16["hits@1"])
    assert report["mrr"] == pytest.approx(COBERT_V4_TEST16["mrr"], abs=1e-4)
    folder = os.path.join(datapath, "models", "empathy", "cobert_ed")
    shipped = open(os.path.join(folder, "model.cands.txt"), encoding="utf-8").read()
    cache = os.path.join(folder, "model.cands.cobert-encs")
    before = os.stat(cache).st_mtime_ns
    chat = run_parlai(
        ["interactive", "-mf", "zoo:empathy/cobert_ed/model", "--datapath", datapath],
        stdin="I finally passed my driving test after three tries!\n", env=env, timeout=180,
    ).stdout
    replies = [line.split("]:", 1)[1].strip() for line in chat.splitlines()
               if "[CoBERT]:" in line]
    assert len(replies) == 1 and replies[0] in shipped.splitlines(), chat[-3000:]
    assert os.stat(cache).st_mtime_ns == before  # the shipped encodings were used as they are
