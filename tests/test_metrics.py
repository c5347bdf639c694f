"""The evaluation suite: each metric on hand-worked examples, exact aggregation, pickling,
and the metrics in a real `parlai eval_model` report of the tiny generator."""
import json
import math
import pickle

import pytest
import torch
from parlai.core.metrics import (
    Metrics,
    aggregate_named_reports,
    aggregate_unnamed_reports,
    dict_report,
)

from parlai_cli import run_parlai
from parlai_empathy.metrics import bleu, distinct, tokenization
from parlai_empathy.metrics.emotion import emotion_accuracy
from parlai_empathy.metrics.parlai_metrics import (
    METRIC_DESCRIPTIONS,
    emotion_accuracy_metrics,
    generation_metrics,
)
from parlai_empathy.metrics.rouge import rouge_l
from parlai_empathy.metrics.sentiment import vader_compound, vader_delta

SUITE = ["bleu1", "bleu2", "bleu3", "bleu4", "mbleu"]
SUITE += ["rougeL", "dist1", "dist2", "resp_len", "vader_delta"]

# A small corpus with multi-references, clipping, a length tie and a short hypothesis.
HYPS = ["the cat sat on the mat", "i am so sorry", "Hello !"]
REFS = [["the cat sat on a mat"], ["i am sorry", "i am so so sorry"], ["hello there my friend !"]]


# ---------------------------------------------------------------------------------------
# multi-bleu.perl
# ---------------------------------------------------------------------------------------


def test_multi_bleu_hand_worked_example():
    # Sentence 1: "the cat sat on the mat" vs "the cat sat on a mat" (both 6 words)
    #   1-grams: the x2 (ref has one "the": clipped to 1), cat, sat, on, mat -> 5 / 6
    #   2-grams: the cat, cat sat, sat on | on the, the mat miss            -> 3 / 5
    #   3-grams: the cat sat, cat sat on  | sat on the, on the mat miss     -> 2 / 4
    #   4-grams: the cat sat on           | 2 miss                          -> 1 / 3
    # Sentence 2: "i am so sorry" (4) vs "i am sorry" (3) and "i am so so sorry" (5):
    #   both refs are 1 word away -> the shorter counts: ref length 3
    #   n-gram counts are clipped by the max over the refs ("so" x2 in ref 2)
    #   1-grams 4 / 4; 2-grams i am, am so, so sorry 3 / 3;
    #   3-grams "i am so" yes, "am so sorry" no 1 / 2; 4-gram "i am so sorry" 0 / 1
    # Sentence 3: "Hello !" (2) vs "hello there my friend !" (5), lower-cased (-lc):
    #   1-grams 2 / 2; 2-gram "hello !" 0 / 1; no 3- or 4-grams
    # Corpus: p1 = 11/12, p2 = 6/9, p3 = 3/6, p4 = 1/4; hyp_len = 12, ref_len = 6+3+5 = 14
    #   BP = exp(1 - 14/12) = exp(-1/6) = 0.846482
    #   (11/12 * 2/3 * 1/2 * 1/4) ** (1/4) = (11/144) ** 0.25 = 0.525734
    #   BLEU = 100 * 0.846482 * 0.525734 = 44.50
    result = bleu.multi_bleu(HYPS, REFS)
    assert result.bleu == pytest.approx(100 * math.exp(-1 / 6) * (11 / 144) ** 0.25, abs=1e-9)
    assert round(result.bleu, 2) == 44.50
    assert result.precisions == pytest.approx((100 * 11 / 12, 100 * 2 / 3, 50.0, 25.0))
    assert (result.hyp_len, result.ref_len) == (12, 14)
    # the script's own summary line
    assert str(result) == (
        "BLEU = 44.50, 91.7/66.7/50.0/25.0 (BP=0.846, ratio=0.857, hyp_len=12, ref_len=14)"
    )
    # without -lc "Hello" misses "hello": p1 = 10/12
    cased = bleu.multi_bleu(HYPS, REFS, lowercase=False)
    expected = 100 * math.exp(-1 / 6) * (10 / 12 * 2 / 3 * 1 / 2 * 1 / 4) ** 0.25
    assert cased.bleu == pytest.approx(expected)


def test_multi_bleu_is_zero_when_any_precision_is_zero_and_handles_empty_output():
    # no 4-gram matches anywhere -> log(0) -> 0, however good the rest is
    assert bleu.multi_bleu(["a b c d e"], ["a b c x d e"]).bleu == 0.0
    # hypotheses shorter than 4 words have no 4-grams at all: also 0
    assert bleu.multi_bleu(["a b c"], ["a b c"]).bleu == 0.0
    assert bleu.multi_bleu([""], ["a b c"]).bleu == 0.0
    assert bleu.multi_bleu(["a b c d"], ["a b c d"]).bleu == pytest.approx(100.0)
    # longer than the reference: no brevity penalty
    assert bleu.multi_bleu(["a b c d a b c d"], ["a b c d"]).brevity_penalty == 1.0


def test_multi_bleu_matches_sacrebleu_without_tokenization_or_smoothing():
    """On the same words, multi-bleu.perl = sacrebleu(tokenize='none', smooth='none')."""
    from sacrebleu.metrics import BLEU

    hyps = ["i am so sorry to hear that .", "that is great ! i hope you have fun .", "oh no"]
    refs = ["i am sorry to hear that .", "that is great , have fun !", "oh no , what happened ?"]
    reference = BLEU(tokenize="none", smooth_method="none").corpus_score(hyps, [refs])
    assert bleu.multi_bleu(hyps, refs).bleu == pytest.approx(reference.score, abs=1e-9)


def test_sacrebleu_orders_from_summed_stats_equal_sacrebleu_itself():
    from sacrebleu.metrics import BLEU

    hyps = ["i am so sorry to hear that", "that is great", "what happened ?"]
    refs = [["i am sorry to hear that"], ["that is so great"], ["oh no what happened ?"]]
    stats = bleu.sacrebleu_stats(hyps, refs)
    stream = [r[0] for r in refs]
    for order in range(1, 5):
        direct = BLEU(lowercase=True, max_ngram_order=order).corpus_score(hyps, [stream])
        assert bleu.sacrebleu_score(stats, order) == pytest.approx(direct.score, abs=1e-9)
    # unigrams by hand: 6 of 7, 3 of 3, 3 of 3 match (only "so" in sentence 1 misses);
    # reference lengths 6 + 4 + 5
    assert stats.matches[0] == 6 + 3 + 3 and stats.totals[0] == 7 + 3 + 3
    assert (stats.hyp_len, stats.ref_len) == (13, 6 + 4 + 5)


# ---------------------------------------------------------------------------------------
# Tokenization, Distinct, ROUGE-L, VADER, emotion accuracy
# ---------------------------------------------------------------------------------------


def test_paper_tokenizer_lowercases_expands_contractions_and_splits_punctuation():
    assert tokenization.paper_tokenize("Oh no! I'm sorry to hear that. What happened?") == [
        "oh", "no", "!", "i", "am", "sorry", "to", "hear", "that", ".", "what", "happened", "?",
    ]
    # NLTK's Treebank rules for contractions outside MoEL's table; a period after an
    # abbreviation does not end the sentence
    assert tokenization.paper_tokenize("Shouldn't Mr. Smith go home, then?") == [
        "should", "n't", "mr.", "smith", "go", "home", ",", "then", "?",
    ]
    # as punkt, "ok." is an abbreviation there
    assert tokenization.paper_tokenize("oh ok. i understand") == ["oh", "ok.", "i", "understand"]
    # the papers' released outputs are already tokenized: unchanged
    line = "why did you feel guilty ? people really should n't drive drunk ."
    assert tokenization.paper_tokenize(line) == line.split()
    assert tokenization.whitespace_tokenize("I'm  FINE .\t ok") == ["i'm", "fine", ".", "ok"]
    with pytest.raises(ValueError, match="unknown tokenizer 'moses'"):
        tokenization.get_tokenizer("moses")


def test_distinct_n_counts_ngrams_within_responses_over_the_corpus():
    responses = [["i", "am", "sorry"], ["i", "am", "happy"], ["so", "sorry"]]
    # unigrams: 8 in all; distinct: i, am, sorry, happy, so = 5 -> 62.5
    assert distinct.distinct_n(responses, 1) == pytest.approx(100 * 5 / 8)
    # bigrams: (i am), (am sorry), (i am), (am happy), (so sorry) = 5; distinct 4 -> 80
    # (no bigram spans two responses, e.g. no "sorry i")
    assert distinct.distinct_n(responses, 2) == pytest.approx(80.0)
    assert distinct.distinct_n([[], ["x"]], 2) == 0.0


def test_rouge_l_is_the_lcs_f_measure_with_the_best_reference():
    # LCS("the cat sat on the mat", "the cat is on the mat") = the cat on the mat = 5
    # P = R = 5/6 -> F = 5/6
    assert rouge_l("the cat sat on the mat", ["the cat is on the mat"]) == pytest.approx(500 / 6)
    # second ref: LCS = "the cat" = 2, P = 2/6, R = 2/2, F = 2PR/(P+R) = 0.5: the best (83.3) wins
    both = ["the cat", "the cat is on the mat"]
    assert rouge_l("the cat sat on the mat", both) == pytest.approx(500 / 6)
    assert rouge_l("the cat sat on the mat", "the cat") == pytest.approx(50.0)
    assert rouge_l("", ["the cat"]) == 0.0


def test_vader_delta_is_compound_difference_on_lowercased_text():
    # lexicon: good 1.9, bad -2.5; compound = x / sqrt(x^2 + 15), rounded to 4 places
    assert vader_compound("good") == pytest.approx(round(1.9 / math.sqrt(1.9**2 + 15), 4))
    assert vader_compound("bad") == pytest.approx(round(-2.5 / math.sqrt(2.5**2 + 15), 4))
    assert vader_delta("good", "bad") == pytest.approx(0.4404 + 0.5423)
    # capitals would add VADER's emphasis to one side only: both sides are lower-cased
    assert vader_compound("GOOD") == vader_compound("good")


def test_emotion_accuracy_on_names_ids_and_tensors():
    gold = ["sad", "joyful", "terrified"]
    assert emotion_accuracy(["Sad", "joyful ", "afraid"], gold) == pytest.approx(2 / 3)
    assert emotion_accuracy(torch.tensor([1, 2, 3, 4]), torch.tensor([1, 0, 3, 0])) == 0.5
    metrics = emotion_accuracy_metrics(torch.tensor([1, 2]), [1, 5])
    assert [m.value() for m in metrics] == [1.0, 0.0]
    with pytest.raises(ValueError, match="2 predicted emotions but 1 gold"):
        emotion_accuracy(["a", "b"], ["a"])


# ---------------------------------------------------------------------------------------
# ParlAI Metric objects: exact aggregation, pickling, JSON
# ---------------------------------------------------------------------------------------

CORPUS_HYPS = [
    "I'm so sorry to hear that. What happened?",
    "that is great ! i hope you have a great time .",
    "oh no , i am sorry to hear that .",
    "That's awesome! Congrats!",
    "i hope you feel better soon .",
    "what did you do ?",
    "i am sorry to hear that . i hope you feel better .",
    "",
]
CORPUS_REFS = [
    ["Oh no! What happened?"],
    ["Sounds like fun, have a great time!", "have fun !"],
    ["That's terrible, I'm so sorry."],
    ["Congratulations! You must be so proud."],
    ["I hope you feel better."],
    ["Did you find out who did it?"],
    ["That is awful. Are you ok?"],
    ["What a nice surprise!"],
]


def test_suite_has_every_metric_and_no_name_clashes_with_parlai():
    from parlai_empathy.metrics.meteor import wordnet_available

    metrics = generation_metrics(CORPUS_HYPS, CORPUS_REFS)
    assert list(metrics) == SUITE + (["meteor"] if wordnet_available() else [])
    assert set(SUITE) | {"emotion_acc", "meteor"} == set(METRIC_DESCRIPTIONS)
    from parlai.core.metrics import ALL_METRICS, METRICS_DISPLAY_DATA

    assert not set(SUITE) & (ALL_METRICS | set(METRICS_DISPLAY_DATA) | {"ppl", "gen_n_toks"})
    values = {k: v.value() for k, v in metrics.items()}
    # resp_len: paper tokens 11 (i am so sorry to hear that . what happened ?) + 12 + 10
    # + 6 (that is awesome ! congrats !) + 7 + 5 + 13 + 0, over 8 responses
    assert values["resp_len"] == pytest.approx(64 / 8)
    assert all(isinstance(v, float) for v in values.values())
    assert 0 < values["bleu4"] < values["bleu3"] < values["bleu2"] < values["bleu1"] < 100


@pytest.mark.parametrize("chunk", [1, 3, 5])
def test_metrics_added_over_chunks_equal_the_whole_corpus(chunk):
    whole = generation_metrics(CORPUS_HYPS, CORPUS_REFS)
    agg = Metrics()  # what an agent's global_metrics does batch after batch
    for start in range(0, len(CORPUS_HYPS), chunk):
        part = generation_metrics(
            CORPUS_HYPS[start : start + chunk], CORPUS_REFS[start : start + chunk]
        )
        for name, metric in part.items():
            agg.add(name, metric)
    report = agg.report()
    for name in SUITE:
        if name in ("rougeL", "resp_len", "vader_delta"):  # means: float sums in another order
            assert report[name].value() == pytest.approx(whole[name].value(), abs=1e-12), name
        else:  # corpus statistics: identical
            assert report[name].value() == whole[name].value(), name
            assert report[name].stats == whole[name].stats, name


def test_metrics_survive_pickling_all_gather_and_json():
    half = len(CORPUS_HYPS) // 2
    worker_reports = [
        generation_metrics(CORPUS_HYPS[:half], CORPUS_REFS[:half]),
        generation_metrics(CORPUS_HYPS[half:], CORPUS_REFS[half:]),
    ]
    # distributed eval: all_gather_list pickles each worker's report, then adds them
    gathered = [pickle.loads(pickle.dumps(r)) for r in worker_reports]
    combined = aggregate_unnamed_reports(gathered)
    whole = generation_metrics(CORPUS_HYPS, CORPUS_REFS)
    for name in SUITE:
        assert combined[name].value() == pytest.approx(whole[name].value(), abs=1e-12), name
    # --report-filename: plain floats in JSON
    saved = json.loads(json.dumps(dict_report(combined)))
    assert saved["mbleu"] == pytest.approx(whole["mbleu"].value())
    assert all(isinstance(saved[name], float) for name in SUITE)


def test_multitask_report_of_the_shared_agent_keeps_the_corpus_values():
    # every task of a multitask world reports the same agent metrics: macro-averaging them
    # must not double-count n-grams (Distinct) or statistics
    metrics = generation_metrics(CORPUS_HYPS, CORPUS_REFS)
    merged = aggregate_named_reports({"task_a": metrics, "task_b": metrics})
    for name in SUITE:
        assert merged[name].value() == pytest.approx(metrics[name].value()), name


def test_adding_different_bleu_orders_is_an_error():
    metrics = generation_metrics(CORPUS_HYPS, CORPUS_REFS)
    with pytest.raises(ValueError, match="BLEU-1 and BLEU-2"):
        metrics["bleu1"] + metrics["bleu2"]
    with pytest.raises(ValueError, match="distinct-1 and distinct-2"):
        metrics["dist1"] + metrics["dist2"]


# ---------------------------------------------------------------------------------------
# End to end: the tiny generator through the real parlai command
# ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_eval_model_reports_and_saves_the_suite(tmp_path):
    model = tmp_path / "model"
    common = ["-t", "integration_tests", "--datapath", tmp_path / "data"]
    run_parlai(
        ["train_model", "-m", "empathy/tiny_generator", "-mf", model, "--max-train-steps", 50,
         "--eval-batchsize", 100, "--seed", 1234, *common],
        timeout=300,
    )
    report_file = tmp_path / "report.json"
    logs = tmp_path / "logs.jsonl"
    proc = run_parlai(
        ["eval_model", "-mf", model, "-bs", 50, "--report-filename", report_file,
         "--world-logs", logs, *common],
        timeout=300,
    )
    printed = proc.stdout.split("Finished evaluating tasks")[-1]
    for name in SUITE + ["ppl"]:
        assert name in printed, name

    report = json.loads(report_file.read_text())["report"]
    for name in SUITE:
        assert isinstance(report[name], float) and math.isfinite(report[name]), name
    assert report["exs"] == 100

    # the report equals the suite computed at once on the logged outputs and labels
    hyps, refs = [], []
    for line in logs.read_text().splitlines():
        for teacher_act, model_act in json.loads(line)["dialog"]:
            hyps.append(model_act["text"])
            refs.append(teacher_act["eval_labels"])
    assert len(hyps) == 100
    whole = generation_metrics(hyps, refs)
    for name in SUITE:
        assert report[name] == pytest.approx(whole[name].value(), abs=1e-9), name
    assert report["resp_len"] > 0 and report["dist1"] > 0 and report["bleu1"] > 0


def test_meteor_is_skipped_with_a_clear_message_without_wordnet(monkeypatch):
    import logging as std_logging

    from parlai.utils import logging as parlai_logging
    from parlai.utils import misc

    from parlai_empathy.metrics import meteor, parlai_metrics

    class Captured(std_logging.Handler):
        lines = []

        def emit(self, record):
            self.lines.append(record.getMessage())

    monkeypatch.setattr(parlai_metrics, "wordnet_available", lambda: False)
    monkeypatch.setattr(misc, "_seen_logs", set())
    handler = Captured()
    parlai_logging.logger.addHandler(handler)
    try:
        metrics = generation_metrics(HYPS, [[r] for r in HYPS])
    finally:
        parlai_logging.logger.removeHandler(handler)
    assert "meteor" not in metrics
    assert handler.lines == [meteor.SKIPPED]
    assert "nltk.downloader wordnet" in meteor.SKIPPED


def test_meteor_matches_nltk_when_wordnet_is_installed(monkeypatch):
    from parlai_empathy.metrics.meteor import wordnet_available

    if not wordnet_available():
        pytest.skip("NLTK's WordNet data is not installed (see parlai_empathy.metrics.meteor)")
    metrics = generation_metrics(["the cat sat on the mat"], [["the cat sat on the mat"]])
    # 6 exact matches in one chunk: fmean 1, penalty 0.5 * (1/6)^3
    assert metrics["meteor"].value() == pytest.approx(1 - 0.5 * (1 / 6) ** 3, abs=1e-6)
