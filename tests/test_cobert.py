"""``-m empathy/cobert``: CoBERT's co-attention and max-pooling (shapes; padding never takes
part), the persona path, cached fixed-candidate encodings (equal to fresh ones; invalidated
by a changed candidate file or model), the 100-candidate evaluation sets, a tiny random BERT
learning to rank real ED responses, and the real ``parlai`` command end to end."""
import os
import random

import pytest
import torch

from parlai_empathy.modules.cobert import (
    Cobert,
    CobertConfig,
    co_attention,
    masked_max,
    match_score,
)
from tiny_encoder import make_tiny_encoder

D = 8


def _masks(lengths, width):
    return torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]


def _padded(lengths, width, seed, fill=0.0):
    """Random (len(lengths), width, D) tensors whose padding holds ``fill``."""
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(len(lengths), width, D, generator=g)
    mask = _masks(lengths, width)
    return values.masked_fill(~mask[..., None], fill), mask


# --- the module -----------------------------------------------------------------------------


def test_co_attention_shapes():
    x, x_mask = _padded([5, 3], 6, seed=0)
    y, y_mask = _padded([4, 2, 3], 4, seed=1)
    x_features, y_features = co_attention(x, x_mask, y, y_mask)
    assert x_features.shape == y_features.shape == (2, 3, 2 * D)
    per_example = y[None].expand(2, -1, -1, -1)
    x2, y2 = co_attention(x, x_mask, per_example, y_mask[None].expand(2, -1, -1))
    torch.testing.assert_close(x2, x_features)
    torch.testing.assert_close(y2, y_features)


@pytest.mark.parametrize("fill", [1e4, -1e4, 3.0])
def test_padding_never_takes_part(fill):
    """Scores of padded batches equal the scores of each pair alone, unpadded, whatever the
    padding holds (huge values included: padding never wins the max)."""
    x, x_mask = _padded([5, 2], 7, seed=2, fill=fill)
    y, y_mask = _padded([3, 1, 4], 6, seed=3, fill=fill)
    batched = match_score(x, x_mask, y, y_mask)
    for b, m in enumerate([5, 2]):
        for c, n in enumerate([3, 1, 4]):
            alone = match_score(x[b:b + 1, :m], x_mask[b:b + 1, :m],
                                y[c:c + 1, :n], y_mask[c:c + 1, :n])
            torch.testing.assert_close(batched[b, c], alone[0, 0], rtol=1e-5, atol=1e-5)


def test_masked_max_ignores_padding():
    values = torch.tensor([[[1.0], [5.0], [100.0]], [[-3.0], [-2.0], [50.0]]])  # (2, 3, 1)
    mask = torch.tensor([[True, True, False], [True, False, False]])[..., None]
    assert masked_max(values, mask, dim=1).view(-1).tolist() == [5.0, -3.0]


class _Embed(torch.nn.Module):
    """A stand-in encoder: token embeddings only (the module API needs ``encode`` only)."""

    def __init__(self):
        super().__init__()
        self.table = torch.nn.Embedding(50, D)

    def forward(self, input_ids, attention_mask):
        return type("Out", (), {"last_hidden_state": self.table(input_ids)})()


def test_persona_changes_scores_and_no_persona_is_the_context_only_model():
    torch.manual_seed(0)
    model = Cobert(_Embed(), CobertConfig())
    x, x_mask = _padded([4, 6], 6, seed=4)
    y, y_mask = _padded([3, 5, 2], 5, seed=5)
    p, p_mask = _padded([5, 3], 5, seed=6)
    q, q_mask = _padded([5, 3], 5, seed=7)
    context_only = model.score(x, x_mask, y, y_mask)
    torch.testing.assert_close(context_only, match_score(x, x_mask, y, y_mask))
    with_p = model.score(x, x_mask, y, y_mask, p, p_mask)
    with_q = model.score(x, x_mask, y, y_mask, q, q_mask)
    assert not torch.allclose(with_p, context_only)
    assert not torch.allclose(with_p, with_q)
    # a context with an empty persona gets exactly the context-only score
    p_mask_empty_second = p_mask.clone()
    p_mask_empty_second[1] = False
    mixed = model.score(x, x_mask, y, y_mask, p, p_mask_empty_second)
    torch.testing.assert_close(mixed[1], context_only[1])
    torch.testing.assert_close(mixed[0], with_p[0])


def test_chunked_scores_equal_one_pass():
    x, x_mask = _padded([4, 6], 6, seed=8)
    y, y_mask = _padded([3, 5, 2, 4, 1], 5, seed=9)
    whole = Cobert(_Embed(), CobertConfig(candidate_chunk=1000)).score(x, x_mask, y, y_mask)
    chunked = Cobert(_Embed(), CobertConfig(candidate_chunk=2)).score(x, x_mask, y, y_mask)
    torch.testing.assert_close(chunked, whole)


def test_config_is_validated():
    with pytest.raises(ValueError, match="scorer"):
        CobertConfig(scorer="dot")
    with pytest.raises(ValueError, match="candidate_chunk"):
        CobertConfig(candidate_chunk=0)


# --- the agent --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return make_tiny_encoder(str(tmp_path_factory.mktemp("tiny_encoder")))


def ed_pairs(ed_datapath, split="valid", count=40):
    """The first ``count`` (experiencer context, listener response) pairs of an ED split whose
    response is new, as ParlAI's ``empathetic_dialogues`` teacher reads them."""
    path = os.path.join(ed_datapath, "empatheticdialogues", "empatheticdialogues", f"{split}.csv")
    with open(path, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split(",") for line in f][1:]
    pairs, seen = [], set()
    for previous, row in zip(rows, rows[1:]):
        if previous[0] != row[0] or int(row[1]) % 2:
            continue
        text, response = (r[5].replace("_comma_", ",").strip() for r in (previous, row))
        if response in seen or any(c in text + response for c in "|\t\\"):
            continue
        seen.add(response)
        pairs.append((text, response))
        if len(pairs) == count:
            return pairs
    raise AssertionError(f"{path} has fewer than {count} usable pairs")


def write_parlai_format(path, examples):
    """``(text, response, candidates or None)`` triples as ParlAI's text format."""
    with open(path, "w", encoding="utf-8") as f:
        for text, response, candidates in examples:
            line = f"text:{text}\tlabels:{response}"
            if candidates:
                line += "\tlabel_candidates:" + "|".join(candidates)
            f.write(line + "\tepisode_done:True\n")
    return str(path)


def with_candidates(pairs, distractors, count, seed):
    """Each pair with ``count`` candidates: its response and random distractors."""
    rng = random.Random(seed)
    out = []
    for text, response in pairs:
        others = rng.sample([d for d in distractors if d != response], count - 1)
        cands = others + [response]
        rng.shuffle(cands)
        out.append((text, response, cands))
    return out


def make_agent(encoder, model_file, *extra):
    from parlai.core.agents import create_agent
    from parlai.core.params import ParlaiParser

    parser = ParlaiParser(True, True)
    opt = parser.parse_args(
        ["-m", "empathy/cobert", "--encoder-path", encoder, "-mf", str(model_file),
         "--text-truncate", "64", *extra]
    )
    return create_agent(opt)


def batch_of(agent, texts):
    from parlai.core.message import Message

    observations = []
    for text in texts:
        agent.reset()
        observations.append(agent.observe(Message({"text": text, "episode_done": True})))
    return agent.batchify(observations)


def test_ranking_sets_are_deterministic_and_hold_the_gold():
    from parlai_empathy.data.ranking import with_ranking_candidates

    items = [({"text": f"t{i}", "labels": [f"r{i % 150}"]}, i % 3 == 0) for i in range(300)]
    first = [dict(m) for m, _ in with_ranking_candidates([(dict(m), n) for m, n in items],
                                                          "ed", "test")]
    again = [dict(m) for m, _ in with_ranking_candidates([(dict(m), n) for m, n in items],
                                                          "ed", "test")]
    assert first == again
    for message in first:
        cands = message["label_candidates"]
        assert len(cands) == 100 == len(set(cands)) and message["labels"][0] in cands
    other_split = [m for m, _ in with_ranking_candidates([(dict(m), n) for m, n in items],
                                                          "ed", "valid")]
    assert other_split[0]["label_candidates"] != first[0]["label_candidates"]


def test_personas_reach_the_model(encoder, tmp_path):
    from parlai.core.message import Message

    agent = make_agent(encoder, tmp_path / "model")
    message = {"text": "my dog got a prize today", "labels": ["that is great news"],
               "personas": ["i love dogs .", "i live in ohio ."], "episode_done": True}
    obs = agent.observe(Message(message))
    decoded = agent.dict.vec2txt(obs["persona_vec"].tolist())
    assert decoded == "i love dogs. i live in ohio."
    # a persona sentence found in the gold response is dropped, as in the original
    agent.reset()
    obs = agent.observe(Message({**message, "labels": ["i love dogs . me too"]}))
    assert agent.dict.vec2txt(obs["persona_vec"].tolist()) == "i live in ohio."
    agent.reset()
    off = make_agent(encoder, tmp_path / "model", "--use-personas", "false")
    assert "persona_vec" not in off.observe(Message(message))


def test_bf16_training_autocasts_training_forward_passes_only(encoder, ed_datapath, tmp_path):
    """``--train-bf16``: training's scores come from bfloat16 matmuls (close to, not equal
    to, float32) and reach the loss as float32; in evaluation mode the same agent scores
    exactly as float32."""
    from parlai.utils.torch import padded_tensor

    pairs = ed_pairs(ed_datapath, count=6)
    agent = make_agent(encoder, tmp_path / "model", "--train-bf16", "true")
    batch = batch_of(agent, [t for t, _ in pairs])
    cands, _ = padded_tensor(agent.vectorize_fixed_candidates([r for _, r in pairs]),
                             agent.NULL_IDX)

    def scores(train_mode, bf16):
        agent.opt["train_bf16"] = bf16
        agent.model.train(train_mode)
        with torch.no_grad():
            return agent.score_candidates(batch, cands)

    fp32 = scores(True, False)
    bf16 = scores(True, True)
    assert bf16.dtype == torch.float32 and bf16.shape == fp32.shape == (6, 6)
    assert not torch.equal(bf16, fp32)
    assert (bf16 - fp32).abs().max() <= 0.05 * fp32.abs().max()
    torch.testing.assert_close(scores(False, True), scores(False, False), rtol=0, atol=0)


def _count_encodings(monkeypatch):
    from parlai_empathy.cobert import CobertAgent

    calls = []
    original = CobertAgent._make_candidate_encs

    def counting(self, vecs):
        calls.append(len(vecs))
        return original(self, vecs)

    monkeypatch.setattr(CobertAgent, "_make_candidate_encs", counting)
    return calls


def test_cached_candidate_encodings_equal_fresh_ones(encoder, ed_datapath, tmp_path,
                                                     monkeypatch):
    pairs = ed_pairs(ed_datapath, count=12)
    cands = tmp_path / "cands.txt"
    cands.write_text("".join(r + "\n" for _, r in pairs), encoding="utf-8")
    calls = _count_encodings(monkeypatch)
    fixed = ["-ecands", "fixed", "--fixed-candidates-path", str(cands)]
    first = make_agent(encoder, tmp_path / "model", *fixed)
    assert calls == [12] and os.path.isfile(tmp_path / "model.cands.cobert-encs")
    second = make_agent(encoder, tmp_path / "model", *fixed)
    assert calls == [12]  # read from the cache beside the model file
    batch = batch_of(second, [t for t, _ in pairs[:3]])
    with torch.no_grad():
        cached = second.score_candidates(batch, second.fixed_candidate_vecs,
                                         second.fixed_candidate_encs)
        fresh = second.score_candidates(batch, second.fixed_candidate_vecs)
        in_memory = first.score_candidates(batch, first.fixed_candidate_vecs,
                                           first.fixed_candidate_encs)
    assert cached.shape == (3, 12)
    torch.testing.assert_close(cached, fresh, rtol=0, atol=1e-5)
    torch.testing.assert_close(in_memory, fresh, rtol=0, atol=1e-5)


def test_changed_candidates_or_model_invalidate_the_cache(encoder, ed_datapath, tmp_path,
                                                          monkeypatch):
    pairs = ed_pairs(ed_datapath, count=12)
    cands = tmp_path / "cands.txt"
    cands.write_text("".join(r + "\n" for _, r in pairs[:6]), encoding="utf-8")
    calls = _count_encodings(monkeypatch)
    fixed = ["-ecands", "fixed", "--fixed-candidates-path", str(cands)]
    make_agent(encoder, tmp_path / "model", *fixed)
    # one candidate changed, every token count the same (its words reversed): only the
    # candidate file's content tells the cache is stale
    changed = [r for _, r in pairs[:5]] + [" ".join(reversed(pairs[5][1].split()))]
    cands.write_text("".join(r + "\n" for r in changed), encoding="utf-8")
    agent = make_agent(encoder, tmp_path / "model", *fixed)
    assert calls == [6, 6]
    batch = batch_of(agent, [pairs[0][0]])
    with torch.no_grad():
        cached = agent.score_candidates(batch, agent.fixed_candidate_vecs,
                                        agent.fixed_candidate_encs)
        fresh = agent.score_candidates(batch, agent.fixed_candidate_vecs)
    torch.testing.assert_close(cached, fresh, rtol=0, atol=1e-5)
    # another model (other weights) beside the same cache file
    other = make_tiny_encoder(str(tmp_path / "other_encoder"), seed=1)
    make_agent(other, tmp_path / "model", *fixed)
    assert calls == [6, 6, 6]
    make_agent(other, tmp_path / "model", *fixed)
    assert calls == [6, 6, 6]


def _train(opt):
    from parlai.scripts.train_model import TrainModel

    reports = TrainModel.main(**opt)
    return tuple({k: v.value() if hasattr(v, "value") else v for k, v in r.items()}
                 for r in reports)


def _evaluate(opt):
    from parlai.scripts.eval_model import EvalModel

    report = EvalModel.main(**opt)
    return {k: v.value() if hasattr(v, "value") else v for k, v in report.items()}


@pytest.mark.parametrize("bf16", [False, True])
def test_tiny_model_learns_to_rank_real_ed_responses(encoder, ed_datapath, tmp_path, bf16):
    """Eight real ED contexts, each ranking its response among itself and 9 responses of
    other ED conversations: chance before training, first after a few dozen steps (also
    with training's forward passes in bfloat16)."""
    pairs = ed_pairs(ed_datapath, count=40)
    train, distractors = pairs[:8], [r for _, r in pairs[8:]]
    base = str(tmp_path / "data")
    write_parlai_format(base + "_train.txt", [(t, r, None) for t, r in train])
    for split in ("valid", "test"):
        write_parlai_format(f"{base}_{split}.txt", with_candidates(train, distractors, 10, 0))
    common = dict(task="fromfile:parlaiformat", fromfile_datapath=base,
                  fromfile_datatype_extension=True, model="empathy/cobert",
                  encoder_path=encoder, text_truncate=64, eval_candidates="inline",
                  batchsize=8)
    before = _evaluate(dict(common, datatype="valid"))
    valid, _ = _train(dict(common, model_file=str(tmp_path / "model"), candidates="batch",
                           max_train_steps=40, learningrate=3e-3, lr_scheduler="none",
                           validation_every_n_epochs=1000, train_bf16=bf16))
    assert before["exs"] == valid["exs"] == 8
    assert before["hits@1"] <= 0.5
    assert valid["hits@1"] == 1.0 and valid["mrr"] == 1.0


def test_parlai_commands_end_to_end(encoder, ed_datapath, tmp_path):
    """``parlai train_model``, ``eval_model`` (10 inline candidates) and
    ``interactive`` with fixed candidates (their encodings cached beside the model)."""
    import re

    from parlai_cli import run_parlai

    pairs = ed_pairs(ed_datapath, count=24)
    base = str(tmp_path / "data")
    write_parlai_format(base + "_train.txt", [(t, r, None) for t, r in pairs[:8]])
    for split in ("valid", "test"):
        write_parlai_format(f"{base}_{split}.txt",
                            with_candidates(pairs[:4], [r for _, r in pairs[8:]], 10, 1))
    cands = tmp_path / "responses.txt"
    cands.write_text("".join(r + "\n" for _, r in pairs), encoding="utf-8")
    model = str(tmp_path / "model")
    task = ["-t", "fromfile:parlaiformat", "--fromfile-datapath", base,
            "--fromfile-datatype-extension", "true"]
    run_parlai(["train_model", "-m", "empathy/cobert", "--encoder-path", encoder, "-mf", model,
                *task, "-bs", "4", "--max-train-steps", "2", "--text-truncate", "64",
                "-vtim", "-1", "-veps", "-1"], timeout=300)
    assert os.path.isfile(model) and os.path.isfile(model + ".encoder/config.json")
    evaluated = run_parlai(["eval_model", "-mf", model, *task, "-dt", "test", "-ecands",
                            "inline"], timeout=300)
    assert re.search(r"hits@1\b", evaluated.stdout) and re.search(r"\bmrr\b", evaluated.stdout)
    chat = run_parlai(["interactive", "-mf", model, "-ecands", "fixed",
                       "--fixed-candidates-path", str(cands)],
                      stdin="I failed my driving test again today.\n[EXIT]\n", timeout=300)
    replies = re.findall(r"\[CoBERT\]: (.*)", chat.stdout)
    assert replies and replies[0].strip() in {r for _, r in pairs}, chat.stdout[-3000:]
    assert os.path.isfile(model + ".responses.cobert-encs")


def test_tfidf_baseline_ranks_inline_candidates(tmp_path):
    from parlai.core.message import Message

    from parlai_empathy.tfidf_ranker import TfidfRankerAgent, tfidf_order

    candidates = ["the weather is nice", "my cat died last week", "sorry about your cat dying",
                  "good luck"]
    assert tfidf_order("my cat died and I am sad", candidates)[:2] == [1, 2]
    agent = TfidfRankerAgent({})
    agent.observe(Message({"text": "your cat dying is so sad", "eval_labels": ["sorry about your cat dying"],
                           "label_candidates": candidates, "episode_done": True}))
    reply = agent.act()
    assert reply["text_candidates"][0] == "sorry about your cat dying"
    assert sorted(reply["text_candidates"]) == sorted(candidates)
    assert reply["metrics"]["mrr"].value() == 1.0
    agent.observe(Message({"text": "hello", "episode_done": True}))
    with pytest.raises(ValueError, match="label_candidates"):
        agent.act()
    # through ParlAI's evaluation loop (-m empathy/tfidf_ranker), as the recipes run it
    data = write_parlai_format(tmp_path / "eval.txt", [
        ("your cat dying is so sad", "sorry about your cat dying", candidates),
        ("what is the weather like", "the weather is nice", candidates)])
    report = _evaluate(dict(task="fromfile:parlaiformat", fromfile_datapath=data,
                            model="empathy/tfidf_ranker", datatype="valid"))
    assert report["exs"] == 2 and report["hits@1"] == 1.0 and report["mrr"] == 1.0


def test_zoo_release_ships_candidates_and_their_encodings(encoder, ed_datapath, tmp_path,
                                                          monkeypatch):
    """A packed release (fp16 weights) holds ``model.cands.txt`` and the cache of its
    encodings; loading it to chat reads that cache instead of encoding the candidates."""
    import tarfile

    from parlai.core.agents import create_agent_from_model_file
    from parlai.core.message import Message

    from parlai_empathy import zoo

    pairs = ed_pairs(ed_datapath, count=10)
    cands = tmp_path / "responses.txt"
    cands.write_text("".join(r + "\n" for _, r in pairs), encoding="utf-8")
    trained = tmp_path / "trained" / "model"
    trained.parent.mkdir()
    make_agent(encoder, trained).save(str(trained))
    archive = zoo.pack(str(trained), "cobert_test", "v1", str(tmp_path / "out"), fp16=True,
                       candidates=str(cands))
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        assert {"model", "model.opt", "model.dict", "model.cands.txt",
                "model.cands.cobert-encs"} <= names
        tar.extractall(tmp_path / "release")
    calls = _count_encodings(monkeypatch)
    agent = create_agent_from_model_file(str(tmp_path / "release" / "model"),
                                         {"interactive_mode": True})
    assert calls == [] and agent.num_fixed_candidates == 10
    agent.observe(Message({"text": "I failed my driving test again.", "episode_done": False}))
    assert agent.act()["text"] in {r for _, r in pairs}
    with pytest.raises(ValueError, match="only empathy/cobert"):
        _pack_other_model(zoo, trained, tmp_path, cands)


def _pack_other_model(zoo, trained, tmp_path, cands):
    import json
    import shutil

    other = tmp_path / "other" / "model"
    other.parent.mkdir()
    for suffix in ("", ".dict"):
        shutil.copy(str(trained) + suffix, str(other) + suffix)
    opt = json.loads(open(str(trained) + ".opt").read())
    opt["model"] = "empathy/emotion_classifier"
    (other.parent / "model.opt").write_text(json.dumps(opt))
    zoo.pack(str(other), "x", "v1", str(tmp_path / "out2"), candidates=str(cands))


def test_inline_candidates_are_encoded_once_per_evaluation_and_score_the_same(
        encoder, ed_datapath, tmp_path, monkeypatch):
    """Evaluation with inline candidates keeps each distinct candidate's encoding: a set
    reused across examples is encoded once, the scores equal encoding every row, and a
    training step (new weights) forgets them."""
    from parlai.core.message import Message
    from parlai_empathy.modules.cobert import Cobert

    pairs = ed_pairs(ed_datapath, count=16)
    examples = with_candidates(pairs[:4], [r for _, r in pairs], 10, 0)
    encoded = []
    original = Cobert.encode

    def counting(self, ids, mask):
        encoded.append(ids.size(0))
        return original(self, ids, mask)

    monkeypatch.setattr(Cobert, "encode", counting)

    def scores(agent):
        observations = []
        for text, response, cands in examples:
            agent.reset()
            observations.append(agent.observe(Message(
                {"text": text, "eval_labels": [response], "label_candidates": cands,
                 "episode_done": True})))
        batch = agent.batchify(observations)
        agent.model.eval()
        _, cand_vecs, _ = agent._build_candidates(batch, source="inline", mode="eval")
        with torch.no_grad():
            return agent.score_candidates(batch, cand_vecs), cand_vecs

    plain = make_agent(encoder, tmp_path / "model", "--inline-cache-size", "0")
    encoded.clear()
    every_row, cand_vecs = scores(plain)
    assert sum(encoded) == 4 + 40  # the contexts and every candidate row
    memo = make_agent(encoder, tmp_path / "model")
    encoded.clear()
    once, _ = scores(memo)
    distinct = {tuple(r[r != memo.NULL_IDX].tolist()) for r in cand_vecs.reshape(40, -1)}
    assert sum(encoded) == 4 + len(distinct) and len(distinct) < 40
    torch.testing.assert_close(once, every_row, rtol=0, atol=1e-5)
    encoded.clear()
    again, _ = scores(memo)
    assert sum(encoded) == 4  # all kept
    torch.testing.assert_close(again, every_row, rtol=0, atol=1e-5)
    memo.train_step(memo.batchify([]))  # an empty batch: no update, the memo is cleared
    encoded.clear()
    scores(memo)
    assert sum(encoded) == 4 + len(distinct)


def test_candidate_benchmark_runs_and_reranking_answers_as_exact_inside_its_shortlist(
        encoder, ed_datapath):
    """``benchmarks/cobert_candidates.py`` (the README's speed numbers) on a tiny encoder:
    it prints the timings, and its re-ranking check finds the same top reply as exact scoring
    exactly when exact scoring's top reply is inside the pooled dot-product shortlist."""
    import re
    import sys

    from parlai_cli import run_command

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = run_command(
        [sys.executable, os.path.join(repo, "benchmarks", "cobert_candidates.py"),
         "--encoder-path", encoder, "--candidates", "60", "--n", "2", "--n-uncached", "1",
         "--warmup", "1", "--rerank-top-k", "5", "--agreement", "8", "--threads", "1",
         "--datapath", ed_datapath], timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    out = result.stdout
    assert "60 fixed candidates, rerank top-k 5" in out
    assert re.search(r"with cached encodings: median [\d.]+ ms, p90 [\d.]+ ms over 2 replies", out)
    assert re.search(r"ratio \(re-encoding / cached\): [\d.]+x", out)
    found = re.search(r"over 8 more contexts: same top reply (\d+)/8 .*shortlist (\d+)/8; "
                      r"its shortlist rank: median \d+, max (\d+)", out)
    assert found, out[-2000:]
    same, inside, worst = (int(g) for g in found.groups())
    assert same == inside
    assert (worst < 5) == (inside == 8)


def test_training_step_benchmark_compares_bf16_with_float32(encoder, ed_datapath):
    """``benchmarks/cobert_train_step.py`` (the README's ``--train-bf16`` speed) on a tiny
    encoder and real ED batches."""
    import re
    import sys

    from parlai_cli import run_command

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = run_command(
        [sys.executable, os.path.join(repo, "benchmarks", "cobert_train_step.py"),
         "--encoder-path", encoder, "--batches", "2", "--warmup", "1", "--threads", "1",
         "--datapath", ed_datapath], timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(r"3 batches of 16 contexts and responses, \d+ tokens a batch", result.stdout)
    assert re.search(r"training step, median ms: float32 [\d.]+, --train-bf16 [\d.]+: [\d.]+x",
                     result.stdout), result.stdout[-2000:]


# --- the recipes ---------------------------------------------------------------------------------

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _recipe(name, run_dir, env):
    import sys

    from parlai_cli import run_command

    bin_dir = os.path.dirname(sys.executable)
    env = {"OMP_NUM_THREADS": "1", "PARLAI": os.path.join(bin_dir, "parlai"),
           "PYTHON": sys.executable, **env}
    proc = run_command(["bash", os.path.join(REPO, "recipes", name), str(run_dir)], env=env,
                       timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:]
    return proc.stdout


def _table_rows(path):
    """The rows of a ranking table (``parlai_empathy.ranking_table``) by model name."""
    rows = {}
    for line in open(path, encoding="utf-8"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] not in ("model",) and not cells[0].startswith("-"):
            rows[cells[0]] = cells[1:]
    return rows


@pytest.mark.slow
def test_ed_recipe_trains_releases_then_evaluates_and_tabulates(encoder, mirror, ed_datapath,
                                                                tmp_path):
    """``recipes/cobert_ed.sh`` on the real ED data with a tiny encoder: TRAIN_ONLY=1 (the
    device's way) trains and packs the release with its chat candidates and evaluates
    nothing; the full run then evaluates the rows on the 100-candidate test sets."""
    import json
    import tarfile

    from parlai_empathy.mirror import MIRROR_ENV

    run_dir = tmp_path / "run"
    env = {MIRROR_ENV: mirror, "PARLAI_DATAPATH": ed_datapath, "ENCODER_PATH": encoder,
           "MAX_TRAIN_STEPS": "2", "VALID_EXAMPLES": "4", "EVAL_EXAMPLES": "8",
           "RELEASE_VERSION": "vtest", "RELEASE_CANDIDATES": "12", "ROWS": "cobert tfidf",
           "MODEL_ARGS": "--text-truncate 64"}
    _recipe("cobert_ed.sh", run_dir, {**env, "TRAIN_ONLY": "1"})
    # trained (ParlAI's linear schedule ends the run one update before its horizon)
    assert json.load(open(run_dir / "cobert" / "model.trainstats"))["train_steps"] >= 1
    assert not list(run_dir.glob("eval_*.json")) and not (run_dir / "results.md").exists()
    archive = run_dir / "release" / "cobert_ed-vtest.tar.gz"
    with tarfile.open(archive) as tar:
        cands = tar.extractfile("model.cands.txt").read().decode().splitlines()
        names = tar.getnames()
    assert len(cands) == len(set(cands)) == 12
    assert "model.cands.cobert-encs" in names and "model.encoder/config.json" in names

    _recipe("cobert_ed.sh", run_dir, env)
    rows = _table_rows(run_dir / "results.md")
    assert set(rows) == {"CoBERT (fine-tuned)", "TF-IDF"}, rows
    for name, row in (("cobert", "CoBERT (fine-tuned)"), ("tfidf", "TF-IDF")):
        report = json.load(open(run_dir / f"eval_{name}.json"))["report"]
        assert report["exs"] >= 8 and 0 <= report["hits@1"] <= report["hits@10"] <= 1
        assert 0 < report["mrr"] <= 1
        assert rows[row][:2] == [str(report["exs"]), f"{report['hits@1']:.4f}"]


@pytest.mark.slow
def test_pec_recipe_runs_end_to_end_on_the_fixture(encoder, tmp_path):
    """``recipes/cobert_pec.sh`` on the PEC fixture (personas, both domains): the README's
    command for the real PEC numbers, with a tiny encoder and budget."""
    import json

    run_dir = tmp_path / "run"
    _recipe("cobert_pec.sh", run_dir, {
        "PEC_ROOT": os.path.join(REPO, "tests", "fixtures", "pec", "hf_pec"),
        "ENCODER_PATH": encoder, "MAX_TRAIN_STEPS": "2", "VALID_EXAMPLES": "4",
        "EVAL_EXAMPLES": "4"})
    rows = _table_rows(run_dir / "results.md")
    assert set(rows) == {"CoBERT, personas, pec:happy", "CoBERT, personas, pec:offmychest"}
    # EVAL_EXAMPLES=4 (ParlAI evaluates whole batches of 8); offmychest's test split has 3
    for domain, examples in (("happy", 8), ("offmychest", 3)):
        opt = json.load(open(run_dir / domain / "model.opt"))
        assert opt["task"] == f"pec:{domain}" and opt["encoder_path"] == encoder
        report = json.load(open(run_dir / f"eval_{domain}.json"))["report"]
        assert report["exs"] == examples and 0 <= report["hits@1"] <= report["hits@10"] <= 1
        assert rows[f"CoBERT, personas, pec:{domain}"][0] == str(examples)
