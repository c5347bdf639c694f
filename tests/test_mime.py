"""MIME (``-m empathy/mime``): modules, agent plumbing, a tiny overfit, the real CLI.

* polarity groups (ED's 13 / 19 split, ESConv's single negative group);
* modules: config validation, the mimicry switch changes exactly what it claims, the
  stochastic mixture (seeded determinism, the posterior only when given the response, the KL
  term by hand), incremental == full decoding under beam-search reordering;
* agent: training-only inputs, the KL term in the loss, the polarity shown with the emotion;
* a 16-d MIME overfits 8 real ED examples through ParlAI's ``TrainModel``; save/load;
* one run of the real ``parlai`` command: train, eval, chat from a pipe.

Everything runs on one CPU thread (the machine is shared).
"""
import json
import math
import re

import pytest
import torch
from parlai.core.message import Message
from parlai.core.params import ParlaiParser

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
from parlai_empathy import emotions
from parlai_empathy.modules.mime import MimeConfig, MimeModel, gaussian_kl

# the original's lists (declare-lab/MIME model/VAE_noEmo_posterior.py), MoEL's id order
ORIGINAL_POSITIVE = [11, 16, 6, 8, 3, 1, 28, 13, 31, 17, 24, 0, 27]
ORIGINAL_NEGATIVE = [9, 4, 2, 14, 30, 29, 25, 15, 10, 23, 19, 18, 21, 7, 20, 5, 26, 12, 22]

TINY = dict(
    vocab_size=40, embedding_size=16, hidden_size=16, key_depth=8, value_depth=8,
    filter_size=12, num_heads=2, latent_size=8,
)
TINY_AGENT = [
    "-m", "empathy/mime", "--embedding-size", 16, "--hidden-size", 16, "--key-depth", 8,
    "--value-depth", 8, "--filter-size", 16, "--latent-size", 8, "--embedding-file", "none",
]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# positive, negative, positive, negative (joyful, afraid, confident, sad)
MIXED_EMOTIONS = torch.tensor([16, 9, 11, 5])


def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return MimeModel(MimeConfig(**{**TINY, **overrides})).eval()


# --- polarity groups ---------------------------------------------------------------------------


def test_polarity_groups_cover_each_emotion_once():
    groups = emotions.polarity_groups("ed32")
    assert [name for name, _ in groups] == ["positive", "negative"]
    positive, negative = (list(ids) for _, ids in groups)
    assert positive == ORIGINAL_POSITIVE and negative == ORIGINAL_NEGATIVE
    assert sorted(positive + negative) == list(range(32))  # every emotion, exactly once
    assert [emotions.ED_EMOTIONS[i] for i in positive] == list(emotions.POSITIVE_EMOTIONS)
    assert emotions.label_polarity("ed32", "Anticipating") == "negative"  # as MIME counts it
    assert emotions.label_polarity("ed32", "caring") == "positive"
    # ESConv: all 11 types are negative feelings, one group
    (name, ids), = emotions.polarity_groups("esconv")
    assert name == "negative" and ids == tuple(range(11))
    assert emotions.label_polarity("esconv", "Pain") == "negative"
    assert MimeConfig(vocab_size=10).emotion_groups == (tuple(positive), tuple(negative))


def test_config_is_validated():
    with pytest.raises(ValueError, match="exactly once"):
        MimeConfig(vocab_size=10, emotion_groups=((0, 1), (1, 2)), num_emotions=3)
    with pytest.raises(ValueError, match="exactly once"):
        MimeConfig(vocab_size=10, emotion_groups=((0,), (1,)), num_emotions=3)
    with pytest.raises(ValueError, match="one or two"):
        MimeConfig(vocab_size=10, emotion_groups=((0,), (1,), (2,)), num_emotions=3)
    with pytest.raises(ValueError, match="posterior"):
        MimeConfig(vocab_size=10, posterior="prior")
    with pytest.raises(ValueError, match="divisible by num_heads"):
        MimeConfig(vocab_size=10, key_depth=41)


# --- modules -----------------------------------------------------------------------------------


def test_shapes_masks_and_parameter_names():
    model = tiny_model()
    text, states, labels = random_batch()
    torch.manual_seed(0)
    enc = model.encoder(text, states)
    assert enc.emotion_context.shape == (4, 10, 16) and enc.keep.shape == (4, 10)
    assert enc.emotion_logits.shape == (4, 32) and enc.kl.tolist() == [0.0] * 4
    assert enc.context_group.tolist() == [
        0 if i in ORIGINAL_POSITIVE else 1 for i in enc.emotion_logits.argmax(-1).tolist()
    ]
    scores, preds, _ = model(text, states, ys=labels)
    assert scores.shape == (4, 6, 40)
    names = {name for name, _ in model.named_parameters()}
    assert "encoder.emotion_classifier.weight" not in names  # MIME scores via E (S c)
    for expected in ("encoder.mimic_encoder.embedding_proj.weight",
                     "encoder.non_mimic_encoder.embedding_proj.weight",
                     "encoder.combine.gate.weight", "encoder.emotion_embeddings.weight",
                     "encoder.mixture.prior.mu.1.weight",
                     "encoder.mixture.posterior.1.hidden.weight"):
        assert expected in names, expected
    # the mimicking encoder reads [context (16) ; emotion vector (16)]
    assert model.encoder.mimic_encoder.embedding_proj.weight.shape == (16, 32)


def test_mimicry_switch_changes_only_the_negative_contexts():
    """Mimicry on: the context's polarity picks which encoder reads which group; off: the
    first encoder always reads the positive group. Same weights: the rows of positive
    contexts, and every emotion logit, are unchanged; the negative rows change."""
    text, states, labels = random_batch(seed=1)
    outputs = {}
    for mimicry in (True, False):
        model = tiny_model(seed=3, stochastic=False, mimicry=mimicry)
        with torch.no_grad():
            enc = model.encoder(text, states, emotion_ids=MIXED_EMOTIONS)
            scores = model(text, states, MIXED_EMOTIONS, ys=labels)[0]
        outputs[mimicry] = (model.state_dict(), enc, scores)
    (weights_on, on, scores_on), (weights_off, off, scores_off) = outputs[True], outputs[False]
    assert weights_on.keys() == weights_off.keys()
    assert all(torch.equal(weights_on[k], weights_off[k]) for k in weights_on)
    assert torch.equal(on.emotion_logits, off.emotion_logits)
    assert on.context_group.tolist() == [0, 1, 0, 1]
    positive, negative = [0, 2], [1, 3]
    assert torch.equal(on.emotion_context[positive], off.emotion_context[positive])
    assert torch.equal(scores_on[positive], scores_off[positive])
    for row in negative:
        assert not torch.allclose(on.emotion_context[row], off.emotion_context[row])
        assert not torch.allclose(scores_on[row], scores_off[row])


def test_predicted_polarity_without_gold_and_single_group():
    model = tiny_model(seed=4, stochastic=False)
    text, states, _ = random_batch(seed=2)
    predicted = model.encoder(text, states).emotion_logits.argmax(-1)
    with torch.no_grad():
        a = model.encoder(text, states)
        b = model.encoder(text, states, emotion_ids=predicted)
    assert torch.equal(a.emotion_context, b.emotion_context)
    # one group (ESConv, or --emotion-grouping false): mimicry has nothing to switch
    single = dict(num_emotions=11, emotion_groups=(tuple(range(11)),))
    on = tiny_model(seed=5, mimicry=True, stochastic=False, **single)
    off = tiny_model(seed=5, mimicry=False, stochastic=False, **single)
    ids = torch.tensor([0, 3, 7, 10])
    with torch.no_grad():
        assert torch.equal(on.encoder(text, states, ids).emotion_context,
                           off.encoder(text, states, ids).emotion_context)
    assert on.encoder(text, states, ids).context_group.tolist() == [0] * 4
    stochastic = tiny_model(seed=5, **single)  # ESConv's set-up: one latent, one KL term
    _, _, labels = random_batch(seed=2)
    assert (stochastic.encoder(text, states, ids, labels).kl > 0).all()
    assert len(stochastic.encoder.mixture.posterior) == 1


def test_stochastic_mixture_is_seeded_and_posterior_needs_the_response():
    model = tiny_model(seed=6)
    text, states, labels = random_batch(seed=3)
    calls = []
    posterior_stats = model.encoder.mixture.posterior_stats

    def spy(*args):
        calls.append(args[-1])
        return posterior_stats(*args)

    model.encoder.mixture.posterior_stats = spy
    runs = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        with torch.no_grad():
            runs.append(model.encoder(text, states))
    assert torch.equal(runs[0].emotion_context, runs[1].emotion_context)  # same seed
    assert not torch.allclose(runs[0].emotion_context, runs[2].emotion_context)  # sampled
    assert torch.equal(runs[0].emotion_logits, runs[2].emotion_logits)
    assert calls == [] and all(run.kl.abs().sum() == 0 for run in runs)  # prior only
    torch.manual_seed(0)
    trained = model.encoder(text, states, MIXED_EMOTIONS, labels)
    assert sorted(calls) == [0, 1] and (trained.kl > 0).all()


def test_kl_term_equals_a_hand_computation():
    # KL(N(1, 1) || N(0, 2)) + KL(N(0, e^-1) || N(0.5, 1)) in one 2-d latent
    mu_q, logvar_q = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, -1.0]])
    mu_p, logvar_p = torch.tensor([[0.0, 0.5]]), torch.tensor([[math.log(2.0), 0.0]])
    first = math.log(math.sqrt(2.0)) + (1.0 + 1.0) / (2 * 2.0) - 0.5
    second = math.log(1.0 / math.exp(-0.5)) + (math.exp(-1.0) + 0.25) / 2 - 0.5
    assert gaussian_kl(mu_q, logvar_q, mu_p, logvar_p).item() == pytest.approx(first + second)
    assert gaussian_kl(mu_p, logvar_p, mu_p, logvar_p).item() == 0.0
    # the encoder's per-row KL is this, summed over both groups, prior vs the posterior it ran
    model = tiny_model(seed=7)
    text, states, labels = random_batch(seed=4)
    seen = {"prior": [], "posterior": []}
    prior_stats, posterior_stats = (model.encoder.mixture.prior_stats,
                                    model.encoder.mixture.posterior_stats)
    model.encoder.mixture.prior_stats = lambda *a: seen["prior"].append(prior_stats(*a)) or \
        seen["prior"][-1]
    model.encoder.mixture.posterior_stats = lambda *a: seen["posterior"].append(
        posterior_stats(*a)) or seen["posterior"][-1]
    kl = model.encoder(text, states, MIXED_EMOTIONS, labels).kl
    expected = sum(gaussian_kl(*q, *p) for q, p in zip(seen["posterior"], seen["prior"][0]))
    assert torch.allclose(kl, expected)


def test_response_posterior_reads_the_response_and_original_does_not():
    text, states, labels = random_batch(seed=5)
    other = labels.flip(0)
    for posterior, reads in (("response", True), ("original", False)):
        model = tiny_model(seed=8, posterior=posterior)
        results = []
        for response in (labels, other):
            torch.manual_seed(0)
            with torch.no_grad():
                results.append(model.encoder(text, states, MIXED_EMOTIONS, response))
        same = torch.equal(results[0].kl, results[1].kl) and torch.equal(
            results[0].emotion_context, results[1].emotion_context)
        assert same != reads, posterior


@pytest.mark.parametrize("overrides", [{}, {"stochastic": False, "num_layers": 2}])
def test_incremental_decoding_equals_full_under_beam_reordering(overrides):
    model = tiny_model(seed=2, **overrides)
    text, states, _ = random_batch(seed=4, batch=3)
    beam = 2
    expand = torch.arange(3).repeat_interleave(beam)
    torch.manual_seed(0)
    enc = model.reorder_encoder_states(model.encoder(text, states), expand)
    assert_incremental_decoding_equals_full(model, enc, batch=3, beam=beam)
    # the encoder output travels: its rows are the expanded example's
    assert torch.equal(enc.emotion_context[1], enc.emotion_context[0])


# --- agent -------------------------------------------------------------------------------------


def _observations(agent, label_field):
    obs = []
    for text, emotion in (("i got the job", "joyful"), ("my cat died", "devastated")):
        agent.reset()
        obs.append(agent.observe(Message({"text": text, label_field: ["wow"],
                                          "emotion": emotion, "episode_done": True})))
    return obs


def test_agent_defaults_and_switches():
    agent = make_agent(*TINY_AGENT, "-dt", "valid")
    opt = agent.opt
    assert (opt["gradient_clip"], opt["batchsize"], opt["label_smoothing"]) == (2.0, 16, 0.1)
    assert (opt["beam_size"], opt["label_truncate"], opt["warmup_updates"]) == (5, 50, 8000)
    assert opt["beam_selection"] == "first_top" and opt["mimicry"] and opt["stochastic_mixture"]
    assert opt["mime_posterior"] == "original"
    assert opt["display_add_fields"] == "emotion,emotion_prob,polarity"
    assert len(agent.model.encoder.config.emotion_groups) == 2
    flat = make_agent(*TINY_AGENT, "-dt", "valid", "--emotion-grouping", "false",
                      "--stochastic-mixture", "false")
    assert flat.model.encoder.config.emotion_groups == (tuple(range(32)),)
    assert flat.model.encoder.mixture is None
    esconv = make_agent(*TINY_AGENT, "-dt", "valid", "--emotion-labels", "esconv")
    assert esconv.model.encoder.config.emotion_groups == (tuple(range(11)),)
    defaults = ParlaiParser(True, True).parse_args(["-m", "empathy/mime"])
    assert (defaults["embedding_size"], defaults["hidden_size"], defaults["num_layers"],
            defaults["num_heads"], defaults["key_depth"], defaults["filter_size"]) == (
        300, 300, 1, 2, 40, 50)


def test_training_uses_gold_polarity_and_posterior_evaluation_never():
    agent = make_agent(*TINY_AGENT, "-dt", "train", "--learningrate", 1e-3,
                       "--lr-scheduler", "none", "--skip-generation", "false",
                       "--inference", "greedy")
    seen = []
    encoder_forward = agent.model.encoder.forward

    def spy(text_vec, dialogue_states=None, emotion_ids=None, response_vec=None):
        seen.append((emotion_ids, response_vec))
        return encoder_forward(text_vec, dialogue_states, emotion_ids, response_vec)

    agent.model.encoder.forward = spy
    before = agent.model.encoder.mixture.prior.hidden.weight.clone()
    replies = agent.batch_act(_observations(agent, "labels"))
    assert len(seen) == 1 and seen[0][0].tolist() == [16, 25]  # joyful, devastated
    assert seen[0][1] is not None  # the posterior runs
    metrics = replies[0]["metrics"]
    assert {"kl", "emotion_acc", "ppl"} <= metrics.keys() and metrics["kl"].value() > 0
    assert not torch.equal(before, agent.model.encoder.mixture.prior.hidden.weight)
    seen.clear()
    replies = agent.batch_act(_observations(agent, "eval_labels"))
    assert len(seen) >= 2 and all(e is None and r is None for e, r in seen)  # loss, search..
    assert replies[0]["emotion"] and replies[0]["polarity"] == emotions.label_polarity(
        "ed32", replies[0]["emotion"])
    assert "kl" not in replies[0]["metrics"]
    seen.clear()
    agent.opt["mime_eval_gold_polarity"] = True
    agent.batch_act(_observations(agent, "eval_labels"))
    assert seen[0][0].tolist() == [16, 25] and seen[0][1] is None  # the loss only
    assert all(e is None for e, _ in seen[1:])


def test_kl_is_added_to_the_training_loss():
    agent = make_agent(*TINY_AGENT, "-dt", "train")
    batch = agent.batchify(_observations(agent, "labels"))
    agent.model.train()
    torch.manual_seed(0)
    loss, output = agent.compute_loss(batch, return_output=True)
    assert output[2].kl.shape == (2,) and (output[2].kl > 0).all()
    assert agent._local_metrics["kl"][1].value() == pytest.approx(output[2].kl[1].item())
    agent._local_metrics = {}  # what batch_act does between batches
    assert agent._extra_losses(batch, output).item() == pytest.approx(output[2].kl.sum().item())
    agent._local_metrics = {}
    torch.manual_seed(0)
    with torch.no_grad():
        again, output_again = agent.compute_loss(batch, return_output=True)
    agent._local_metrics = {}
    scores = output_again[0]
    gen = agent._generation_loss(batch.label_vec, scores, scores.argmax(-1))
    emo = agent._emotion_loss(output_again[2].emotion_logits.float(), batch.emotion_ids)
    assert again.item() == pytest.approx(
        (gen + emo + output_again[2].kl.sum()).item(), rel=1e-5)


# --- a trained tiny model ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def overfit_model(ed_handful, tmp_path_factory):
    from parlai.scripts.train_model import TrainModel

    model_file = str(tmp_path_factory.mktemp("mime_overfit") / "model")
    torch.manual_seed(0)
    valid, _ = TrainModel.main(**dict(
        model="empathy/mime", task="fromfile:parlaiformat", fromfile_datapath=ed_handful,
        model_file=model_file, dict_file=model_file + ".dict", embedding_size=16,
        hidden_size=16, key_depth=8, value_depth=8, filter_size=16, latent_size=8,
        embedding_file="none", batchsize=4, max_train_steps=200, learningrate=5e-3,
        lr_scheduler="none", label_smoothing=0.0, validation_every_n_steps=1000,
        inference="greedy", beam_size=1, skip_generation=True, short_final_eval=True,
    ))
    return {"model_file": model_file, "valid": valid, "data": ed_handful}


def test_tiny_mime_overfits_real_examples(overfit_model):
    valid = overfit_model["valid"]
    assert valid["exs"].value() == 8
    assert valid["ppl"].value() < 1.5  # from ~ vocabulary size (~70) at the start
    assert valid["emotion_acc"].value() == 1.0


def test_save_load_round_trip(overfit_model, tmp_path):
    first = eval_agent(overfit_model["model_file"], "--inference", "beam", "--beam-size", 3)
    batch = first.batchify(file_observations(first, overfit_model["data"]))
    first.model.eval()
    torch.manual_seed(0)
    with torch.no_grad():
        scores = first.model(*first._model_input(batch), ys=batch.label_vec)[0]
    torch.manual_seed(0)
    replies = first.batch_act(batch)
    assert all(r["text"] and r["emotion"] and r["polarity"] in ("positive", "negative")
               for r in replies)
    first.save(str(tmp_path / "again"))
    second = eval_agent(str(tmp_path / "again"), "--inference", "beam", "--beam-size", 3)
    second.model.eval()
    torch.manual_seed(0)
    with torch.no_grad():
        scores_again = second.model(*second._model_input(batch), ys=batch.label_vec)[0]
    assert torch.equal(scores, scores_again)
    torch.manual_seed(0)
    assert [r["text"] for r in second.batch_act(batch)] == [r["text"] for r in replies]
    with pytest.raises(RuntimeError, match="does not hold a MoEL model"):  # nor MoEL load it
        eval_agent(str(tmp_path / "again"), "-m", "empathy/moel")


@pytest.mark.parametrize("search", [
    ["--inference", "greedy"],  # the original's decoder_greedy
    ["--inference", "topk", "--topk", 3],  # its decoder_topk
    ["--inference", "beam", "--beam-size", 3, "--beam-selection", "rescored"],
])
def test_parlai_search_strategies(overfit_model, search):
    agent = eval_agent(overfit_model["model_file"], *search)
    replies = agent.batch_act(file_observations(agent, overfit_model["data"], n=2))
    assert all(r["text"] and r["emotion"] and r["polarity"] for r in replies)


# --- the real command --------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_train_eval_and_chat(ed_datapath, tmp_path):
    model_file = tmp_path / "model"
    common = ["--datapath", ed_datapath]
    run_parlai(
        ["train_model", *TINY_AGENT[:-2], "-t", "empathetic_dialogues",
         "--train-experiencer-only", "true", "-mf", model_file, *common,
         "--max-train-steps", 8, "-vstep", 1000, "--short-final-eval", "true",
         "--dict-maxexs", 2000,  # the dictionary of 2,000 examples: not the full train split's
         "--validation-max-exs", 8, "--learningrate", 1e-3, "--lr-scheduler", "none",
         "--beam-size", 2, "--label-truncate", 12],
        env=ONE_THREAD,
    )
    opt = json.load(open(f"{model_file}.opt"))
    assert opt["model"] == "empathy/mime" and opt["stochastic_mixture"] is True
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
    chat = run_parlai(
        ["interactive", "-mf", model_file, *common],
        stdin="i failed my exam today\nyes it was awful\n", env=ONE_THREAD, timeout=120,
    ).stdout
    replies = [line for line in chat.splitlines() if "[Mime]:" in line]
    assert len(replies) == 2 and "CHAT DONE" in chat
    assert chat.count("[emotion]:") == 2 and chat.count("[emotion_prob]:") == 2
    polarities = re.findall(r"\[polarity\]: (\w+)", chat)
    assert len(polarities) == 2 and set(polarities) <= {"positive", "negative"}
