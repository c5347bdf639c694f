"""``-m empathy/emotion_classifier``: a tiny random BERT (real MiniLM vocabulary) overfits a
handful of real ED contexts through ParlAI's training loop; the packaged MiniLM classifies
a batch; bad labels and empty texts get clear errors; interactive shows the top 5."""
import os
import re
import signal
import subprocess
import sys

import pytest
from parlai.core.agents import create_agent
from parlai.core.params import ParlaiParser
from parlai.scripts.train_model import TrainModel

from parlai_empathy import emotions
from parlai_empathy.data import emotion_classification as ec
from parlai_empathy.emotion_classifier import confusion_matrix
from tiny_encoder import make_tiny_encoder

PARLAI = os.path.join(os.path.dirname(sys.executable), "parlai")


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return make_tiny_encoder(str(tmp_path_factory.mktemp("tiny_encoder")))


@pytest.fixture(scope="module")
def handful(ed_datapath):
    """Six real ED valid contexts (MoEL's view) with six different emotions."""
    chosen = {}
    for example in ec.ed_examples(ec.ed_split_path(ed_datapath, "valid")):
        chosen.setdefault(example["labels"][0], example["text"])
        if len(chosen) == 6:
            return sorted(chosen.items())
    raise AssertionError("ED valid has fewer than six emotions")


def write_parlai_format(path, pairs):
    with open(path, "w", encoding="utf-8") as f:
        for label, text in pairs:
            f.write(f"text:{text.replace(chr(10), chr(92) + 'n')}\tlabels:{label}\tepisode_done:True\n")
    return str(path)


def train_model(opt):
    """ParlAI's training loop in this process; the valid and test reports as numbers."""
    reports = TrainModel.main(**opt)
    return tuple({k: v.value() if hasattr(v, "value") else v for k, v in r.items()} for r in reports)


def tiny_opt(encoder, data_file, model_file, **extra):
    opt = dict(
        task="fromfile:parlaiformat",
        fromfile_datapath=data_file,
        model="empathy/emotion_classifier",
        model_file=str(model_file),
        encoder_path=encoder,
        batchsize=6,
        num_epochs=80,
        learningrate=3e-3,
        warmup_updates=-1,
        classifier_dropout=0.0,
        validation_every_n_epochs=1000,
        confusion_matrix=True,
    )
    opt.update(extra)
    return opt


def test_tiny_classifier_overfits_real_ed_contexts(encoder, handful, tmp_path):
    data = write_parlai_format(tmp_path / "handful.txt", handful)
    valid, test = train_model(tiny_opt(encoder, data, tmp_path / "model"))
    for report in (valid, test):
        assert report["exs"] == 6
        assert report["accuracy"] == 1.0
        assert report["weighted_f1"] == pytest.approx(1.0, abs=1e-9)
        for label, _ in handful:
            assert report[f"class_{label}_f1"] == pytest.approx(1.0, abs=1e-9)
    classes = list(emotions.ED_EMOTIONS)
    matrix = confusion_matrix(valid, classes)
    assert sum(map(sum, matrix)) == 6
    for label, _ in handful:
        assert matrix[classes.index(label)][classes.index(label)] == 1

    # reloaded from its files, without the encoder folder it started from
    agent = create_agent(
        ParlaiParser(True, True).parse_args(
            ["-mf", str(tmp_path / "model"), "--encoder-path", str(tmp_path / "gone")]
        ),
        requireModelExists=True,
    )
    tops = agent.classify([text for _, text in handful])
    assert [top[0][0] for top in tops] == [label for label, _ in handful]
    for top in tops:
        assert len(top) == 5
        probabilities = [p for _, p in top]
        assert probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) <= 1.0 + 1e-6

    # a zoo release of it (parlai_empathy.zoo pack) keeps the encoder config and tokenizer
    from parlai_empathy.mirror import unpack
    from parlai_empathy.zoo import pack

    archive = pack(str(tmp_path / "model"), "emo_test", "v1", str(tmp_path / "release"))
    unpack(archive, str(tmp_path / "unpacked"))
    assert os.path.isfile(tmp_path / "unpacked" / "model.encoder" / "config.json")
    assert os.path.isfile(tmp_path / "unpacked" / "model.dict.tokenizer" / "vocab.txt")
    released = create_agent(
        ParlaiParser(True, True).parse_args(["-mf", str(tmp_path / "unpacked" / "model")]),
        requireModelExists=True,
    )
    assert released.classify([text for _, text in handful]) == tops


def test_unknown_label_is_a_clear_error(encoder, handful, tmp_path):
    pairs = [("happyish", handful[0][1])] + handful[1:]
    data = write_parlai_format(tmp_path / "bad.txt", pairs)
    with pytest.raises(ValueError, match=r"label 'happyish' is not one of the classifier's 32 classes"):
        train_model(tiny_opt(encoder, data, tmp_path / "model", num_epochs=1))


def test_empty_text_is_a_clear_error(encoder, handful, tmp_path):
    data = tmp_path / "empty.txt"
    data.write_text("text: \tlabels:joyful\tepisode_done:True\n")
    with pytest.raises(ValueError, match=r"empty text .*labels \['joyful'\].*non-empty text"):
        train_model(tiny_opt(encoder, str(data), tmp_path / "model", num_epochs=1, batchsize=1))


def test_label_set_16_groups_and_esconv(encoder):
    def classes(*args):
        opt = ParlaiParser(True, True).parse_args(
            ["-m", "empathy/emotion_classifier", "--encoder-path", encoder, *args]
        )
        return create_agent(opt).class_list

    assert classes("-t", "ed_emotion", "--emotion-groups", "16") == list(emotions.GROUP_NAMES)
    assert classes("-t", "esconv_emotion") == list(emotions.ESCONV_EMOTION_TYPES)
    assert classes("-t", "ed_emotion") == list(emotions.ED_EMOTIONS)
    assert classes("--label-set", "ed16") == list(emotions.GROUP_NAMES)


def test_packaged_minilm_classifies_a_batch():
    opt = ParlaiParser(True, True).parse_args(["-m", "empathy/emotion_classifier"])
    agent = create_agent(opt)
    encoder = agent.model.encoder
    assert type(encoder).__name__ == "BertModel"
    assert sum(p.numel() for p in encoder.parameters()) == 22_713_216
    texts = ["I finally got the job I wanted!", "My dog died last night.", "Are you fine now?"]
    tops = agent.classify(texts)
    assert len(tops) == 3
    for top in tops:
        assert len(top) == 5 and {label for label, _ in top} <= set(emotions.ED_EMOTIONS)
        assert all(0.0 < p < 1.0 for _, p in top)
    # the batch gives each text what it gets alone (padding is masked)
    alone = agent.classify(texts[1:2])[0]
    assert [label for label, _ in alone] == [label for label, _ in tops[1]]
    assert [p for _, p in alone] == pytest.approx([p for _, p in tops[1]], abs=1e-5)


def chat(model_file, stdin):
    proc = subprocess.Popen(
        [PARLAI, "interactive", "-mf", str(model_file)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(stdin, timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 0, out[-3000:]
    return re.findall(r"\[EmotionClassifier\]: (.*)", out), out


def test_interactive_shows_top5_with_probabilities(encoder, handful, tmp_path):
    data = write_parlai_format(tmp_path / "handful.txt", handful)
    train_model(tiny_opt(encoder, data, tmp_path / "model", num_epochs=1))
    second = "My dog died last night."
    replies, out = chat(tmp_path / "model", f"I am so happy for my sister!\n{second}\n\n[EXIT]\n")
    assert len(replies) == 3, out[-3000:]
    top = [part.rsplit(" ", 1) for part in replies[0].split(" | ")]
    assert len(top) == 5 and all(label in emotions.ED_EMOTIONS for label, _ in top)
    probabilities = [float(p) for _, p in top]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.001
    assert replies[2] == "(empty input: type a text to classify)"
    # each message is classified on its own: neither the first message nor the agent's
    # reply to it is part of what the second reply classifies
    alone, out = chat(tmp_path / "model", f"{second}\n")
    assert alone == [replies[1]], out[-3000:]


def test_32_emotion_model_reports_16_groups_as_summed_probabilities(encoder, handful, tmp_path):
    from parlai.scripts.eval_model import EvalModel

    data = write_parlai_format(tmp_path / "handful.txt", handful)
    train_model(tiny_opt(encoder, data, tmp_path / "model", num_epochs=3))

    def load(*args):
        parser = ParlaiParser(True, True)
        return create_agent(
            parser.parse_args(["-mf", str(tmp_path / "model"), *args]), requireModelExists=True
        )

    texts = [text for _, text in handful]
    emotions32 = load("--top-k", "32").classify(texts)
    grouped_agent = load("--emotion-groups", "16", "--top-k", "16")
    assert grouped_agent.class_list == list(emotions.GROUP_NAMES)
    grouped = grouped_agent.classify(texts)
    for per_emotion, per_group in zip(emotions32, grouped):
        assert len(per_emotion) == 32 and len(per_group) == 16
        by_hand = {}
        for name, probability in per_emotion:
            group = emotions.group_of(name)
            by_hand[group] = by_hand.get(group, 0.0) + probability
        assert dict(per_group) == pytest.approx(by_hand, abs=1e-5)

    # scored against group labels through ParlAI's eval: ParlAI's accuracy is the hand count
    group_labels = [(emotions.group_of(label), text) for label, text in handful]
    group_data = write_parlai_format(tmp_path / "groups.txt", group_labels)
    report = EvalModel.main(
        model_file=str(tmp_path / "model"), task="fromfile:parlaiformat",
        fromfile_datapath=group_data, emotion_groups=16, datatype="valid", batchsize=3,
    )
    correct = sum(top[0][0] == gold for top, (gold, _) in zip(grouped, group_labels))
    assert report["exs"].value() == 6
    assert report["accuracy"].value() == pytest.approx(correct / 6)
    # a label that is an emotion, not a group, is refused with the classes named
    with pytest.raises(ValueError, match=r"label 'joyful' is not one of the classifier's 16"):
        EvalModel.main(
            model_file=str(tmp_path / "model"), task="fromfile:parlaiformat",
            fromfile_datapath=write_parlai_format(tmp_path / "e.txt", [("joyful", texts[0])]),
            emotion_groups=16, datatype="valid", batchsize=1,
        )
