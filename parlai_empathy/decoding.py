"""Beam search that stops and picks the way MoEL's and MIME's own beam did.

Their beam (``utils/beam_omt*.py``, after an early OpenNMT-py) keeps every hypothesis in the
beam, finished or not, stops at the first step whose best-scoring hypothesis ends with EOS,
and returns that hypothesis. All candidates compared there have the same length, so no length
penalty is needed and none is used.

ParlAI's :class:`~parlai.core.torch_generator_agent.BeamSearch` instead sets each finished
hypothesis aside, goes on until it has ``beam_size`` of them (and the best one is finished),
and then returns the best of *all* of them after ``--beam-length-penalty``. With the
penalty at 0 (the raw log-probability, as the papers' beam) that choice is biased towards
the shortest hypotheses: on ED valid, MoEL's beam-5 replies come out about a quarter shorter
than with the papers' rule (``recipes/moel_ed_decoding.sh`` measures both).

:class:`FirstTopBeamSearch` is ParlAI's beam with the papers' stopping rule and choice; the
other finished hypotheses follow, in ParlAI's order, for n-best lists.
"""
from parlai.core.torch_generator_agent import BeamSearch, _HypothesisTail

# --beam-selection values: the papers' rule, and ParlAI's own.
BEAM_SELECTIONS = ("first_top", "rescored")


class FirstTopBeamSearch(BeamSearch):
    """Stop when the top hypothesis ends; return it (MoEL/MIME's beam)."""

    def is_done(self):
        return self.eos_top

    def get_rescored_finished(self, n_best=None):
        if self.eos_top_ts is None:
            # never stopped: the top hypothesis at the length limit, as the papers' beam
            # returns (ParlAI's parent would only add it when nothing finished at all)
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
        ranked = super().get_rescored_finished()
        chosen = self._get_pretty_hypothesis(
            self._get_hyp_from_finished(_tail_at(self.finished, chosen_step))
        )
        index = next(i for i, item in enumerate(ranked) if _same(item[0], chosen))
        ranked.insert(0, ranked.pop(index))
        return ranked[:n_best] if n_best is not None else ranked


def _tail_at(finished, timestep: int) -> _HypothesisTail:
    """The finished hypothesis that was top of the beam (hypid 0) at ``timestep``."""
    return next(t for t in finished if t.timestep == timestep and t.hypid == 0)


def _same(a, b) -> bool:
    return a.size() == b.size() and bool((a == b).all())
