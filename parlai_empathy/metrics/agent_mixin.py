"""GenerationMetricsMixin: the evaluation suite in every generator's ParlAI report.

Put it first among the bases of a ``TorchGeneratorAgent`` subclass::

    class TinyGeneratorAgent(GenerationMetricsMixin, TransformerGeneratorAgent):
        ...

    parlai eval_model -mf /tmp/tiny/model -t empathetic_dialogues \
        --report-filename /tmp/tiny/report.json

After each evaluation batch it adds
:func:`~parlai_empathy.metrics.parlai_metrics.generation_metrics` of the generated texts
(``Output.text``) against *all* the labels of each example (``eval_labels``, or ``labels``)
to ``self.global_metrics``. So the agent's report -- what ``eval_model`` prints and saves,
what ``--validation-metric`` can select -- carries bleu1..bleu4, mbleu, rougeL, dist1, dist2,
resp_len and vader_delta next to ParlAI's ppl.
Nothing is added with ``--skip-generation true`` (there is no text).

The texts are the agent's replies as sentences: the mixin detokenizes with the agent's own
dictionary (:class:`~parlai_empathy.dictionary.DetokenizedOutputMixin`), so ``i ' m`` from
ParlAI's ``re`` tokens is scored, and shown, as ``I'm``. It also makes ``ppl`` the default
``--validation-metric`` (ParlAI's default, ``accuracy``, does not exist with
``--skip-generation true``).
"""
from parlai_empathy.dictionary import DetokenizedOutputMixin
from parlai_empathy.metrics.parlai_metrics import generation_metrics

# Batch fields starting with "_" are not moved to the GPU.
REFERENCES_FIELD = "_metric_references"


def attach_references(batch, obs_batch):
    """Keep all the labels of each example of an evaluation ``batch`` for the metrics."""
    if (
        not batch.get("is_training")
        and batch.get("valid_indices") is not None
        and batch.get("labels") is not None
    ):
        # batch.labels holds one (possibly random) label per example; keep them all
        batch[REFERENCES_FIELD] = [
            list(obs_batch[i].get("eval_labels") or obs_batch[i].get("labels") or [])
            for i in batch.valid_indices.tolist()
        ]
    return batch


def record_metrics(global_metrics, batch, output):
    """Add the suite's metrics of ``output``'s generated texts to ``global_metrics``."""
    texts = output.get("text") if output is not None else None
    references = batch.get(REFERENCES_FIELD)
    if references is None and batch.get("labels") is not None:
        references = [[label] if label is not None else [] for label in batch.labels]
    if texts and references:
        pairs = [(t, r) for t, r in zip(texts, references) if t is not None and r]
        if pairs:
            hyps, refs = zip(*pairs)
            for name, metric in generation_metrics(hyps, refs).items():
                global_metrics.add(name, metric)


class GenerationMetricsMixin(DetokenizedOutputMixin):
    """Adds the suite's corpus metrics to a TorchGeneratorAgent's report at evaluation."""

    @classmethod
    def add_cmdline_args(cls, parser, partial_opt=None):
        super().add_cmdline_args(parser, partial_opt=partial_opt)
        parser.set_defaults(validation_metric="ppl")
        return parser

    def batchify(self, obs_batch, *args, **kwargs):
        return attach_references(super().batchify(obs_batch, *args, **kwargs), obs_batch)

    def eval_step(self, batch):
        output = super().eval_step(batch)
        record_metrics(self.global_metrics, batch, output)
        return output
