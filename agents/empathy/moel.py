"""MoEL: Mixture of Empathetic Listeners (Lin et al., EMNLP 2019) as a ParlAI agent.

Train on EmpatheticDialogues (listener turns as labels, the whole dialogue before as context,
the gold emotion from each message's ``emotion`` field), with the official run's sizes::

    parlai train_model -m empathy/moel -t empathetic_dialogues --train-experiencer-only true \
        -mf /tmp/moel/model -vstep 2000 -vp 3 -vmt ppl -vmm min

Chat with it (the reply also carries the predicted emotion and its probability)::

    parlai interactive -mf /tmp/moel/model

The network is :class:`parlai_empathy.modules.moel.MoelModel`. What MoEL shares with the other
emotion generators -- the papers' dictionary, dialogue states, label sets, Noam schedule, word
vectors, the smoothed summed loss with the emotion loss, the originals' beam, the emotion shown
in chat -- is :class:`parlai_empathy.emotion_generator.EmotionGeneratorAgent`; this file holds
what is MoEL's own:

* **Gating** (``--moel-gating``): ``topk`` (softmax over the ``--moel-topk`` largest emotion
  logits, the paper), ``soft`` or ``sigmoid`` (independent sigmoids with a binary cross-entropy
  emotion loss, the original code's non ``--softmax`` mode); ``--shared-listener``;
  ``--sparse-listeners`` (run a listener only on the rows that select it; same outputs).
* **Oracle schedule.** The official run (``--schedule 10000``) replaces the gate by the gold
  emotion's one-hot on a training batch with probability ``1e-4 + (1 - 1e-4) *
  exp(-step / 10000)``; ``--oracle-schedule`` (0 disables). Unlike the original, the choice
  never leaks into evaluation.
* **Emotion pooling.** The classifier reads the encoder output at ``CLS`` (the original's
  default); ``--emotion-pooling mean`` averages the non-padding positions (the original's
  ``--mean_query`` also averaged padding).
* **Deliberate differences.** Padded encoder positions are zeroed before each width-3
  convolution (the original lets padding reach the last real token, so its outputs depend on
  the batch); the oracle is drawn for the current batch (the original draws it for the next
  one, through a global); its gate is the gold one-hot for every gating (the original's
  ``sigmoid(1000 * one-hot)`` gives the other listeners 0.5). Sparse listeners give the
  unselected ones zero gradients, as the dense mixture does (``parameter_anchor``).
"""
import math
import random
from typing import Optional

from parlai.core.opt import Opt
from parlai.core.params import ParlaiParser

from parlai_empathy.emotion_generator import EmotionGeneratorAgent
from parlai_empathy.modules.moel import GATINGS, MoelConfig, MoelModel

AGENT_NAME = "empathy/moel"


class MoelAgent(EmotionGeneratorAgent):
    """MoEL generator: emotion tracker, emotion listeners, meta listener."""

    AGENT_NAME = AGENT_NAME
    REQUIRED_WEIGHTS = "decoder.listeners."
    MODEL_NAME = "MoEL"

    @classmethod
    def add_cmdline_args(
        cls, parser: ParlaiParser, partial_opt: Optional[Opt] = None
    ) -> ParlaiParser:
        super().add_cmdline_args(parser, partial_opt=partial_opt)
        group = parser.add_argument_group("MoEL arguments")
        group.add_argument("--moel-gating", choices=GATINGS, default="topk",
                           help="topk: softmax over the --moel-topk largest emotion logits "
                           "(the paper); soft: softmax over all; sigmoid: independent sigmoids "
                           "(with a binary cross-entropy emotion loss).")
        group.add_argument("--moel-topk", type=int, default=5,
                           help="Listeners mixed per example with --moel-gating topk.")
        group.add_argument("--shared-listener", type="bool", default=True,
                           help="Add MoEL's shared listener to the mixture.")
        group.add_argument("--sparse-listeners", type="bool", default=True,
                           help="Run each listener only on the examples whose gate selects "
                           "it (same outputs as the dense computation, faster with topk).")
        group.add_argument("--oracle-schedule", type=float, default=10000,
                           help="Replace the gate by the gold emotion on a training batch "
                           "with probability 1e-4 + (1 - 1e-4) * exp(-step / this); 0 disables.")
        return parser

    def __init__(self, opt: Opt, shared=None):
        super().__init__(opt, shared)
        self._oracle_random = random.Random(0)

    def _config_kwargs(self):
        opt = self.opt
        return dict(
            **super()._config_kwargs(),
            gating=opt["moel_gating"],
            topk=opt["moel_topk"],
            shared_listener=opt["shared_listener"],
            sparse_listeners=opt["sparse_listeners"],
        )

    def build_network(self) -> MoelModel:
        return MoelModel(MoelConfig(**self._config_kwargs()))

    def _emotion_sigmoid(self) -> bool:
        return self.opt.get("moel_gating") == "sigmoid"

    def _use_oracle(self) -> bool:
        schedule = self.opt.get("oracle_schedule", 0)
        if schedule <= 0:
            return False
        step = self._number_training_updates
        probability = 1e-4 + (1 - 1e-4) * math.exp(-step / schedule)
        return self._oracle_random.random() <= probability

    def _training_input(self, batch):
        """Training batches may route by the gold emotion (the oracle); evaluation never."""
        emotion_ids = batch.get("emotion_ids")
        oracle = None
        if self.model.training and emotion_ids is not None and self._use_oracle():
            oracle = emotion_ids
        return (*self._model_input(batch), oracle)
