"""MoEL (``-m empathy/moel``): modules, agent plumbing, a tiny overfit, the real CLI.

* modules: config validation, shapes and masks, gating, sparse == dense listeners (outputs
  and gradients), incremental == full decoding under beam-search reordering;
* agent: dialogue states from ParlAI's history, the Noam schedule through ``invsqrt``, label
  sets, clear errors (missing/unknown emotion, another agent's model file);
* a 16-d MoEL overfits 8 real ED examples through ParlAI's ``TrainModel``; its
  save/load round trip, beam search sparse == dense, empty and over-long inputs;
* one run of the real ``parlai`` command: train, eval (``emotion_acc``), chat from a pipe.

Everything runs on one CPU thread (the machine is shared; two threads contend badly).
"""
import json
import math
import re

import pytest
import torch
from parlai.core.message import Message

from generator_helpers import (  # noqa: F401 (fixtures)
    assert_incremental_decoding_equals_full,
    ed_handful,
    eval_agent,
    file_observations,
    make_agent,
    one_thread,
    random_batch,
)
from parlai_cli import run_parlai
from parlai_empathy.modules.emotion_base import STATE_SELF, STATE_USER
from parlai_empathy.modules.moel import MoelConfig, MoelModel, gate_listeners
from parlai_empathy.modules.transformer_layers import LayerNorm, timing_signal

TINY = dict(
    vocab_size=40, embedding_size=16, hidden_size=16, key_depth=8, value_depth=8,
    filter_size=12, num_heads=2, num_emotions=6, topk=2,
)
TINY_AGENT = [
    "-m", "empathy/moel", "--embedding-size", 16, "--hidden-size", 16, "--key-depth", 8,
    "--value-depth", 8, "--filter-size", 16, "--embedding-file", "none",
]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return MoelModel(MoelConfig(**{**TINY, **overrides})).eval()


# --- modules -----------------------------------------------------------------------------------


def test_config_is_validated():
    with pytest.raises(ValueError, match="divisible by num_heads"):
        MoelConfig(vocab_size=10, key_depth=41, num_heads=2)
    with pytest.raises(ValueError, match="topk"):
        MoelConfig(vocab_size=10, num_emotions=4, topk=5)
    with pytest.raises(ValueError, match="gating"):
        MoelConfig(vocab_size=10, gating="hard")
    assert MoelConfig(vocab_size=10).word_vector_size == 300


def test_layer_norm_and_timing_signal_follow_the_original():
    x = torch.randn(2, 3, 8)
    expected = (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + 1e-6)
    assert torch.allclose(LayerNorm(8)(x), expected, atol=1e-6)
    signal = timing_signal(5, 6)  # 3 timescales 1, 1e2, 1e4: sines then cosines
    assert signal.shape == (1, 5, 6)
    assert torch.allclose(signal[0, 3, 0], torch.tensor(math.sin(3.0)))
    assert torch.allclose(signal[0, 3, 3], torch.tensor(math.cos(3.0)))
    assert torch.allclose(signal[0, 2, 1], torch.tensor(math.sin(2 / 100.0)))
    assert torch.equal(timing_signal(2, 6, start=3), signal[:, 3:5])


def test_encoder_shapes_masks_and_padding_invariance():
    model = tiny_model()
    text, states, _ = random_batch()
    out = model.encoder(text, states)
    assert out.hidden_states.shape == (4, 10, 16)  # CLS + 9 tokens
    assert out.keep[:, 0].all() and torch.equal(out.keep[:, 1:], text != 0)
    assert out.emotion_logits.shape == out.listener_weights.shape == (4, 6)
    # an example encodes the same alone as next to longer ones (padding never leaks)
    row = 3
    length = int((text[row] != 0).sum())
    alone = model.encoder(text[row:row + 1, :length], states[row:row + 1, :length])
    assert torch.allclose(alone.hidden_states[0], out.hidden_states[row, : length + 1], atol=1e-5)
    assert torch.allclose(alone.emotion_logits, out.emotion_logits[row:row + 1], atol=1e-5)
    # dialogue states matter
    flipped = model.encoder(text, torch.where(states == STATE_USER, STATE_SELF, states))
    assert not torch.allclose(flipped.emotion_logits, out.emotion_logits)


def test_decoder_is_causal_and_shapes():
    model = tiny_model()
    text, states, labels = random_batch()
    enc = model.encoder(text, states)
    logits, preds = model.decode_forced(enc, labels)
    assert logits.shape == (4, 6, 40) and preds.shape == (4, 6)
    changed = labels.clone()
    changed[:, 3] = (changed[:, 3] + 1) % 40 + 4 * (changed[:, 3] < 3)
    logits2, _ = model.decode_forced(enc, changed)
    # decoder input is START + labels[:-1]: position t sees labels[:t]
    assert torch.allclose(logits[:, :4], logits2[:, :4], atol=1e-6)
    assert not torch.allclose(logits[:, 4:], logits2[:, 4:])


def test_gating_variants():
    logits = torch.randn(5, 6)
    top = gate_listeners(logits, "topk", 2)
    assert ((top > 0).sum(-1) == 2).all() and torch.allclose(top.sum(-1), torch.ones(5))
    assert torch.equal(top.argmax(-1), logits.argmax(-1))
    assert torch.allclose(gate_listeners(logits, "soft", 2).sum(-1), torch.ones(5))
    assert torch.allclose(gate_listeners(logits, "sigmoid", 2), torch.sigmoid(logits))
    model = tiny_model()
    text, states, _ = random_batch()
    oracle = model.encoder(text, states, torch.tensor([1, 0, 5, 1])).listener_weights
    assert torch.equal(oracle, torch.eye(6)[[1, 0, 5, 1]])


def test_sparse_listeners_equal_dense_outputs_and_gradients():
    model = tiny_model(seed=3, num_emotions=8, topk=3)
    text, states, labels = random_batch(seed=1, batch=6)
    enc = model.encoder(text, states)
    assert (enc.listener_weights > 0).any(0).sum() > 3  # examples pick different listeners
    results = {}
    for sparse in (True, False):
        model.decoder.sparse_listeners = sparse
        model.zero_grad()
        logits, _ = model.decode_forced(model.encoder(text, states), labels)
        (logits.logsumexp(-1).sum() + model.parameter_anchor()).backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        results[sparse] = logits.detach(), grads
    assert torch.allclose(results[True][0], results[False][0], atol=1e-5)
    # the same gradients, exact zeros for the listeners no example selected
    for name, grad in results[False][1].items():
        assert torch.allclose(results[True][1][name], grad, atol=1e-5), name
    unselected = int((enc.listener_weights == 0).all(0).nonzero()[0])
    assert not results[True][1][f"decoder.listeners.{unselected}.ffn.conv_in.weight"].any()


@pytest.mark.parametrize("sparse", [True, False])
def test_incremental_decoding_equals_full_under_beam_reordering(sparse):
    model = tiny_model(seed=2, num_emotions=8, topk=3, sparse_listeners=sparse)
    text, states, labels = random_batch(seed=4, batch=3)
    beam = 2
    expand = torch.arange(3).repeat_interleave(beam)
    enc = model.reorder_encoder_states(model.encoder(text, states), expand)
    assert_incremental_decoding_equals_full(model, enc, batch=3, beam=beam)


# --- embeddings --------------------------------------------------------------------------------


def test_glove_text_files_of_any_dimension(tmp_path):
    from parlai_empathy.embeddings import embedding_dimension, load_word_vectors

    path = tmp_path / "vectors.txt"
    path.write_text("3 7\nthe " + " ".join(["0.5"] * 7) + "\nsad " + " ".join(["-1"] * 7)
                    + "\nSad " + " ".join(["2"] * 7) + "\n")
    assert embedding_dimension(str(path)) == 7
    vectors = load_word_vectors(str(path), ["Sad", "THE", "sad", "__null__"])
    assert vectors.found.tolist() == [True, True, True, False]
    assert vectors.vectors[0, 0] == 2 and vectors.vectors[1, 0] == 0.5  # exact, then lower-case
    assert vectors.vectors[2, 0] == -1 and vectors.coverage == 0.75
    packaged = load_word_vectors("glove-6b-50d", ["the", "sad", "qwxzv"])
    assert packaged.dim == 50 and packaged.found.tolist() == [True, True, False]
    with pytest.raises(FileNotFoundError, match="--embedding-file"):
        load_word_vectors(str(tmp_path / "missing.txt"), ["the"])
    agent = make_agent(*TINY_AGENT[:-1], path, "-dt", "valid")
    assert agent.opt["word_vector_size"] == 7
    assert agent.model.embeddings.projection.weight.shape == (16, 7)


# --- agent plumbing ----------------------------------------------------------------------------


def test_dialogue_states_alternate_from_the_last_turn():
    agent = make_agent(*TINY_AGENT, "-dt", "valid", "--text-truncate", 1000,
                       "--inference", "greedy")  # no dictionary: 4 tokens, no beam of 5
    agent.observe(Message({"text": "i lost my job", "eval_labels": ["oh no"],
                           "emotion": "sad", "episode_done": False}))
    obs = agent.observation
    assert obs["dialogue_state_vec"].tolist() == [STATE_USER] * len(obs["text_vec"])
    agent.act()
    agent.observe(Message({"text": "yes , today", "eval_labels": ["sorry"],
                           "emotion": "sad", "episode_done": True}))
    obs = agent.observation
    vecs = agent.history.history_vecs  # [turn 1, label 1, turn 2]
    delimiter = len(agent.history.delimiter_tok)
    expected = (
        [STATE_USER] * len(vecs[0])
        + [STATE_SELF] * (delimiter + len(vecs[1]))
        + [STATE_USER] * (delimiter + len(vecs[2]))
    )
    assert obs["dialogue_state_vec"].tolist() == expected
    assert len(obs["text_vec"]) == len(expected)
    batch = agent.batchify([obs])
    assert torch.equal(batch.dialogue_states[0], torch.tensor(expected))
    assert batch.emotion_ids.tolist() == [5]  # 'sad' in MoEL's order


def test_noam_schedule_through_invsqrt():
    warmup, hidden = 10, 16
    agent = make_agent(*TINY_AGENT, "-dt", "train", "--warmup-updates", warmup)
    assert agent.opt["lr_scheduler"] == "invsqrt" and tuple(agent.opt["betas"]) == (0.9, 0.98)
    assert agent.opt["adam_eps"] == 1e-9 and agent.opt["gradient_clip"] == -1
    peak = hidden ** -0.5 * warmup ** -0.5
    for step in range(1, 31):
        lr = agent.optimizer.param_groups[0]["lr"]
        noam = hidden ** -0.5 * min(step ** -0.5, step * warmup ** -1.5)
        if step <= warmup:
            assert abs(lr - noam) <= peak / warmup, step
        else:
            assert lr == pytest.approx(noam, rel=1e-6), step
        agent.optimizer.step()  # no gradients: only keeps torch's step-order check quiet
        agent._number_training_updates = step
        agent.scheduler.step(step)


def test_emotion_label_sets():
    from parlai_empathy.emotions import LABEL_SETS, resolve_label_set

    assert resolve_label_set("auto", "empathetic_dialogues") == "ed32"
    assert resolve_label_set(None, "esconv") == "esconv"
    assert resolve_label_set("ed32", "esconv") == "ed32"
    with pytest.raises(ValueError, match="--emotion-labels"):
        resolve_label_set("auto", "esconv,empathetic_dialogues")
    esconv = LABEL_SETS["esconv"]
    assert (len(esconv.labels), esconv.field, esconv.to_id("Anxiety")) == (11, "emotion_type", 0)
    agent = make_agent(*TINY_AGENT, "-dt", "valid", "--emotion-labels", "esconv")
    assert len(agent.model.decoder.listeners) == 11


@pytest.mark.parametrize("gating", ["topk", "soft", "sigmoid"])
def test_training_step_for_each_gating(gating):
    agent = make_agent(*TINY_AGENT, "-dt", "train", "--moel-gating", gating,
                       "--learningrate", 1e-3, "--lr-scheduler", "none")
    observations = []
    for text, emotion in (("i got the job", "joyful"), ("my cat died", "devastated")):
        agent.reset()
        observations.append(agent.observe(Message(
            {"text": text, "labels": ["wow"], "emotion": emotion, "episode_done": True})))
    before = agent.model.encoder.emotion_classifier.weight.clone()
    replies = agent.batch_act(observations)
    metrics = replies[0]["metrics"]
    assert {"loss", "ppl", "emotion_loss", "emotion_acc", "emotion_acc@5"} <= metrics.keys()
    assert not torch.equal(before, agent.model.encoder.emotion_classifier.weight)


def test_oracle_schedule_decays():
    agent = make_agent(*TINY_AGENT, "-dt", "train", "--oracle-schedule", 100)
    agent._number_training_updates = 0
    assert all(agent._use_oracle() for _ in range(20))  # probability 1 at step 0
    agent._number_training_updates = 5000
    assert sum(agent._use_oracle() for _ in range(200)) <= 2  # ~1e-4 after 50 time constants
    agent.opt["oracle_schedule"] = 0
    agent._number_training_updates = 0
    assert not agent._use_oracle()


def test_oracle_routes_training_batches_only():
    # --oracle-schedule 1e9: the oracle's probability stays ~1, so every training batch uses
    # it; evaluation (loss, generation, the emotion shown) must never see the gold emotion
    agent = make_agent(*TINY_AGENT, "-dt", "train", "--oracle-schedule", 1e9,
                       "--learningrate", 1e-3, "--lr-scheduler", "none",
                       "--skip-generation", "false", "--inference", "greedy")
    seen = []
    encoder_forward = agent.model.encoder.forward

    def spy(text_vec, dialogue_states=None, oracle_emotions=None):
        seen.append(oracle_emotions)
        return encoder_forward(text_vec, dialogue_states, oracle_emotions)

    agent.model.encoder.forward = spy

    def observations(label_field):
        obs = []
        for text, emotion in (("i got the job", "joyful"), ("my cat died", "devastated")):
            agent.reset()
            obs.append(agent.observe(Message({"text": text, label_field: ["wow"],
                                              "emotion": emotion, "episode_done": True})))
        return obs

    agent.batch_act(observations("labels"))
    assert len(seen) == 1 and seen[0].tolist() == [16, 25]  # joyful, devastated
    seen.clear()
    replies = agent.batch_act(observations("eval_labels"))
    assert len(seen) >= 2 and all(oracle is None for oracle in seen)  # loss, search, emotion
    assert "emotion_acc" in replies[0]["metrics"] and replies[0]["emotion"]


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_label_smoothed_loss_equals_a_hand_computation(reduction):
    agent = make_agent(*TINY_AGENT, "-dt", "train", "--gen-loss-reduction", reduction)
    pad, vocab, smoothing = agent.NULL_IDX, 7, 0.1
    assert pad == 0 and agent.opt["label_smoothing"] == smoothing
    scores = torch.randn(2, 3, vocab, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([[4, 5, 6], [5, pad, pad]])
    expected, tokens = 0.0, 0
    for row, step in [(0, 0), (0, 1), (0, 2), (1, 0)]:
        logp = torch.log_softmax(scores[row, step].double(), -1)
        target = int(labels[row, step])
        rest = [v for v in range(vocab) if v not in (target, pad)]
        # 0.9 on the target, 0.1 spread over the rest of the vocabulary but padding
        expected += -(1 - smoothing) * logp[target] - smoothing / (vocab - 2) * logp[rest].sum()
        tokens += 1
    if reduction == "mean":
        expected /= tokens
    loss = agent._generation_loss(labels, scores, scores.argmax(-1))
    assert loss.item() == pytest.approx(float(expected), rel=1e-5)


MIME_TINY_AGENT = [
    "-m", "empathy/mime", "--embedding-size", 16, "--hidden-size", 16, "--key-depth", 8,
    "--value-depth", 8, "--filter-size", 16, "--latent-size", 8, "--embedding-file", "none",
]


@pytest.mark.parametrize("model_args", [[*TINY_AGENT, "--oracle-schedule", 0], MIME_TINY_AGENT],
                         ids=["moel", "mime"])
def test_training_loss_scores_label_positions_only_with_the_same_loss_and_gradients(
        model_args):
    # a training step projects only the real label tokens to the vocabulary (padding is
    # most of a batch's label positions); the loss, every gradient and every metric must be
    # those of the full (B, T, V) computation that evaluation still uses
    agent = make_agent(*model_args, "-dt", "train", "--learningrate", 1e-3,
                       "--lr-scheduler", "none")
    observations = []
    for text, label, emotion in (("i got the job", "wow", "joyful"),
                                 ("my cat died", "oh no , that is so sad to hear", "sad"),
                                 ("i won a prize", "that is great", "proud")):
        agent.reset()
        observations.append(agent.observe(Message({
            "text": text, "labels": [label], "emotion": emotion, "episode_done": True})))
    batch = agent.batchify(observations)
    real_tokens = int(batch.label_vec.ne(agent.NULL_IDX).sum())
    assert real_tokens < batch.label_vec.numel()  # ragged: there is padding to skip
    projected = []
    hook = agent.model.output_proj.register_forward_hook(
        lambda module, args, out: projected.append(tuple(args[0].shape)))
    agent.model.train()

    def step(flat):
        agent.model.zero_grad(set_to_none=True)
        agent._local_metrics.clear()
        torch.manual_seed(0)  # (MIME samples its latent emotion)
        loss = agent.compute_loss(batch) if flat else agent.compute_loss(
            batch, return_output=True)[0]
        loss.backward()
        grads = {n: p.grad.clone() for n, p in agent.model.named_parameters()}
        metrics = {k: [m.value() for m in v] for k, v in agent._local_metrics.items()}
        return loss.item(), grads, metrics

    flat_loss, flat_grads, flat_metrics = step(flat=True)
    full_loss, full_grads, full_metrics = step(flat=False)
    hook.remove()
    assert projected[0] == (real_tokens, 16)  # flat: the real positions only
    assert projected[1] == (*batch.label_vec.shape, 16)
    assert flat_loss == pytest.approx(full_loss, rel=1e-6)
    assert flat_grads.keys() == full_grads.keys()
    for name in full_grads:
        assert torch.allclose(flat_grads[name], full_grads[name], rtol=1e-5, atol=1e-7), name
    assert flat_metrics.keys() == full_metrics.keys() and "token_acc" in flat_metrics
    for name in full_metrics:
        assert flat_metrics[name] == pytest.approx(full_metrics[name], rel=1e-6), name


def test_adam_is_the_originals_plain_adam_fused_and_loads_an_unfused_state():
    # ParlAI turns AMSGrad on for every adam; the originals' Adam has none
    from parlai_empathy.emotion_generator import PaperAdam

    agent = make_agent(*TINY_AGENT, "-dt", "train", "--learningrate", 1e-3,
                       "--lr-scheduler", "none")
    assert isinstance(agent.optimizer, PaperAdam)
    assert agent.optimizer.param_groups[0]["fused"] is True
    assert agent.optimizer.param_groups[0]["amsgrad"] is False
    params = [p for p in agent.model.parameters() if p.requires_grad]
    plain_params = [torch.nn.Parameter(p.detach().clone()) for p in params]
    group = agent.optimizer.param_groups[0]  # (the lr is the warm-up's first)
    plain = torch.optim.Adam(plain_params, lr=group["lr"], betas=group["betas"],
                             eps=group["eps"])
    assert group["betas"] == (0.9, 0.98) and group["eps"] == 1e-9
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        for p, q in zip(params, plain_params):
            p.grad = torch.randn(p.shape, generator=generator)
            q.grad = p.grad.clone()
        agent.optimizer.step()
        plain.step()
    for p, q in zip(params, plain_params):
        assert torch.allclose(p, q, rtol=1e-6, atol=1e-7)
    # a checkpoint written by a plain Adam (older runs): its state loads, the step stays fused
    agent.init_optim(params, optim_states=plain.state_dict(), saved_optim_type="adam")
    assert [g["fused"] for g in agent.optimizer.param_groups] == [True]
    assert float(agent.optimizer.state[params[0]]["step"]) == 3.0
    for p in params:
        p.grad = torch.ones_like(p)
    agent.optimizer.step()
    assert float(agent.optimizer.state[params[0]]["step"]) == 4.0


def test_missing_and_unknown_emotions_give_clear_errors():
    agent = make_agent(*TINY_AGENT, "-dt", "train")
    agent.observe(Message({"text": "hello", "labels": ["hi"], "episode_done": True}))
    with pytest.raises(ValueError, match="gold emotion in the 'emotion' field"):
        agent.batchify([agent.observation])
    agent.reset()
    agent.observe(Message({"text": "hello", "labels": ["hi"], "emotion": "hangry",
                           "episode_done": True}))
    with pytest.raises(ValueError, match="unknown emotion 'hangry'.*valid emotions: surprised"):
        agent.batchify([agent.observation])


def test_model_file_of_another_agent_is_refused(tmp_path):
    other = make_agent("-m", "empathy/tiny_generator", "-dt", "valid")
    other.save(str(tmp_path / "tiny"))
    with pytest.raises(RuntimeError, match="saved by '-m empathy/tiny_generator'.*Load it with"):
        make_agent(*TINY_AGENT, "-mf", tmp_path / "tiny", "-dt", "valid")
    (tmp_path / "tiny.opt").unlink()  # no .opt: caught at the weights
    with pytest.raises(RuntimeError, match="does not hold a MoEL model"):
        make_agent(*TINY_AGENT, "-mf", tmp_path / "tiny", "-dt", "valid")


# --- a trained tiny model ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def overfit_model(ed_handful, tmp_path_factory):
    # what parlai.utils.testing.train_model runs (that module needs pytest-regressions)
    from parlai.scripts.train_model import TrainModel

    model_file = str(tmp_path_factory.mktemp("moel_overfit") / "model")
    valid, _ = TrainModel.main(**dict(
        model="empathy/moel", task="fromfile:parlaiformat", fromfile_datapath=ed_handful,
        model_file=model_file, dict_file=model_file + ".dict", embedding_size=16,
        hidden_size=16, key_depth=8, value_depth=8, filter_size=16, embedding_file="none",
        batchsize=4, max_train_steps=200, learningrate=5e-3, lr_scheduler="none",
        label_smoothing=0.0, oracle_schedule=0, validation_every_n_steps=1000,
        inference="greedy", beam_size=1, skip_generation=True, short_final_eval=True,
    ))
    return {"model_file": model_file, "valid": valid, "data": ed_handful}


def test_tiny_moel_overfits_real_examples(overfit_model):
    valid = overfit_model["valid"]
    assert valid["exs"].value() == 8
    assert valid["ppl"].value() < 1.5  # from ~ vocabulary size (~70) at the start
    assert valid["emotion_acc"].value() == 1.0
    assert valid["emotion_acc@5"].value() == 1.0


def test_save_load_round_trip_and_sparse_beam_equal_dense(overfit_model, tmp_path):
    first = eval_agent(overfit_model["model_file"], "--inference", "beam", "--beam-size", 3)
    batch = first.batchify(file_observations(first, overfit_model["data"]))
    first.model.eval()
    with torch.no_grad():
        scores = first.model(*first._model_input(batch), ys=batch.label_vec)[0]
    replies = first.batch_act(batch)
    assert all(r["text"] and r["emotion"] for r in replies)
    first.save(str(tmp_path / "again"))
    second = eval_agent(str(tmp_path / "again"), "--inference", "beam", "--beam-size", 3)
    second.model.eval()
    with torch.no_grad():
        scores_again = second.model(*second._model_input(batch), ys=batch.label_vec)[0]
    assert torch.equal(scores, scores_again)
    assert [r["text"] for r in second.batch_act(batch)] == [r["text"] for r in replies]
    # beam search reorders listener states: the dense computation gives the same beams
    second.model.decoder.sparse_listeners = False
    dense = second.batch_act(batch)
    assert [r["text"] for r in dense] == [r["text"] for r in replies]
    for sparse_reply, dense_reply in zip(replies, dense):
        texts = [t for t, _ in sparse_reply["beam_texts"]]
        assert [t for t, _ in dense_reply["beam_texts"]] == texts
        assert [s for _, s in dense_reply["beam_texts"]] == pytest.approx(
            [s for _, s in sparse_reply["beam_texts"]], abs=1e-4
        )


@pytest.mark.parametrize("search", [
    ["--inference", "greedy"],
    ["--inference", "beam", "--beam-size", 3, "--beam-block-ngram", 2,
     "--beam-context-block-ngram", 2],
    ["--inference", "beam", "--beam-size", 3, "--beam-selection", "rescored"],
    ["--inference", "topk", "--topk", 3],
    ["--inference", "nucleus", "--topp", 0.9],
])
def test_parlai_search_strategies(overfit_model, search):
    agent = eval_agent(overfit_model["model_file"], *search)
    replies = agent.batch_act(file_observations(agent, overfit_model["data"], n=2))
    assert all(r["text"] and r["emotion"] for r in replies)


def test_beam_defaults_to_moel_s_own_stopping_rule(overfit_model):
    from parlai.core.torch_generator_agent import BeamSearch

    from parlai_empathy.decoding import FirstTopBeamSearch

    agent = eval_agent(overfit_model["model_file"], "--inference", "beam", "--beam-size", 5)
    assert agent.opt["beam_selection"] == "first_top"
    assert type(agent._treesearch_factory("cpu")) is FirstTopBeamSearch
    agent = eval_agent(overfit_model["model_file"], "--inference", "beam",
                        "--beam-selection", "rescored")
    assert type(agent._treesearch_factory("cpu")) is BeamSearch


def test_empty_and_overlong_inputs(overfit_model):
    agent = eval_agent(overfit_model["model_file"], "--text-truncate", 24,
                        "--interactive-mode", "true")
    agent.observe(Message({"text": "", "episode_done": False}))
    reply = agent.act()  # MoEL answers from its CLS position alone
    assert reply["text"] and reply["emotion"] in agent.label_set.labels
    agent.reset()
    agent.observe(Message({"text": " ".join(["so", "sad", "today"] * 2000), "episode_done": False}))
    assert len(agent.observation["text_vec"]) == 24
    assert len(agent.observation["dialogue_state_vec"]) == 24
    reply = agent.act()
    assert reply["text"] and reply["emotion"] in agent.label_set.labels
    assert 0 < reply["emotion_prob"] <= 1


# --- the real command --------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_train_eval_and_chat(ed_datapath, tmp_path):
    model_file = tmp_path / "model"
    common = ["--datapath", ed_datapath]
    log = run_parlai(
        ["train_model", *TINY_AGENT[:-2], "-t", "empathetic_dialogues",
         "--train-experiencer-only", "true", "-mf", model_file, *common,
         "--max-train-steps", 12, "-vstep", 1000, "--short-final-eval", "true",
         "--dict-maxexs", 2000,  # the dictionary of 2,000 examples: not the full train split's
         "--validation-max-exs", 8, "--learningrate", 1e-3, "--lr-scheduler", "none",
         "--beam-size", 2, "--label-truncate", 12],
        env=ONE_THREAD,
    ).stdout
    # the default vectors: the 300-d word2vec (scripts/setup_env.sh fetches them)
    assert "dictionary tokens" in log and "found in word2vec-bolukbasi-300 (300-d)" in log
    # the papers' token space, saved with the model (the dictionary holds NLTK's "n't")
    assert json.load(open(f"{model_file}.opt"))["dict_tokenizer"] == "paper"
    assert "n't" in {line.split("\t")[0] for line in open(f"{model_file}.dict")}
    report_file = tmp_path / "report.json"
    run_parlai(
        ["eval_model", "-mf", model_file, "-t", "empathetic_dialogues", "-dt", "valid",
         "--num-examples", 8, "--batchsize", 8, "--report-filename", report_file, *common],
        env=ONE_THREAD,
    )
    report = json.load(open(report_file))["report"]
    assert report["exs"] == 8
    for metric in ("ppl", "emotion_acc", "emotion_acc@5", "emotion_loss"):
        assert metric in report, metric
    assert 0 <= report["emotion_acc"] <= report["emotion_acc@5"] <= 1
    chat = run_parlai(
        ["interactive", "-mf", model_file, *common],
        stdin="i failed my exam today\nyes it was awful\n", env=ONE_THREAD, timeout=120,
    ).stdout
    replies = [line for line in chat.splitlines() if "[Moel]:" in line]
    assert len(replies) == 2 and "CHAT DONE" in chat
    assert chat.count("[emotion]:") == 2 and chat.count("[emotion_prob]:") == 2
    for reply in replies:  # detokenized: no token spacing before punctuation
        assert not re.search(r" [.,!?]|\bn't\b| ' ", reply.split("]:", 1)[1].strip()), reply
