"""The papers' tokenizer as a ParlAI dictionary, and replies detokenized before scoring/display.

The bug these guard against: ParlAI's ``re`` dictionary gives ``i ' m sorry to hear that .``;
scored as a sentence, ``i ' m`` never met the references' ``i am`` (the contraction table did
not fire), which cost the MoEL release a third of its BLEU.
"""
import json

import pytest
import torch
from parlai.core.agents import create_agent
from parlai.core.dict import DictionaryAgent
from parlai.core.params import ParlaiParser

from parlai_cli import run_command, run_parlai
from parlai_empathy.dictionary import (
    DETOKENIZABLE,
    EmpathyDictionaryAgent,
    detokenize,
    display_case,
    readable,
)
from parlai_empathy.metrics import generation_metrics, paper_tokenize

# real ED listener turns (train split), with contractions, commas, ellipses, numbers
SENTENCES = [
    "I'm so sorry to hear that. Did you find out what happened?",
    "That's awesome! I'd be excited too, it's a big deal.",
    "Oh no... you shouldn't have to deal with that, it isn't fair.",
    "Wow, $10,000 is a lot of money. What're you going to do with it?",
    "I've been there. My well-known trick is to take a walk at 3:30.",
]


@pytest.mark.parametrize("sentence", SENTENCES)
def test_re_tokens_become_the_sentence_again(sentence):
    tokens = " ".join(DictionaryAgent.re_tokenize(sentence.lower()))
    text = readable(tokens, "re", lowercased=True)
    # the words the papers score are the sentence's own
    assert paper_tokenize(text) == paper_tokenize(sentence)
    assert " ' " not in text and text[0].isupper()


@pytest.mark.parametrize("sentence", SENTENCES)
def test_paper_tokens_round_trip(sentence):
    tokens = EmpathyDictionaryAgent.paper_tokenize(sentence)
    assert tokens == paper_tokenize(sentence)
    text = detokenize(" ".join(tokens), "paper")
    assert paper_tokenize(text) == tokens
    assert " ." not in text and " ," not in text


@pytest.mark.parametrize("tokenizer", ["re", "paper", "nltk"])
def test_generated_runs_of_one_mark_attach_to_the_word(tokenizer):
    """An untrained generator's ". ." or a trained one's "that . . . ." (seen in MoEL v2's ED
    test replies): one run of marks, attached like a single mark, never " .." or ". ."."""
    assert detokenize("you . you . . you does . .", tokenizer) == "you. you.. you does.."
    assert detokenize("sorry to hear that . . . . i am", tokenizer) == "sorry to hear that.... i am"
    assert detokenize("really ? ! ok", tokenizer) == "really?! ok"


def test_each_tokenizer_of_parlai_is_handled():
    assert detokenize("i ' m fine , thanks !", "re") == "i'm fine, thanks!"
    assert detokenize("i'm fine , thanks !", "split") == "i'm fine, thanks!"
    assert detokenize("i ' m fine , thanks !", "bpe") == "i'm fine, thanks!"  # re-split, then BPE
    assert detokenize("i should n't , really .", "nltk") == "i shouldn't, really."
    assert detokenize("i should n't , really .", "paper") == "i shouldn't, really."
    for already_text in ("space", "gpt2", "bytelevelbpe"):
        assert detokenize("i'm fine , thanks!", already_text) == "i'm fine , thanks!"
    with pytest.raises(ValueError, match="no detokenizer for --dict-tokenizer 'morse'"):
        detokenize("x", "morse")
    assert set(DETOKENIZABLE) >= {"re", "split", "bpe", "nltk", "paper", "space", "gpt2"}


def test_display_case():
    assert display_case("i think so. i'm sure! and you?") == "I think so. I'm sure! And you?"
    assert display_case("it is mine") == "It is mine"  # "i" inside words untouched


def test_scores_of_a_re_tokenized_reply_equal_those_of_its_sentence():
    reference = "I am so sorry to hear that. Did you find out what happened?"
    raw = " ".join(DictionaryAgent.re_tokenize(SENTENCES[0].lower()))  # what vec2txt gives
    fixed = generation_metrics([readable(raw, "re", True)], [reference])
    clean = generation_metrics([SENTENCES[0]], [reference])
    broken = generation_metrics([raw], [reference])
    for name in ("mbleu", "bleu4", "rougeL", "dist1", "dist2", "resp_len"):
        assert fixed[name].value() == pytest.approx(clean[name].value()), name
    assert fixed["mbleu"].value() == pytest.approx(100.0)  # "i'm" -> "i am", as the reference
    # the old scoring: "i ' m" stays three tokens and misses every n-gram with "i am"
    assert paper_tokenize(raw)[:4] == ["i", "'", "m", "so"]
    assert broken["mbleu"].value() < fixed["mbleu"].value()


def test_file_scorer_detokenizes_parlai_tokens(tmp_path):
    hyp, ref = tmp_path / "hyp.txt", tmp_path / "ref.txt"
    raw = [" ".join(DictionaryAgent.re_tokenize(s.lower())) for s in SENTENCES]
    hyp.write_text("\n".join(raw) + "\n")
    ref.write_text("\n".join(SENTENCES) + "\n")
    out = tmp_path / "scores.json"
    log = run_parlai(["empathy_score", "--hyp", hyp, "--ref", ref, "--detokenize", "re",
                      "--json", out]).stdout
    assert "detokenized from 're' tokens" in log
    scores = json.load(open(out))
    assert scores["detokenized_from"] == "re"
    assert scores["scores"]["mbleu"] == pytest.approx(100.0)
    plain = run_parlai(["empathy_score", "--hyp", hyp, "--ref", ref, "--json", out]).stdout
    assert "detokenized" not in plain and json.load(open(out))["scores"]["mbleu"] < 100.0


def _agent(*args):
    return create_agent(ParlaiParser(True, True).parse_args([str(a) for a in args]))


def test_generator_replies_are_detokenized_by_their_dictionary():
    # tiny_generator keeps ParlAI's 're' dictionary: its _v2t is what chat and metrics see
    agent = _agent("-m", "empathy/tiny_generator", "-dt", "valid")
    assert agent.dict.tokenizer == "re"
    for token in ["i", "'", "m", "sorry", "to", "hear", "that", "."]:
        agent.dict.add_token(token)
    vec = agent.dict.txt2vec("i ' m sorry to hear that .") + [agent.END_IDX, 7, 7]
    assert agent._v2t(torch.LongTensor(vec)) == "I'm sorry to hear that."


def test_paper_dictionary_is_saved_and_reloaded(tmp_path):
    """``--dict-tokenizer paper`` is in the model's .opt: a fresh process tokenizes alike."""
    model_file = tmp_path / "model"
    run_parlai(["train_model", "-m", "empathy/tiny_generator", "-t", "integration_tests",
                "--dict-tokenizer", "paper", "-mf", model_file, "--max-train-steps", 2,
                "--skip-generation", "true", "-vmt", "ppl", "--short-final-eval", "true",
                "-vme", 8, "--datapath", tmp_path / "data"])
    assert json.load(open(f"{model_file}.opt"))["dict_tokenizer"] == "paper"
    code = (
        "from parlai.core.agents import create_agent_from_model_file as c; "
        f"a = c({str(model_file)!r}); print(a.dict.tokenizer, a.dict.tokenize(\"I can't, sorry.\"))"
    )
    import sys

    proc = run_command([sys.executable, "-c", code], timeout=120, merge_stderr=False)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "paper ['i', 'can', 'not', ',', 'sorry', '.']" in out


@pytest.mark.parametrize("agent_args", [
    ["-m", "empathy/moel"],  # the family's default tokenizer
    ["-m", "empathy/transformer_generator", "--dict-tokenizer", "paper"],  # the baseline's
])
def test_build_dict_uses_our_dictionary_class(tmp_path, agent_args):
    data = tmp_path / "data.txt"
    data.write_text("text:You shouldn't worry.\tlabels:I can't help it!\tepisode_done:True\n")
    dict_file = tmp_path / "model.dict"
    run_parlai(["build_dict", *agent_args, "-t", "fromfile:parlaiformat",
                "--fromfile-datapath", data, "-df", dict_file, "--datapath", tmp_path])
    tokens = {line.split("\t")[0] for line in open(dict_file)}
    assert {"should", "n't", "can", "not", "!"} <= tokens and "'" not in tokens
