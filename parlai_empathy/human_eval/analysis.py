"""The numbers of a human evaluation, in the layout of the MoEL / MIME tables.

* Ratings: for each model and scale, the mean of all ratings (what the papers report) and a
  95% confidence interval. Ratings of one response by several annotators are not
  independent, so the interval is Student's t over the per-response mean ratings (n =
  number of responses rated), not over single ratings.
* A/B: for each pair, the percentages of win / lose / tie over all judgements (MIME's
  table), and a two-sided sign test over items: an item counts for the first model when it
  got more wins than losses across its annotators, against it when fewer, and is left out
  when even.
* Agreement: Krippendorff's alpha per task and scale (ordinal for the 1-5 ratings, nominal
  for A/B answers expressed as first-model win / loss / tie), from the ``krippendorff``
  package.

Annotators who failed any attention check of a task are left out of that task's numbers
and counted.
"""
import math
from collections import defaultdict
from typing import Dict, List, Optional, Tuple

import numpy

from parlai_empathy.human_eval.annotations import StudyAnnotations
from parlai_empathy.human_eval.potato_task import AB_SCHEME, RATING_SCALES


def mean_ci(values: List[float], confidence: float = 0.95) -> Dict[str, Optional[float]]:
    """Mean and Student's t confidence interval (half-width None below two values)."""
    from scipy import stats

    n = len(values)
    if n == 0:
        return {"mean": None, "ci95": None, "n": 0}
    mean = float(numpy.mean(values))
    if n < 2:
        return {"mean": mean, "ci95": None, "n": n}
    sem = float(numpy.std(values, ddof=1)) / math.sqrt(n)
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * sem
    return {"mean": mean, "ci95": half, "n": n}


def krippendorff_alpha(units: Dict[str, Dict[str, float]], level: str) -> Optional[float]:
    """Alpha over {unit: {annotator: value}}; None when no unit has two values."""
    import krippendorff

    annotators = sorted({a for values in units.values() for a in values})
    paired = [u for u, values in units.items() if len(values) >= 2]
    if not paired or len(annotators) < 2:
        return None
    matrix = numpy.full((len(annotators), len(paired)), numpy.nan)
    for column, unit in enumerate(paired):
        for annotator, value in units[unit].items():
            matrix[annotators.index(annotator), column] = value
    if len(set(matrix[~numpy.isnan(matrix)].tolist())) < 2:
        return 1.0  # every judgement identical: perfect agreement (the formula is 0/0)
    return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement=level))


def analyze(study: StudyAnnotations) -> dict:
    key = study.key
    result = {"models": key["models"], "ratings": {}, "ab": {}, "agreement": {},
              "annotators": {}}
    for task, spec in key["tasks"].items():
        excluded = set(study.excluded(task))
        records = [a for a in study.annotators if a.task == task]
        result["annotators"][task] = {
            "total": len(records),
            "excluded_failed_checks": len(excluded),
            "excluded": sorted(excluded),
            "without_checks": sum(1 for a in records if a.checks_passed + a.checks_failed == 0),
            "ignored_unassigned_answers": sum(a.unassigned_answers for a in records),
        }
        judgements = [j for j in study.judgements if j.task == task
                      and j.annotator not in excluded]
        if spec["kind"] == "ratings":
            result["ratings"] = _ratings(spec, judgements)
            result["agreement"][task] = {
                scale: krippendorff_alpha(
                    _units(judgements, lambda j, s=scale: float(j.answers[s])), "ordinal")
                for scale in RATING_SCALES
            }
        else:
            first = spec["models"][0]
            result["ab"][task] = _ab(spec, judgements)
            outcome = {"win": 0.0, "lose": 1.0, "tie": 2.0}
            result["agreement"][task] = {
                AB_SCHEME: krippendorff_alpha(
                    _units(judgements, lambda j: outcome[_outcome(spec, j, first)]),
                    "nominal")
            }
    return result


def _units(judgements, value) -> Dict[str, Dict[str, float]]:
    units: Dict[str, Dict[str, float]] = defaultdict(dict)
    for j in judgements:
        units[j.instance_id][j.annotator] = value(j)
    return units


def _ratings(spec: dict, judgements) -> dict:
    # (model, scale) -> {response instance: its ratings}
    per_response: Dict[Tuple[str, str], Dict[str, List[float]]] = defaultdict(
        lambda: defaultdict(list))
    for j in judgements:
        model = spec["instances"][j.instance_id]["model"]
        for scale in RATING_SCALES:
            per_response[(model, scale)][j.instance_id].append(float(j.answers[scale]))
    out = {}
    for model in sorted({v["model"] for v in spec["instances"].values()}):
        out[model] = {}
        for scale in RATING_SCALES:
            responses = per_response[(model, scale)]
            interval = mean_ci([float(numpy.mean(v)) for v in responses.values()])
            ratings = [r for values in responses.values() for r in values]
            out[model][scale] = {
                "mean": float(numpy.mean(ratings)) if ratings else None,
                "ci95": interval["ci95"],
                "ratings": len(ratings),
                "responses": len(responses),
            }
    return out


def _outcome(spec: dict, judgement, first: str) -> str:
    """The first model's result in one A/B judgement: win, lose or tie."""
    choice = judgement.answers[AB_SCHEME]
    if choice == "tie":
        return "tie"
    chosen = spec["instances"][judgement.instance_id][choice]
    return "win" if chosen == first else "lose"


def _ab(spec: dict, judgements) -> dict:
    from scipy import stats

    first, second = spec["models"]
    counts = {"win": 0, "lose": 0, "tie": 0}
    per_item: Dict[str, int] = defaultdict(int)
    for j in judgements:
        outcome = _outcome(spec, j, first)
        counts[outcome] += 1
        per_item[j.instance_id] += {"win": 1, "lose": -1, "tie": 0}[outcome]
    total = sum(counts.values())
    items_for = sum(1 for s in per_item.values() if s > 0)
    items_against = sum(1 for s in per_item.values() if s < 0)
    decided = items_for + items_against
    p_value = (
        float(stats.binomtest(items_for, decided, 0.5, alternative="two-sided").pvalue)
        if decided else None
    )
    return {
        "models": [first, second],
        "judgements": total,
        "items": len(per_item),
        "counts": counts,
        "percent": {k: (100.0 * v / total if total else None) for k, v in counts.items()},
        "items_for_first": items_for,
        "items_for_second": items_against,
        "sign_test_p": p_value,
    }
