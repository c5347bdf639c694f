"""Persona-aware MoEL (``-m empathy/persona_moel``) and the 16 emotion groups
(``--emotion-groups 16``), on the PEC fixture (zipped into a mirror as in test_pec) with a tiny
sentence encoder (tests/tiny_encoder.py).

* 16 groups: each of the 32 ED emotions maps to exactly one group; MoEL gets 16 listeners;
* modules: different personas change the logits, padded persona sentences change nothing,
  the two attention orders run in the order they claim, incremental == full decoding under
  beam reordering (the persona encoding travels in the encoder state);
* agent: ``--persona none`` is MoEL bit for bit with MoEL's weights; a persona mode on a task
  without personas is refused; the sentence-vector cache;
* a tiny persona-aware MoEL overfits the fixture's training conversations; save/load round
  trip; the real ``parlai`` command end to end; ``recipes/persona_moel_pec.sh`` end to end.
"""
import collections
import json
import os
import sys

import pytest
import torch
from parlai.core.message import Message

from generator_helpers import (  # noqa: F401 (fixture)
    assert_incremental_decoding_equals_full,
    make_agent,
    one_thread,
    random_batch,
)
from parlai_cli import run_command, run_parlai
from parlai_empathy import emotions
from parlai_empathy.data import pec
from parlai_empathy.mirror import MIRROR_ENV
from parlai_empathy.modules.persona_moel import PersonaMoelConfig, PersonaMoelModel
from test_pec import make_teacher, zip_fixture
from tiny_encoder import make_tiny_encoder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
TINY = dict(
    vocab_size=40, embedding_size=16, hidden_size=16, key_depth=8, value_depth=8,
    filter_size=12, num_heads=2, num_emotions=6, topk=2, persona_vector_size=10,
)
SIZES = ["--embedding-size", 16, "--hidden-size", 16, "--key-depth", 8, "--value-depth", 8,
         "--filter-size", 16, "--embedding-file", "none"]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return PersonaMoelModel(PersonaMoelConfig(**{**TINY, **overrides})).eval()


def personas(seed=0, batch=4, sentences=3, dim=10):
    """Persona vectors (B, P, dim): row 0 all sentences, row 1 one, row 2 none, others all."""
    generator = torch.Generator().manual_seed(seed)
    vectors = torch.randn(batch, sentences, dim, generator=generator)
    keep = torch.ones(batch, sentences, dtype=torch.bool)
    keep[1, 1:] = False
    keep[2, :] = False
    return vectors, keep


# --- 16 emotion groups -------------------------------------------------------------------------


def test_sixteen_groups_cover_each_of_the_32_emotions_once():
    ed16 = emotions.LABEL_SETS["ed16"]
    assert ed16.field == "emotion" and ed16.labels == emotions.GROUP_NAMES
    group_ids = {emotion: ed16.to_id(emotion) for emotion in emotions.ED_EMOTIONS}
    assert len(group_ids) == 32 and set(group_ids.values()) == set(range(16))
    for group_id, group in enumerate(emotions.GROUP_NAMES):
        members = {e for e, g in group_ids.items() if g == group_id}
        assert members == set(emotions.group_members(group))
        assert ed16.to_id(group) == group_id  # a group name is its own label
    counts = collections.Counter(m for _, ms in emotions.EMOTION_GROUPS for m in ms)
    assert set(counts) == set(emotions.ED_EMOTIONS) and set(counts.values()) == {1}
    assert ed16.to_id(" Furious ") == emotions.group_id("anger")
    # polarity groups (MIME) partition the 16 groups
    positive, negative = (ids for _, ids in emotions.polarity_groups("ed16"))
    assert sorted(positive + negative) == list(range(16))
    assert emotions.group_id("anticipation") in negative  # 2 of its 3 members are negative


def test_emotion_groups_option_resolves_the_label_set():
    assert emotions.resolve_label_set("auto", "empathetic_dialogues", 16) == "ed16"
    assert emotions.resolve_label_set("auto", "pec", 16) == "ed16"
    assert emotions.resolve_label_set("auto", "pec") == "ed32"
    with pytest.raises(ValueError, match="--emotion-groups 16.*esconv"):
        emotions.resolve_label_set("auto", "esconv", 16)
    agent = make_agent("-m", "empathy/moel", *SIZES, "-dt", "valid", "--emotion-groups", 16)
    assert agent.opt["emotion_labels"] == "ed16"
    assert len(agent.model.decoder.listeners) == 16
    assert agent.model.decoder.shared_listener is not None
    ids = agent._emotion_ids([Message({"emotion": "furious", "labels": ["x"]}),
                              Message({"emotion": "Content", "labels": ["x"]})], True)
    assert ids.tolist() == [emotions.group_id("anger"), emotions.group_id("gratitude")]


# --- modules -----------------------------------------------------------------------------------


def test_persona_changes_the_logits_and_padded_sentences_change_nothing():
    model = tiny_model()
    text, states, labels = random_batch(seed=1)
    vectors, keep = personas()
    with torch.no_grad():
        scores = model(text, states, vectors, keep, ys=labels)[0]
        other = vectors.clone()
        other[0, 1] += 1.0  # a real sentence of row 0
        changed = model(text, states, other, keep, ys=labels)[0]
        padded = vectors.clone()
        padded[1, 1:] = 100.0  # row 1's padded sentences
        padded[2] = -100.0  # row 2 has none
        same = model(text, states, padded, keep, ys=labels)[0]
        narrower = model(text[1:2], states[1:2], vectors[1:2, :1], keep[1:2, :1],
                         ys=labels[1:2])[0]
    assert torch.isfinite(scores).all()  # row 2 (no sentence) attends to the null slot
    assert (changed[0] - scores[0]).abs().max() > 1e-3
    assert torch.equal(changed[1:], scores[1:])
    assert torch.equal(same, scores)
    assert torch.allclose(narrower[0], scores[1], atol=1e-5)


def test_persona_encoding_does_not_depend_on_sentence_order():
    model = tiny_model(seed=3)
    text, states, labels = random_batch(seed=2)
    vectors, keep = personas(seed=5)
    keep[:] = True
    with torch.no_grad():
        scores = model(text, states, vectors, keep, ys=labels)[0]
        shuffled = model(text, states, vectors[:, [2, 0, 1]], keep, ys=labels)[0]
    assert torch.allclose(scores, shuffled, atol=1e-5)


@pytest.mark.parametrize("order", ["context_first", "persona_first"])
def test_attention_order_is_as_claimed(order):
    model = tiny_model(persona_order=order)
    calls = []
    layer = model.decoder.meta_listener[0]
    layer.cross_attention.register_forward_hook(lambda *_: calls.append("context"))
    layer.persona_attention.register_forward_hook(lambda *_: calls.append("persona"))
    text, states, labels = random_batch(seed=1)
    vectors, keep = personas()
    with torch.no_grad():
        scores = model(text, states, vectors, keep, ys=labels)[0]
    expected = ["context", "persona"] if order == "context_first" else ["persona", "context"]
    assert calls == expected
    # the same weights in the other order give other outputs
    other = "persona_first" if order == "context_first" else "context_first"
    swapped = tiny_model(persona_order=other)
    swapped.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert (swapped(text, states, vectors, keep, ys=labels)[0] - scores).abs().max() > 1e-4


@pytest.mark.parametrize("sparse", [True, False])
def test_incremental_decoding_equals_full_under_beam_reordering(sparse):
    model = tiny_model(seed=2, num_emotions=8, topk=3, sparse_listeners=sparse)
    text, states, _ = random_batch(seed=4, batch=3)
    vectors, keep = personas(seed=1, batch=3)
    beam = 2
    expand = torch.arange(3).repeat_interleave(beam)
    enc = model.reorder_encoder_states(model.encoder(text, states, vectors, keep), expand)
    assert enc.persona_states.shape[0] == 3 * beam
    assert_incremental_decoding_equals_full(model, enc, batch=3, beam=beam)


def test_config_is_validated():
    with pytest.raises(ValueError, match="persona_order"):
        PersonaMoelConfig(**{**TINY, "persona_order": "both"})
    with pytest.raises(ValueError, match="persona_vector_size"):
        PersonaMoelConfig(**{**TINY, "persona_vector_size": 0})


# --- the agent on the PEC fixture --------------------------------------------------------------


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    """The fixture mirror, a built datapath, a tiny sentence encoder and an emotion file."""
    root = tmp_path_factory.mktemp("persona_moel")
    mirror = str(root / "mirror")
    zip_fixture(mirror)
    datapath = str(root / "data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(MIRROR_ENV, mirror)
        pec.build({"datapath": datapath})
    encoder = make_tiny_encoder(str(root / "encoder"))
    records = []
    for domain in pec.DOMAINS:
        for split in pec.SPLITS:
            path = os.path.join(datapath, "pec", "hf_pec", domain, f"{split}.txt")
            for conversation in pec.read_conversations(path, domain, split):
                emotion = emotions.ED_EMOTIONS[(7 * conversation.index) % 32]
                records.append({"domain": domain, "split": split,
                                "index": conversation.index, "emotion": emotion})
    emotion_file = str(root / "emotions.jsonl")
    with open(emotion_file, "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(MIRROR_ENV, mirror)
        yield {"root": root, "mirror": mirror, "datapath": datapath, "encoder": encoder,
               "emotion_file": emotion_file, "cache": str(root / "cache")}


def pec_args(setting, persona=True):
    task = ["-t", "pec", "--datapath", setting["datapath"], "--pec-emotion-file",
            setting["emotion_file"]]
    if not persona:
        return task
    return task + ["--persona-encoder-path", setting["encoder"], "--persona-cache-dir",
                   setting["cache"]]


def pec_observations(agent, setting, n=4, datatype="train:evalmode"):
    teacher = make_teacher("pec", datatype, setting["datapath"], "--pec-emotion-file",
                           setting["emotion_file"])
    observations = []
    for _ in range(n):
        message = Message(teacher.act())
        if "labels" in message:
            message.force_set("eval_labels", message.pop("labels"))
        agent.reset()
        observations.append(agent.observe(message))
    return observations


@pytest.fixture(scope="module")
def overfit_model(setting):
    from parlai.scripts.eval_model import EvalModel
    from parlai.scripts.train_model import TrainModel

    model_file = str(setting["root"] / "overfit" / "model")
    common = dict(task="pec", datapath=setting["datapath"],
                  pec_emotion_file=setting["emotion_file"])
    TrainModel.main(**common, **dict(
        model="empathy/persona_moel", model_file=model_file, emotion_groups=16,
        persona_encoder_path=setting["encoder"], persona_cache_dir=setting["cache"],
        embedding_size=16, hidden_size=16, key_depth=8, value_depth=8, filter_size=16,
        embedding_file="none", batchsize=5, max_train_steps=200, learningrate=5e-3,
        lr_scheduler="none", label_smoothing=0.0, oracle_schedule=0,
        validation_every_n_steps=1000, validation_max_exs=5, skip_generation=True,
        short_final_eval=True, inference="greedy", beam_size=1,
    ))
    train = EvalModel.main(**common, model_file=model_file, datatype="train:evalmode",
                              skip_generation=True, batchsize=5)
    return {"model_file": model_file, "train": train}


def test_tiny_persona_moel_overfits_the_fixture(overfit_model):
    train = overfit_model["train"]
    assert train["exs"].value() == 6 + 4  # happy + offmychest training conversations
    assert train["ppl"].value() < 1.5
    assert train["emotion_acc"].value() == 1.0


def _eval_agent(model_file, setting, *args, persona=True):
    return make_agent("-mf", model_file, "-dt", "valid", "--skip-generation", "false",
                      *pec_args(setting, persona), *args)


def test_save_load_round_trip_and_beam_reordering(overfit_model, setting, tmp_path):
    first = _eval_agent(overfit_model["model_file"], setting, "--inference", "beam",
                        "--beam-size", 3)
    assert first.opt["emotion_labels"] == "ed16" and first.opt["persona"] == "sentences"
    batch = first.batchify(pec_observations(first, setting))
    assert batch.persona_vectors.shape[:2] == batch.persona_keep.shape
    first.model.eval()
    with torch.no_grad():
        scores = first.model(*first._model_input(batch), ys=batch.label_vec)[0]
        # another speaker's persona changes the scores
        rolled = (batch.text_vec, batch.dialogue_states, batch.persona_vectors.roll(1, 0),
                  batch.persona_keep.roll(1, 0))
        assert (first.model(*rolled, ys=batch.label_vec)[0] - scores).abs().max() > 1e-3
    replies = first.batch_act(batch)
    assert all(r["text"] and r["emotion"] in emotions.GROUP_NAMES for r in replies)
    first.save(str(tmp_path / "again"))
    second = _eval_agent(str(tmp_path / "again"), setting, "--inference", "beam",
                         "--beam-size", 3)
    second.model.eval()
    with torch.no_grad():
        again = second.model(*second._model_input(batch), ys=batch.label_vec)[0]
    assert torch.equal(scores, again)
    assert [r["text"] for r in second.batch_act(batch)] == [r["text"] for r in replies]
    # beam search reorders the persona encoding with the listener states: dense == sparse
    second.model.decoder.sparse_listeners = False
    dense = second.batch_act(batch)
    for sparse_reply, dense_reply in zip(replies, dense):
        assert [t for t, _ in dense_reply["beam_texts"]] == [
            t for t, _ in sparse_reply["beam_texts"]]


def test_sentence_vector_cache_is_content_keyed_and_checked(overfit_model, setting, tmp_path):
    from parlai_empathy.persona_vectors import PersonaCacheError, SentenceVectors

    files = os.listdir(setting["cache"])
    assert len(files) == 1 and files[0].startswith("sentence-vectors-")
    cached = SentenceVectors(setting["encoder"], setting["cache"])
    assert len(cached) > 0  # read back from the file
    fresh = SentenceVectors(setting["encoder"], None)
    sentence = "i love hiking with my dogs ."
    assert torch.allclose(cached.encode([sentence]), fresh.encode([sentence]), atol=1e-6)
    # another encoder never reads these vectors: its file name differs
    other = make_tiny_encoder(str(tmp_path / "other_encoder"), seed=1)
    assert SentenceVectors(other, setting["cache"]).cache_file != cached.cache_file
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / os.path.basename(cached.cache_file)).write_bytes(b"not a cache")
    with pytest.raises(PersonaCacheError, match=str(broken)):
        SentenceVectors(setting["encoder"], str(broken))


def test_persona_none_is_moel_bit_for_bit(overfit_model, setting, tmp_path):
    moel_file = str(tmp_path / "moel")
    moel = make_agent("-m", "empathy/moel", *SIZES, "--emotion-groups", 16, "-dt", "train",
                      "-df", overfit_model["model_file"] + ".dict", "-mf", moel_file)
    moel.save(moel_file)  # random weights: every token of the vocabulary is possible
    search = ["--inference", "beam", "--beam-size", 3, "--label-truncate", 10]
    moel = _eval_agent(moel_file, setting, *search, persona=False)
    none = make_agent("-m", "empathy/persona_moel", "--persona", "none", "-mf", moel_file,
                      "-dt", "valid", "--skip-generation", "false", *pec_args(setting), *search)
    assert type(none.model) is type(moel.model) and none.sentence_vectors is None
    observations = pec_observations(moel, setting)
    batch = moel.batchify(observations)
    for agent in (moel, none):
        agent.model.eval()
    with torch.no_grad():
        expected = moel.model(*moel._model_input(batch), ys=batch.label_vec)[0]
        got = none.model(*none._model_input(none.batchify(observations)),
                         ys=batch.label_vec)[0]
    assert torch.equal(expected, got)
    replies, none_replies = moel.batch_act(batch), none.batch_act(batch)
    assert [r["beam_texts"] for r in none_replies] == [r["beam_texts"] for r in replies]


@pytest.mark.parametrize("task", ["empathetic_dialogues", "esconv"])
def test_persona_mode_on_a_task_without_personas_is_refused(task):
    with pytest.raises(ValueError, match=f"-t {task} has none.*--persona none"):
        make_agent("-m", "empathy/persona_moel", *SIZES, "-t", task, "-dt", "valid")


def test_example_without_personas_names_the_field(setting):
    agent = make_agent("-m", "empathy/persona_moel", *SIZES, "-dt", "train",
                       "--persona-encoder-path", setting["encoder"], "--persona-cache-dir", "")
    agent.observe(Message({"text": "hello there", "labels": ["hi"], "emotion": "joyful",
                           "episode_done": True, "id": "somefile"}))
    with pytest.raises(ValueError, match="'personas' field.*'somefile'.*--persona none"):
        agent.act()


# --- the real command and the recipe -----------------------------------------------------------


@pytest.mark.slow
def test_cli_train_eval_and_chat(setting, tmp_path):
    model_file = tmp_path / "model"
    env = {**ONE_THREAD, MIRROR_ENV: setting["mirror"]}
    run_parlai(
        ["train_model", "-m", "empathy/persona_moel", *SIZES, *pec_args(setting),
         "--emotion-groups", 16, "--persona", "single", "--persona-attention-order",
         "persona_first", "-mf", model_file, "--max-train-steps", 4, "-vstep", 1000,
         "--short-final-eval", "true", "--validation-max-exs", 4, "--skip-generation", "true"],
        env=env,
    )
    report_file = tmp_path / "report.json"
    run_parlai(
        ["eval_model", "-mf", model_file, *pec_args(setting), "-dt", "test", "--num-examples",
         4, "--batchsize", 4, "--skip-generation", "false", "--label-truncate", 8,
         "--report-filename", report_file],
        env=env,
    )
    report = json.load(open(report_file))["report"]
    assert report["exs"] == 4
    for metric in ("ppl", "emotion_acc", "mbleu", "vader_delta", "dist1"):
        assert metric in report, metric
    opt = json.load(open(f"{model_file}.opt"))
    assert (opt["persona"], opt["persona_attention_order"], opt["emotion_labels"]) == (
        "single", "persona_first", "ed16")
    chat = run_parlai(["interactive", "-mf", model_file, "--label-truncate", 8],
                      stdin="i got a puppy today\n", env=env, timeout=120).stdout
    assert chat.count("[emotion]:") == 1 and "CHAT DONE" in chat


@pytest.mark.slow
def test_recipe_runs_end_to_end_on_the_fixture(setting, tmp_path):
    from parlai.core.agents import create_agent
    from parlai.core.params import ParlaiParser

    classifier = str(tmp_path / "classifier" / "model")
    os.makedirs(os.path.dirname(classifier))
    opt = ParlaiParser(True, True).parse_args(
        ["-m", "empathy/emotion_classifier", "--encoder-path", setting["encoder"], "-mf",
         classifier, "--label-set", "ed32"])
    create_agent(opt).save(classifier)
    run_dir = tmp_path / "run"
    sizes = " ".join(map(str, SIZES)) + " --label-truncate 8 --validation-max-exs 4"
    proc = run_command(
        ["bash", os.path.join(REPO, "recipes", "persona_moel_pec.sh"), run_dir],
        env={**ONE_THREAD, MIRROR_ENV: setting["mirror"], "CLASSIFIER": classifier,
             "DATAPATH": str(tmp_path / "data"), "MAX_TRAIN_STEPS": "2", "VSTEP": "1000",
             "MODEL_ARGS": sizes, "EVAL_ARGS": "--num-examples 4", "EVAL_BATCHSIZE": "4",
             "LABEL_BATCHSIZE": "16", "PERSONA_ARGS": "--persona-encoder-path "
             + setting["encoder"], "PARLAI": os.path.join(BIN, "parlai"),
             "PYTHON": sys.executable},
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    labelled = [json.loads(line) for line in open(run_dir / "emotions.jsonl")]
    # the filtered conversations (test_pec.FILTERED): 2 train, 44 valid, 42 test
    assert len(labelled) == 2 + 44 + 42
    table = open(run_dir / "seed_table.md").read()
    assert "| persona-aware MoEL (ours) |" in table and "| MoEL (ours) |" in table
    assert "| ModMoEL + persona on PEC_16 (seed paper) | 0.233 | 2.17 beam / 2.11 greedy |" in table
    for model in ("persona_moel", "moel"):
        for inference in ("beam", "greedy"):
            report = json.load(open(run_dir / "eval" / f"{model}_{inference}.json"))["report"]
            assert report["exs"] == 4 and "emotion_acc" in report and "mbleu" in report
