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
# step 1: after "a", EOS 0.5 is the best extension -> the top of the beam ends here
STEPS = [
    logprobs({A: 0.5, EOS: 0.3, B: 0.2}, {A: 0.5, EOS: 0.3, B: 0.2}),
    logprobs({EOS: 0.5, B: 0.4, A: 0.1}, {A: 0.9, B: 0.1}),
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
