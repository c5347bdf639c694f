"""MIME: MIMicking Emotions for Empathetic Response Generation (Majumder et al., EMNLP 2020) as
a ParlAI agent.

Train on EmpatheticDialogues with the released run's settings (``recipes/mime_ed.sh``)::

    parlai train_model -m empathy/mime -t empathetic_dialogues --train-experiencer-only true \
        -mf /tmp/mime/model -vstep 1000 -vp 3 -vmt ppl -vmm min --skip-generation true

Chat with it (the reply also carries the predicted emotion, its probability and polarity)::

    parlai interactive -mf /tmp/mime/model

The network is :class:`parlai_empathy.modules.mime.MimeModel` (its docstring describes the
model). What MIME shares with the other emotion generators -- the papers' dictionary, dialogue
states, label sets, Noam schedule, word vectors, the smoothed summed loss with the emotion
loss, the originals' beam, the emotion shown in chat -- is
:class:`parlai_empathy.emotion_generator.EmotionGeneratorAgent`; this file holds what is
MIME's own:

* **Switches** (all on by default, as released): ``--mimicry`` (off: the emotion-input
  encoders read the positive / negative group whatever the context's polarity),
  ``--stochastic-mixture`` (off: each group's weights are the emotion classifier's softmax
  within the group; no latent, no KL), ``--emotion-grouping`` (off: one group of all the
  emotions), ``--mime-posterior original|response``, ``--latent-size``.
* **Losses.** The family's summed label-smoothed NLL and emotion cross-entropy, plus
  ``KL(posterior || prior)`` summed over the batch (:meth:`MimeAgent._extra_losses`; metric
  ``kl``), all with weight 1 as the original.
* **Training-only inputs** (:meth:`MimeAgent._training_input`): the gold emotion, whose
  polarity picks the mimicking group, and the gold response, which switches the posterior on.
  Evaluation and generation use the predicted emotion's polarity and the prior only
  (``--mime-eval-gold-polarity true`` gives the evaluation *loss* the gold polarity, as the
  original's reported test ppl had; generation always uses the prediction, as the original).
* **Display.** Generated replies carry ``polarity`` (of the predicted emotion) next to
  ``emotion`` / ``emotion_prob``, and ``parlai interactive`` shows the three.
* **Defaults** = the official configuration (``utils/config.py``): 300-d embeddings and
  hidden size, 1 layer, 2 heads, key/value depth 40, filter 50, batch 16, label smoothing 0.1,
  gradient clipping at norm 2.0, Noam warm-up 8000, beam 5 with the papers' stopping rule,
  at most 50 tokens.
* **ESConv.** Its 11 emotion types are all negative feelings
  (:data:`parlai_empathy.emotions.ESCONV_NEGATIVE_TYPES`), so MIME's grouping has a single
  group: both emotion-input encoders read that group's mixture and ``--mimicry`` changes
  nothing (the agent says so once).

**Which configuration produced the released ``output.txt``.** Its first line is the comment
("### COMMENT: If using vader ...") that only ``main.py``'s training path writes (the
``--test`` path writes no comment), so the file came from a full training run followed by its
test pass. Whatever flags that run had, the stochastic mixture was on: ``--vae``
(``type=bool, default=False``) is parsed into ``config.vae`` but read nowhere in the
repository, in any commit (``git log -S``; the file was added in 75419cf, 2020-10-04, with
the model code of aad652b), while ``Train_MIME`` always builds ``VAESampling``, always mixes
the emotions from a prior sample (``train_one_batch``, ``decoder_greedy``, ``decoder_topk``,
the beam search) and always adds the KL term to the training loss. Its emotion input and
combination were ``self_att`` / ``gate`` (the defaults; ``--test`` forces them too). Hence
``--stochastic-mixture true`` and ``--mime-posterior original`` by default. Its PPL (37.54)
is ``exp`` of the mean of per-batch mean token NLLs, computed with the *gold* emotion's
polarity and a prior sample; ParlAI's ``ppl`` is per token (and with
``--mime-eval-gold-polarity false``, the default, uses the predicted polarity).

**Early stopping.** The original validates every 1,000 updates and stops at the third check
without a ppl gain (``patient > 2``), but only counts (and saves at) checks from update 10,000
on. ParlAI's TrainLoop has no "not before" option; ``recipes/mime_ed.sh`` runs ``-vstep 1000
-vp 3 -vmt ppl -vmm min``, where checks before 10,000 also count: the same rule as long as
valid ppl keeps improving through the first ten checks (the learning rate is still warming
up until update 8,000); the run's log shows whether a check before 10,000 failed to improve.
"""
from typing import Optional

import torch
from parlai.core.metrics import AverageMetric
from parlai.core.opt import Opt
from parlai.core.params import ParlaiParser
from parlai.utils import logging

from parlai_empathy import emotions
from parlai_empathy.emotion_generator import EmotionGeneratorAgent
from parlai_empathy.modules.mime import POSTERIORS, MimeConfig, MimeModel

AGENT_NAME = "empathy/mime"


class MimeAgent(EmotionGeneratorAgent):
    """MIME generator: emotion classifier, polarity-grouped (stochastic) emotion mixtures,
    emotion mimicry, gated emotion context, decoder."""

    AGENT_NAME = AGENT_NAME
    REQUIRED_WEIGHTS = "encoder.mimic_encoder."
    MODEL_NAME = "MIME"

    @classmethod
    def add_cmdline_args(
        cls, parser: ParlaiParser, partial_opt: Optional[Opt] = None
    ) -> ParlaiParser:
        super().add_cmdline_args(parser, partial_opt=partial_opt)
        group = parser.add_argument_group("MIME arguments")
        group.add_argument("--mimicry", type="bool", default=True,
                           help="Emotion mimicry: the context's polarity decides which group's "
                           "emotion vector is the mimicking one (off: the first emotion-input "
                           "encoder always reads the positive group, the second the negative).")
        group.add_argument("--stochastic-mixture", type="bool", default=True,
                           help="Sample each group's mixture weights from a latent with a "
                           "prior and a posterior and add their KL to the loss (the released "
                           "code); off: the classifier's softmax within each group.")
        group.add_argument("--emotion-grouping", type="bool", default=True,
                           help="Split the emotions by polarity (ED: MIME's 13 positive / 19 "
                           "negative); off: one group of all emotions.")
        group.add_argument("--mime-posterior", choices=POSTERIORS, default="original",
                           help="original: the posterior reads the context summary and the "
                           "emotion-input encoding of its group (the released code); response: "
                           "it reads the context and the gold response, and training mixes "
                           "from its sample.")
        group.add_argument("--latent-size", type=int, default=300,
                           help="Size of each group's latent (the original's out_dim).")
        group.add_argument("--mime-eval-gold-polarity", type="bool", default=False,
                           help="Give the evaluation loss (ppl) the gold emotion's polarity, "
                           "as the original's reported test ppl; generation always uses the "
                           "predicted emotion's.")
        parser.set_defaults(
            gradient_clip=2.0,
            display_add_fields="emotion,emotion_prob,polarity",
        )
        return parser

    def build_network(self) -> MimeModel:
        opt = self.opt
        groups = emotions.polarity_groups(self.label_set.name)
        num_emotions = len(self.label_set.labels)
        if not opt["emotion_grouping"]:
            groups = (("all", tuple(range(num_emotions))),)
        elif len(groups) == 1:
            logging.warning(
                f"MIME: every {self.label_set.name} emotion is {groups[0][0]}, so the polarity "
                "grouping has one group: both emotion-input encoders read its mixture and "
                "--mimicry changes nothing"
            )
        return MimeModel(MimeConfig(
            **self._config_kwargs(),
            emotion_groups=tuple(ids for _, ids in groups),
            mimicry=opt["mimicry"],
            stochastic=opt["stochastic_mixture"],
            posterior=opt["mime_posterior"],
            latent_size=opt["latent_size"],
        ))

    def _training_input(self, batch):
        """Training: the gold emotion picks the mimicking group and the gold response switches
        the posterior on. Evaluation: the predicted emotion and the prior (the gold polarity
        with ``--mime-eval-gold-polarity``)."""
        text_vec, dialogue_states = self._model_input(batch)
        emotion_ids = batch.get("emotion_ids")
        if self.model.training:
            return (text_vec, dialogue_states, emotion_ids, batch.label_vec)
        if self.opt.get("mime_eval_gold_polarity") and emotion_ids is not None:
            return (text_vec, dialogue_states, emotion_ids)
        return (text_vec, dialogue_states)

    def _extra_losses(self, batch, model_output) -> torch.Tensor:
        """``KL(posterior || prior)`` summed over the batch (zero without the posterior)."""
        kl = model_output[2].kl.float()
        if self.model.training and self.opt.get("stochastic_mixture", True):
            self.record_local_metric("kl", AverageMetric.many(kl))
        return kl.sum()

    def eval_step(self, batch):
        output = super().eval_step(batch)
        if output is not None and output.get("emotion") is not None:
            output["polarity"] = [
                emotions.label_polarity(self.label_set.name, name) for name in output["emotion"]
            ]
        return output

