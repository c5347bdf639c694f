"""MoEL's own beam rule (stop when the best hypothesis ends, return it) next to ParlAI's."""
import math

import pytest
import torch
from parlai.core.torch_generator_agent import BeamSearch

from parlai_empathy.decoding import FirstTopBeamSearch

PAD, BOS, EOS, A, B = range(5)


def logprobs(*rows):
    """One row of next-token probabilities per hypothesis, as log-probabilities."""
    table = torch.full((len(rows), 5), 1e-9)
    for i, row in enumerate(rows):
        for token, p in row.items():
            table[i, token] = p
    return table.log()


def run(search_class, steps, beam_size=2, min_length=0):
    search = search_class(beam_size, min_length=min_length, length_penalty=0.0,
                          padding_token=PAD, bos_token=BOS, eos_token=EOS)
    for step, table in enumerate(steps):
        if search.is_done():
            break
        search.advance(table.clone(), step)
    return search, search.get_rescored_finished()


# step 0: "a" 0.5 is best, EOS 0.3 second (finishes, but not at the top of the beam)
# step 1: after "a", EOS 0.5 is the best extension -> the top of the beam ends here (the
# finished "EOS" stays in the papers' beam, but its continuations, .15 each, rank lower)
STEPS = [
    logprobs({A: 0.5, EOS: 0.3, B: 0.2}, {A: 0.5, EOS: 0.3, B: 0.2}),
    logprobs({EOS: 0.5, B: 0.4, A: 0.1}, {A: 0.5, B: 0.5}),
    logprobs({A: 0.9, EOS: 0.1}, {A: 0.9, EOS: 0.1}),
]


def test_first_top_returns_the_hypothesis_that_ended_at_the_top():
    search, ranked = run(FirstTopBeamSearch, STEPS)
    assert search.eos_top_ts == 2 and len(search.outputs) == 3  # BOS + 2 steps: stopped there
    tokens, score, _ = ranked[0]
    assert tokens.tolist() == [BOS, A, EOS]
    assert score.item() == pytest.approx(math.log(0.5) + math.log(0.5), abs=1e-5)
    # the other finished hypothesis follows, for n-best lists
    assert [t.tolist() for t, _, _ in ranked] == [[BOS, A, EOS], [BOS, EOS]]


def test_parlai_rule_prefers_the_shorter_finished_hypothesis():
    _, ranked = run(BeamSearch, STEPS)
    # with no length penalty ParlAI ranks every finished hypothesis by its raw score, and the
    # empty reply that finished second-best at step 0 (log 0.3) beats "a" (log 0.25)
    assert ranked[0][0].tolist() == [BOS, EOS]


def test_first_top_at_the_length_limit_returns_the_top_hypothesis():
    never_ends = [logprobs({A: 0.6, B: 0.4}, {A: 0.6, B: 0.4})] * 3
    search, ranked = run(FirstTopBeamSearch, never_ends)
    assert search.eos_top_ts is None
    assert ranked[0][0].tolist() == [BOS, A, A, EOS]  # the last token turned into EOS
    assert len(ranked) == 1


def test_first_top_keeps_parlai_s_minimum_length():
    _, ranked = run(FirstTopBeamSearch, STEPS, min_length=2)
    tokens = ranked[0][0].tolist()
    assert len(tokens) >= 2 + 2 and tokens[-1] == EOS  # BOS, two words, EOS


# A model whose next-token distribution depends on the prefix (BOS first), for searches where
# which hypotheses stay in the beam matters.
PREFIX_MODEL = {
    (BOS,): {A: 0.5, EOS: 0.3, B: 0.2},
    (BOS, A): {A: 0.5, B: 0.4, EOS: 0.1},
    (BOS, EOS): {A: 0.9, B: 0.1},  # after EOS: only the papers' beam goes on from here
    (BOS, A, A): {A: 0.9, EOS: 0.1},
    (BOS, A, B): {EOS: 1.0},
    (BOS, EOS, A): {EOS: 0.8, A: 0.2},
    (BOS, A, A, A): {EOS: 0.6, A: 0.4},
}
DEFAULT_NEXT = {EOS: 0.9, A: 0.1}


def run_model(search, max_steps=6):
    for step in range(max_steps):
        if search.is_done():
            break
        prefixes = [tuple(row) for row in search.partial_hyps.tolist()]
        search.advance(logprobs(*(PREFIX_MODEL.get(p, DEFAULT_NEXT) for p in prefixes)), step)
    return search.get_rescored_finished()


def new_search(search_class):
    return search_class(2, min_length=0, length_penalty=0.0, padding_token=PAD, bos_token=BOS,
                        eos_token=EOS)


class FirstTopDroppingFinished(FirstTopBeamSearch):
    """The papers' stop and choice on ParlAI's search, which frees a finished slot."""

    advance = BeamSearch.advance
    select_paths = BeamSearch.select_paths


def test_papers_beam_keeps_extending_a_finished_hypothesis():
    # step 0: beam [a .5, EOS .3]. The papers' beam extends "EOS" too: at step 1 "EOS a"
    # (.27) takes the second slot, crowding out "a b" (.2), and at step 3 its continuation
    # "EOS a EOS EOS" (.1944) is on top and ends: the reply is cut at its first EOS (empty).
    ranked = run_model(new_search(FirstTopBeamSearch))
    tokens, score, _ = ranked[0]
    assert tokens.tolist() == [BOS, EOS]
    assert score.item() == pytest.approx(math.log(0.3 * 0.9 * 0.8 * 0.9), abs=1e-5)
    # every listed hypothesis is cut at its first EOS and listed once
    texts = [t.tolist() for t, _, _ in ranked]
    assert all(t.count(EOS) == 1 and t[-1] == EOS for t in texts)
    assert len(texts) == len(set(map(tuple, texts)))


def test_dropping_finished_hypotheses_gives_another_reply():
    # ParlAI's search sets "EOS" aside at step 0 and refills its slot: beam [a a, a b], then
    # [a a a, a b EOS]; "a a a EOS" (.135) is the first top hypothesis to end
    ranked = run_model(new_search(FirstTopDroppingFinished))
    assert ranked[0][0].tolist() == [BOS, A, A, A, EOS]
    assert ranked[0][1].item() == pytest.approx(math.log(0.5 * 0.5 * 0.9 * 0.6), abs=1e-5)
