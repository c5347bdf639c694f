"""Beam search that searches, stops and picks the way MoEL's and MIME's own beam did.

Their beam (``utils/beam_omt*.py``, after an early OpenNMT-py) keeps every hypothesis in the
beam, finished or not: a hypothesis that produced EOS keeps its slot and is extended at the
next step like any other (its text is later cut at the first EOS), so it can crowd out a
continuation that ParlAI would have let in. The search stops at the first step whose
best-scoring hypothesis ends with EOS and returns that hypothesis. All candidates compared
there have the same length, so no length penalty is needed and none is used.

ParlAI's :class:`~parlai.core.torch_generator_agent.BeamSearch` instead sets each finished
hypothesis aside, goes on until it has ``beam_size`` of them (and the best one is finished),
and then returns the best of *all* of them after ``--beam-length-penalty``; a finished
hypothesis leaves the beam (its score becomes -inf), freeing its slot. With the penalty at 0
(the raw log-probability, as the papers' beam) that choice is biased towards the shortest
hypotheses: on ED valid, MoEL's beam-5 replies come out about a quarter shorter than with the
papers' rule (``recipes/moel_ed_decoding.sh`` measures both).

:class:`FirstTopBeamSearch` is ParlAI's beam with the papers' search (finished hypotheses
stay and are extended), stopping rule and choice; the other finished hypotheses follow, in
ParlAI's order, for n-best lists.
"""
from parlai.core.torch_generator_agent import BeamSearch, _HypothesisTail

# --beam-selection values: the papers' rule, and ParlAI's own.
BEAM_SELECTIONS = ("first_top", "rescored")


class FirstTopBeamSearch(BeamSearch):
    """Finished hypotheses stay in the beam; stop when the top one ends; return it (MoEL/MIME's
    beam)."""

    _prior_scores = None

    def advance(self, logprobs, step):
        # ParlAI's advance sets the scores of hypotheses that ended with EOS to -inf before
        # choosing the next paths; the papers' beam extends them like the others
        self._prior_scores = None if self.scores is None else self.scores.clone()
        super().advance(logprobs, step)

    def select_paths(self, logprobs, prior_scores, current_length):
        if self._prior_scores is not None:
            prior_scores = self._prior_scores
        return super().select_paths(logprobs, prior_scores, current_length)

    def is_done(self):
        return self.eos_top

    def get_rescored_finished(self, n_best=None):
        """The hypothesis that ended on top first, then the other finished ones in ParlAI's
        order (score after ``length_penalty``); each cut at its first EOS and listed once.

        (ParlAI's own version asserts one EOS per hypothesis, which a kept hypothesis breaks.)
        """
        if self.eos_top_ts is None:
            # never stopped: the top hypothesis at the length limit, as the papers' beam
            # returns (ParlAI's parent would only add it when nothing at all has finished)
            last = len(self.outputs) - 1
            self.outputs[-1][0] = self.eos
            self.finished.append(
                _HypothesisTail(
                    timestep=last,
                    hypid=0,
                    score=self.all_scores[-1][0],
                    tokenid=self.outputs[-1][0],
                    token_details=self.token_details[0][-1]
                    if self.token_details is not None
                    else None,
                )
            )
            chosen_step = last
        else:
            chosen_step = self.eos_top_ts
        chosen = _tail_at(self.finished, chosen_step)
        others = sorted(
            (tail for tail in self.finished if tail is not chosen),
            key=lambda tail: float(tail.score) / ((2 + tail.timestep) / 6) ** self.length_penalty,
            reverse=True,
        )
        ranked = []
        for tail in [chosen, *others]:
            hypothesis = self._get_hyp_from_finished(tail)
            tokens = _cut_at_first_eos(self._get_pretty_hypothesis(hypothesis), self.eos)
            if any(_same(tokens, listed) for listed, _, _ in ranked):
                continue
            details = (
                [t.token_details for t in reversed(hypothesis)][: len(tokens)]
                if self.verbose
                else None
            )
            penalty = ((2 + tail.timestep) / 6) ** self.length_penalty
            ranked.append((tokens, tail.score / penalty, details))
        return ranked[:n_best] if n_best is not None else ranked


def _cut_at_first_eos(tokens, eos: int):
    """``tokens`` (BOS first) up to and including its first EOS after BOS."""
    ends = (tokens[1:] == eos).nonzero()
    return tokens[: int(ends[0]) + 2] if ends.numel() else tokens


def _tail_at(finished, timestep: int) -> _HypothesisTail:
    """The finished hypothesis that was top of the beam (hypid 0) at ``timestep``."""
    return next(t for t in finished if t.timestep == timestep and t.hypid == 0)


def _same(a, b) -> bool:
    return a.size() == b.size() and bool((a == b).all())
