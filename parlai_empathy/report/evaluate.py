"""Evaluate one model file with ParlAI's own ``eval_model``, in this process.

:func:`evaluate_model` parses the options with ``eval_model``'s parser, exactly as
``parlai eval_model -mf MODEL ...`` parses its command line (the model's saved ``.opt``
supplies everything not given, the given options override it), then calls
:func:`parlai.scripts.eval_model.eval_model`. Its report is therefore the one
``parlai eval_model`` prints and saves with ``--report-filename`` for the same options.
"""
import contextlib
import math
import os
import random
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

# The suite's metrics (parlai_empathy.metrics) and ParlAI's ppl, in report order.
SUITE_METRICS = (
    "ppl",
    "bleu1",
    "bleu2",
    "bleu3",
    "bleu4",
    "mbleu",
    "rougeL",
    "dist1",
    "dist2",
    "resp_len",
    "vader_delta",
    "emotion_acc",
)

# Inference methods that draw random samples: only for these does the seed matter.
SAMPLING_INFERENCE = frozenset({"topk", "nucleus", "delayedbeam", "delayednucleusbeam",
                                "factual_nucleus"})
BEAM_INFERENCE = frozenset({"beam", "delayedbeam", "delayednucleusbeam"})
# options under which a model samples inside its own forward pass at inference, whatever
# --inference says, so that its numbers depend on the seed too: MIME's stochastic emotion
# mixture (on by default, as in the original)
SAMPLING_MODEL_OPTIONS = ("stochastic_mixture",)


class ReportInputError(ValueError):
    """A model file, task or option the report cannot use; the message names it."""


@dataclass
class ModelEvaluation:
    """One model's evaluation: the settings it ran with and ParlAI's whole report."""

    model_file: str  # as given on the command line
    resolved_model_file: str  # zoo: paths resolved to the datapath
    settings: Dict[str, Any]  # task, datatype, inference, beam_size, num_examples, seed, ...
    report: Dict[str, Any]  # every number of ParlAI's report, by name

    @property
    def metrics(self) -> Dict[str, Optional[float]]:
        """ppl and the suite's metrics; None for those the report does not have."""
        return {name: self.report.get(name) for name in SUITE_METRICS}

    @property
    def exs(self) -> Optional[int]:
        exs = self.report.get("exs")
        return None if exs is None else int(exs)


def resolve_model_file(model_file: str, datapath: str) -> str:
    """The path of ``model_file`` on disk (fetching ``zoo:`` models); errors name it."""
    from parlai.core.build_data import modelzoo_path

    try:
        resolved = modelzoo_path(datapath, model_file)
    except ImportError as error:
        raise ReportInputError(f"model file {model_file}: no such zoo model ({error})") from None
    if not os.path.isfile(resolved):
        where = "" if resolved == model_file else f" ({resolved})"
        raise ReportInputError(f"model file {model_file}{where}: no such file")
    if not os.path.isfile(resolved + ".opt"):
        raise ReportInputError(
            f"model file {model_file}: {resolved}.opt is missing (ParlAI needs it to load "
            "the model)"
        )
    return resolved


def _seed_everything(seed: int):
    import numpy
    import torch

    random.seed(seed)
    numpy.random.seed(seed)
    torch.manual_seed(seed)


def _number(value):
    from parlai.core.metrics import Metric

    if isinstance(value, Metric):
        value = value.value()
    return value


def _model_settings(eval_opt: Mapping) -> Dict[str, Any]:
    """The options the agent really runs with: its saved .opt overridden by ours.

    This is what ``create_agent_from_opt_file`` does when ``eval_model`` builds the agent.
    """
    from parlai.core.opt import Opt

    saved = Opt.load(eval_opt["model_file"] + ".opt")
    saved.update(eval_opt.get("override") or {})
    return saved


def with_suite_metrics(agent):
    """``agent``, made to add the suite's metrics to its report if it does not already.

    Our generators carry :class:`~parlai_empathy.metrics.agent_mixin.GenerationMetricsMixin`;
    a stock ParlAI generator (``transformer/generator`` ...) reports only ParlAI's own
    metrics, so the report wraps this instance's ``batchify``, ``eval_step`` and ``_v2t``
    (replies detokenized by the agent's dictionary) the way the mixin does (same weights,
    options and decoding; ParlAI's batch world runs every batch through this main agent).
    """
    from parlai.core.torch_generator_agent import TorchGeneratorAgent

    from parlai_empathy.dictionary import readable
    from parlai_empathy.metrics.agent_mixin import (
        GenerationMetricsMixin,
        attach_references,
        record_metrics,
    )

    if not isinstance(agent, TorchGeneratorAgent) or isinstance(agent, GenerationMetricsMixin):
        return agent
    batchify, eval_step, v2t = agent.batchify, agent.eval_step, agent._v2t

    def batchify_keeping_references(obs_batch, *args, **kwargs):
        return attach_references(batchify(obs_batch, *args, **kwargs), obs_batch)

    def eval_step_with_suite_metrics(batch):
        output = eval_step(batch)
        record_metrics(agent.global_metrics, batch, output)
        return output

    def detokenized_v2t(vec):
        return readable(v2t(vec), agent.dict.tokenizer, bool(agent.dict.lower))

    agent.batchify = batchify_keeping_references
    agent._v2t = detokenized_v2t
    agent.eval_step = eval_step_with_suite_metrics
    return agent


@contextlib.contextmanager
def _eval_model_agents_with_suite_metrics():
    """While evaluating, eval_model's agents report the suite's metrics (see above)."""
    import parlai.scripts.eval_model as eval_model_module

    create_agent = eval_model_module.create_agent

    def create_agent_with_suite_metrics(*args, **kwargs):
        return with_suite_metrics(create_agent(*args, **kwargs))

    eval_model_module.create_agent = create_agent_with_suite_metrics
    try:
        yield
    finally:
        eval_model_module.create_agent = create_agent


def evaluate_model(
    model_file: str,
    eval_options: Mapping[str, Any],
    seed: int,
    datapath: str,
) -> ModelEvaluation:
    """``parlai eval_model -mf MODEL_FILE <eval_options>``, in-process.

    :param eval_options: eval_model options by their opt names (``task``, ``datatype``,
        ``num_examples``, ``inference``, task options ...), as given on the command line.
    :param seed: seeds python, numpy and torch first, so that sampling inference gives the
        same numbers whatever the order of the models.
    """
    from parlai.scripts.eval_model import eval_model, setup_args

    resolved = resolve_model_file(model_file, datapath)
    kwargs = dict(eval_options, model_file=model_file, report_filename="")
    try:
        opt = setup_args().parse_kwargs(**kwargs)
    except (KeyError, ValueError) as error:
        raise ReportInputError(
            f"model file {model_file}: its agent does not take these options ({error})"
        ) from None
    _seed_everything(seed)
    with _eval_model_agents_with_suite_metrics():
        report = {name: _number(value) for name, value in eval_model(opt).items()}

    model_opt = _model_settings(opt)
    inference = model_opt.get("inference")
    samples = inference in SAMPLING_INFERENCE or any(
        model_opt.get(name) for name in SAMPLING_MODEL_OPTIONS)
    settings = {
        "task": opt["task"],
        "datatype": opt["datatype"],
        "inference": inference,
        "beam_size": model_opt.get("beam_size"),
        "num_examples": opt["num_examples"],
        "seed": seed if samples else None,
        "skip_generation": bool(model_opt.get("skip_generation")),
        "batchsize": opt.get("batchsize"),
        # the label set of the model's emotion_acc (the emotion generators save it)
        "emotion_labels": model_opt.get("emotion_labels"),
    }
    return ModelEvaluation(model_file, resolved, settings, report)


def json_number(value):
    """A report value JSON can hold: non-finite floats become "inf" / "nan" strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
