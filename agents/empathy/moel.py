"""MoEL: Mixture of Empathetic Listeners (Lin et al., EMNLP 2019) as a ParlAI agent.

Train on EmpatheticDialogues (listener turns as labels, the whole dialogue before as context,
the gold emotion from each message's ``emotion`` field), with the official run's sizes::

    parlai train_model -m empathy/moel -t empathetic_dialogues --train-experiencer-only true \
        -mf /tmp/moel/model -vstep 2000 -vp 3 -vmt ppl -vmm min --embedding-file glove.6B.300d.txt

Chat with it (the reply also carries the predicted emotion and its probability)::

    parlai interactive -mf /tmp/moel/model

The network is :class:`parlai_empathy.modules.moel.MoelModel`; this agent only maps options to
a :class:`~parlai_empathy.modules.moel.MoelConfig`, adds dialogue states and emotion ids to
ParlAI's batches, and adds the emotion loss and metrics (``emotion_acc``, ``emotion_acc@5``,
``emotion_loss``) to the generation loss.

Choices (see also ``parlai_empathy/modules/moel.py``):

* **Dialogue states.** The original prepends ``CLS`` and tags every token of context turn ``i``
  with ``USR`` (``i`` even) or ``SYS`` (``i`` odd), counting from the first turn, which is
  always the speaker in its data (an odd number of turns, the last one the speaker's). ParlAI
  joins the episode's turns with ``--delimiter`` (default newline), so we count from the *end*:
  the last turn (the one we answer) and every second one before it are the user's, the others
  our own; a delimiter takes the state of the turn it opens. On MoEL's data this is the same
  assignment, and it stays right for contexts of either parity (e.g. ED's responder side).
  ``--delimiter ' '`` reproduces the original's input exactly (turns joined with no token).
* **Emotion pooling.** The classifier reads the encoder output at ``CLS`` (the original's
  default); ``--emotion-pooling mean`` averages the non-padding positions (the original's
  ``--mean_query`` also averaged padding).
* **Label sets.** ``--emotion-labels ed32``: the 32 ED emotions in MoEL's id order, read from
  the ``emotion`` field; ``esconv``: ESConv's 11 ``emotion_type`` values. ``auto`` (default)
  picks ``esconv`` when every task is ``esconv`` and ``ed32`` otherwise; the resolved set is
  saved with the model. There is one listener per label of the set.
* **Noam schedule.** The original's ``NoamOpt(d, factor=1, warmup=8000)`` sets
  ``lr(step) = factor * d^-0.5 * min(step^-0.5, step * warmup^-1.5)`` with
  Adam(0.9, 0.98, eps 1e-9). ParlAI's ``invsqrt`` scheduler gives the same curve when
  ``--learningrate`` is its peak ``factor * d^-0.5 * warmup^-0.5`` (computed from
  ``--noam-factor``, ``--hidden-size`` and ``--warmup-updates`` when ``--learningrate`` is left
  at -1), ``--invsqrt-lr-decay-gamma`` equals ``--warmup-updates`` (set when left at -1) and
  ``--warmup-rate`` is ``1 / warmup`` (set when left at -1): step ``k`` then gets
  ``peak * (1/W + (k-1)/W * (1 - 1/W))`` during warm-up (Noam: ``peak * k/W``, at most
  ``peak/W`` apart) and exactly Noam's ``peak * sqrt(W/k)`` after it. No gradient clipping,
  as in the original (``--gradient-clip -1``).
* **Loss.** Label-smoothed NLL (``--label-smoothing 0.1``: 0.9 on the target, 0.1 spread over
  the vocabulary less the target and padding, the original's ``LabelSmoothing``, without its
  constant entropy term) **summed** over the batch's target tokens like the original's
  ``KLDivLoss(reduction='sum')`` (``--gen-loss-reduction mean`` averages per token, ParlAI's
  way), plus the emotion cross-entropy averaged over the batch (binary cross-entropy on the
  one-hot for ``--moel-gating sigmoid``, as the original). ParlAI's ``loss``/``ppl`` report the
  plain per-token NLL, like the original's PPL.
* **Oracle schedule.** The official run (``--schedule 10000``) replaces the gate by the gold
  emotion's one-hot on a training batch with probability ``1e-4 + (1 - 1e-4) *
  exp(-step / 10000)``; ``--oracle-schedule`` (0 disables). Unlike the original, the choice
  never leaks into evaluation.
* **Interactive display.** Every generated reply has ``emotion`` (name) and ``emotion_prob``
  fields; this agent makes ``--display-add-fields`` default to ``emotion,emotion_prob`` so
  ``parlai interactive`` shows them under the reply without touching its text (which goes back
  into the dialogue history).
* **Other defaults.** Batch size 16 (left at ParlAI's 1 under ``parlai interactive``, whose
  world would otherwise batch the human); beam 5 with the original's search: no length
  penalty, stop when the best hypothesis ends and return it (``--beam-selection first_top``,
  :mod:`parlai_empathy.decoding`; ``rescored`` is ParlAI's rule); ``--label-truncate 50``,
  which ParlAI also uses as the longest generation (the original's 50 decoding steps); no
  dropout (the official run set none); a lower-cased dictionary; ``--inference greedy``
  forces ``--beam-size 1``.
* **Deliberate differences.** Padded encoder positions are zeroed before each width-3
  convolution (the original lets padding reach the last real token, so its outputs depend on
  the batch); the oracle is drawn for the current batch (the original draws it for the next
  one, through a global); its gate is the gold one-hot for every gating (the original's
  ``sigmoid(1000 * one-hot)`` gives the other listeners 0.5). Sparse listeners give the
  unselected ones zero gradients, as the dense mixture does (``MoelModel.parameter_anchor``).
"""
import math
import random
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from parlai.core.agents import load_agent_module
from parlai.core.message import Message
from parlai.core.metrics import AverageMetric
from parlai.core.opt import Opt
from parlai.core.params import ParlaiParser
from parlai.core.torch_generator_agent import PPLMetric, TorchGeneratorAgent
from parlai.utils import logging
from parlai.utils.io import PathManager
from parlai.utils.misc import warn_once
from parlai.utils.torch import padded_tensor

from parlai_empathy import emotions
from parlai_empathy.decoding import BEAM_SELECTIONS, FirstTopBeamSearch
from parlai_empathy.embeddings import (
    NO_VECTORS,
    PACKAGED_GLOVE,
    embedding_dimension,
    load_word_vectors,
)
from parlai_empathy.metrics import GenerationMetricsMixin
from parlai_empathy.modules.moel import (
    GATINGS,
    POOLINGS,
    STATE_CLS,
    STATE_SELF,
    STATE_USER,
    MoelConfig,
    MoelModel,
)

AGENT_NAME = "empathy/moel"


@dataclass(frozen=True)
class EmotionLabelSet:
    """The emotions a model classifies (one listener each) and where a message keeps one."""

    name: str
    labels: Tuple[str, ...]
    field: str
    to_id: Callable[[str], int]


def _esconv_id(name: str) -> int:
    return emotions.esconv_emotion_type_id(name.strip().lower() if isinstance(name, str) else name)


LABEL_SETS: Dict[str, EmotionLabelSet] = {
    "ed32": EmotionLabelSet("ed32", emotions.ED_EMOTIONS, "emotion", emotions.emotion_id),
    "esconv": EmotionLabelSet(
        "esconv", emotions.ESCONV_EMOTION_TYPES, "emotion_type", _esconv_id
    ),
}


def resolve_label_set(opt: Opt) -> str:
    """``--emotion-labels``, with ``auto`` resolved from ``--task``."""
    choice = opt.get("emotion_labels") or "auto"
    if choice != "auto":
        if choice not in LABEL_SETS:
            raise ValueError(
                f"--emotion-labels {choice!r} is not one of {', '.join(LABEL_SETS)} or auto"
            )
        return choice
    tasks = [t.split(":")[0].strip() for t in (opt.get("task") or "").split(",") if t.strip()]
    is_esconv = [t in ("esconv", "parlai.tasks.esconv.agents") for t in tasks]
    if tasks and all(is_esconv):
        return "esconv"
    if any(is_esconv):
        raise ValueError(
            f"--task {opt.get('task')} mixes ESConv with other tasks; choose the emotion label "
            "set explicitly with --emotion-labels ed32 or --emotion-labels esconv"
        )
    return "ed32"


class MoelAgent(GenerationMetricsMixin, TorchGeneratorAgent):
    """MoEL generator: emotion tracker, emotion listeners, meta listener."""

    @classmethod
    def add_cmdline_args(
        cls, parser: ParlaiParser, partial_opt: Optional[Opt] = None
    ) -> ParlaiParser:
        super().add_cmdline_args(parser, partial_opt=partial_opt)
        group = parser.add_argument_group("MoEL arguments")
        group.add_argument("--embedding-size", type=int, default=300,
                           help="Size of the word embeddings the encoder and decoder read.")
        group.add_argument("--hidden-size", type=int, default=300,
                           help="Model (hidden) size of the encoder, listeners and meta listener.")
        group.add_argument("--num-layers", type=int, default=1,
                           help="Encoder layers, and meta-listener layers (each listener is "
                           "one decoder layer, as in the original).")
        group.add_argument("--num-heads", type=int, default=2, help="Attention heads.")
        group.add_argument("--key-depth", type=int, default=40,
                           help="Total query/key depth over all heads.")
        group.add_argument("--value-depth", type=int, default=40,
                           help="Total value depth over all heads.")
        group.add_argument("--filter-size", type=int, default=50,
                           help="Inner size of the convolutional feed-forward block.")
        group.add_argument("--ffn-kernel-size", type=int, default=3,
                           help="Width of the feed-forward convolutions.")
        group.add_argument("--moel-gating", choices=GATINGS, default="topk",
                           help="topk: softmax over the --moel-topk largest emotion logits "
                           "(the paper); soft: softmax over all; sigmoid: independent sigmoids "
                           "(with a binary cross-entropy emotion loss).")
        group.add_argument("--moel-topk", type=int, default=5,
                           help="Listeners mixed per example with --moel-gating topk.")
        group.add_argument("--emotion-pooling", choices=POOLINGS, default="cls",
                           help="Encoder summary the emotion classifier reads.")
        group.add_argument("--shared-listener", type="bool", default=True,
                           help="Add MoEL's shared listener to the mixture.")
        group.add_argument("--sparse-listeners", type="bool", default=True,
                           help="Run each listener only on the examples whose gate selects "
                           "it (same outputs as the dense computation, faster with topk).")
        group.add_argument("--emotion-labels", choices=["auto", *LABEL_SETS], default="auto",
                           help="Emotion label set (one listener per label): ed32 reads the "
                           "'emotion' field, esconv the 'emotion_type' field; auto: esconv "
                           "for -t esconv, else ed32.")
        group.add_argument("--emotion-loss-weight", type=float, default=1.0,
                           help="Weight of the emotion classification loss.")
        group.add_argument("--beam-selection", choices=BEAM_SELECTIONS, default="first_top",
                           help="first_top: stop when the best hypothesis ends and return "
                           "it (MoEL's own beam); rescored: ParlAI's (collect beam-size "
                           "finished hypotheses, rank them after --beam-length-penalty).")
        group.add_argument("--label-smoothing", type=float, default=0.1,
                           help="Label smoothing of the generation loss (0 disables).")
        group.add_argument("--gen-loss-reduction", choices=["sum", "mean"], default="sum",
                           help="sum: over the batch's target tokens, as the original; "
                           "mean: per target token, as ParlAI.")
        group.add_argument("--oracle-schedule", type=float, default=10000,
                           help="Replace the gate by the gold emotion on a training batch "
                           "with probability 1e-4 + (1 - 1e-4) * exp(-step / this); 0 disables.")
        group.add_argument("--noam-factor", type=float, default=1.0,
                           help="With --learningrate -1: lr = this * hidden^-0.5 * "
                           "warmup^-0.5, the peak of the Noam schedule.")
        group.add_argument("--embedding-file", type=str, default=PACKAGED_GLOVE,
                           help=f"Word vectors: '{PACKAGED_GLOVE}' (packaged 50-d GloVe), a "
                           f"GloVe text file of any dimension, or '{NO_VECTORS}' (random). A "
                           "dimension other than --embedding-size gets a learned projection.")
        group.add_argument("--word-vector-size", type=int, default=None, hidden=True,
                           help="Size of the embedding table; set from --embedding-file.")
        group.add_argument("--input-dropout", type=float, default=0.0,
                           help="Dropout on the embeddings.")
        group.add_argument("--dropout", type=float, default=0.0,
                           help="Dropout on each residual sum (the original's layer dropout).")
        group.add_argument("--attention-dropout", type=float, default=0.0,
                           help="Dropout on attention weights.")
        group.add_argument("--relu-dropout", type=float, default=0.0,
                           help="Dropout after the feed-forward activations.")
        parser.set_defaults(
            dict_lower=True,
            dict_tokenizer="re",
            optimizer="adam",
            betas="0.9,0.98",
            adam_eps=1e-9,
            learningrate=-1,
            lr_scheduler="invsqrt",
            warmup_updates=8000,
            warmup_rate=-1,
            gradient_clip=-1,
            inference="beam",
            beam_size=5,
            beam_length_penalty=0.0,
            label_truncate=50,
            text_truncate=512,
            display_add_fields="emotion,emotion_prob",
        )
        if not (partial_opt or {}).get("interactive_mode"):
            # the original's batch size; not for `parlai interactive`, whose world would
            # become a batch world around the human agent
            parser.set_defaults(batchsize=16)
        return parser

    def __init__(self, opt: Opt, shared=None):
        if not shared:
            self._check_model_files(opt)
            opt["emotion_labels"] = resolve_label_set(opt)
            self._resolve_schedule(opt)
            if opt.get("embedding_type", "random") != "random":
                logging.warning("MoEL reads word vectors from --embedding-file; ParlAI's "
                                f"--embedding-type {opt['embedding_type']} is ignored")
            if opt.get("inference") == "greedy":
                opt["beam_size"] = 1  # our default is beam 5; ParlAI's greedy search needs 1
        self.label_set = LABEL_SETS[opt["emotion_labels"]]
        super().__init__(opt, shared)
        self._oracle_random = random.Random(0)

    # --- options -----------------------------------------------------------------------------

    @staticmethod
    def _resolve_schedule(opt: Opt):
        """Fill the Noam mapping into ParlAI's invsqrt options (see the module docstring)."""
        warmup = opt.get("warmup_updates", -1)
        if opt.get("learningrate", 1) <= 0:
            peak = opt.get("noam_factor", 1.0) * opt.get("hidden_size", 300) ** -0.5
            if warmup > 0:
                peak *= warmup ** -0.5
            opt["learningrate"] = peak
            logging.info(f"MoEL: Noam peak learning rate {peak:.6g}")
        if opt.get("lr_scheduler") == "invsqrt" and opt.get("invsqrt_lr_decay_gamma", -1) <= 0:
            opt["invsqrt_lr_decay_gamma"] = max(warmup, 1)
        if opt.get("warmup_rate", 1e-4) <= 0:
            opt["warmup_rate"] = 1.0 / warmup if warmup > 0 else 1e-4

    @staticmethod
    def _check_model_files(opt: Opt):
        """Refuse, clearly, a --model-file/--init-model saved by another agent."""
        for flag, path in (("--init-model", opt.get("init_model")),
                           ("--model-file", opt.get("model_file"))):
            if not path or not PathManager.exists(path) or not PathManager.exists(path + ".opt"):
                continue
            saved_model = Opt.load(path + ".opt").get("model")
            if saved_model and not _is_moel_agent(saved_model):
                raise RuntimeError(
                    f"{flag} {path} was saved by '-m {saved_model}', not by {AGENT_NAME}: its "
                    f"weights cannot be loaded into MoEL. Load it with -m {saved_model}, or "
                    f"train MoEL into a new --model-file."
                )

    def _model_config(self) -> MoelConfig:
        opt = self.opt
        return MoelConfig(
            vocab_size=len(self.dict),
            padding_idx=self.NULL_IDX,
            start_idx=self.START_IDX,
            end_idx=self.END_IDX,
            unknown_idx=self.dict[self.dict.unk_token],
            num_emotions=len(self.label_set.labels),
            embedding_size=opt["embedding_size"],
            word_vector_size=self._word_vector_size(),
            hidden_size=opt["hidden_size"],
            num_layers=opt["num_layers"],
            num_heads=opt["num_heads"],
            key_depth=opt["key_depth"],
            value_depth=opt["value_depth"],
            filter_size=opt["filter_size"],
            kernel_size=opt["ffn_kernel_size"],
            gating=opt["moel_gating"],
            topk=opt["moel_topk"],
            emotion_pooling=opt["emotion_pooling"],
            shared_listener=opt["shared_listener"],
            sparse_listeners=opt["sparse_listeners"],
            input_dropout=opt["input_dropout"],
            layer_dropout=opt["dropout"],
            attention_dropout=opt["attention_dropout"],
            relu_dropout=opt["relu_dropout"],
        )

    def _word_vector_size(self) -> int:
        if self.opt.get("word_vector_size"):
            return self.opt["word_vector_size"]
        source = self.opt.get("embedding_file") or NO_VECTORS
        size = self.opt["embedding_size"] if source == NO_VECTORS else embedding_dimension(source)
        self.opt["word_vector_size"] = size  # saved with the model: reloading needs no file
        return size

    # --- model -------------------------------------------------------------------------------

    def build_model(self):
        model = MoelModel(self._model_config())
        will_load = any(
            path and PathManager.exists(path)
            for path in (self.opt.get("init_model"), self.opt.get("model_file"))
        )
        if not will_load:
            self._copy_word_vectors(model)
        return model

    def _copy_word_vectors(self, model: MoelModel):
        source = self.opt.get("embedding_file") or NO_VECTORS
        if source == NO_VECTORS:
            return
        words = [self.dict.ind2tok[i] for i in range(len(self.dict))]
        vectors = load_word_vectors(source, words)
        table = model.embeddings.table.weight
        if vectors.dim != table.size(1):
            raise ValueError(
                f"{source} has {vectors.dim}-d vectors but the model was configured for "
                f"{table.size(1)}-d ones (--word-vector-size)"
            )
        with torch.no_grad():
            # as the original: N(0, 0.01) for words without a vector
            table.normal_(0.0, 0.01)
            found = torch.from_numpy(vectors.found)
            table[found] = torch.from_numpy(vectors.vectors[vectors.found]).to(table.dtype)
            table[self.NULL_IDX].zero_()
        logging.info(
            f"MoEL embeddings: {int(vectors.found.sum()):,d} of {len(words):,d} dictionary "
            f"tokens ({100 * vectors.coverage:.1f}%) found in {source} ({vectors.dim}-d); the "
            "rest start from N(0, 0.01)"
            + (f"; projected to {self.opt['embedding_size']}-d"
               if vectors.dim != self.opt["embedding_size"] else "")
        )

    def load_state_dict(self, state_dict):
        if not any(key.startswith("decoder.listeners.") for key in state_dict):
            raise RuntimeError(
                f"the model file does not hold a MoEL model (no listener weights; it was saved "
                f"by another agent); load it with the agent that saved it, or train "
                f"{AGENT_NAME} into a new --model-file"
            )
        try:
            super().load_state_dict(state_dict)
        except RuntimeError as err:
            raise RuntimeError(
                f"{err}\n-----------------\nThe MoEL weights in the model file do not fit this "
                "model's sizes: options such as --hidden-size, --num-layers, --emotion-labels "
                "(number of listeners) or the dictionary differ from the ones it was trained "
                "with; drop them from the command line to use the saved ones."
            ) from None

    # --- data --------------------------------------------------------------------------------

    def _set_text_vec(self, obs, history, truncate):
        obs = super()._set_text_vec(obs, history, truncate)
        if "text" in obs and obs.get("text_vec") is None and history.get_history_str() == "":
            # an empty context (ParlAI would drop the example): MoEL still reads its CLS
            obs.force_set("text_vec", torch.LongTensor([]))
        if obs.get("text_vec") is not None:
            states = self._dialogue_states(history, obs.get("context_original_length"))
            states = self._check_truncate(states, truncate, not self.history_reversed)
            obs.force_set("dialogue_state_vec", torch.LongTensor(states))
        return obs

    @staticmethod
    def _dialogue_states(history, length: Optional[int]) -> List[int]:
        """Per history token: STATE_USER for the last turn and every second turn before it,
        STATE_SELF for the others; a delimiter belongs to the turn it opens."""
        vecs = history.history_vecs
        delimiter = len(history.delimiter_tok)
        states: List[int] = []
        for i, vec in enumerate(vecs):
            state = STATE_USER if (len(vecs) - 1 - i) % 2 == 0 else STATE_SELF
            if i:
                states.extend([state] * delimiter)
            states.extend([state] * len(vec))
        if history.temp_history is not None:
            states.extend([STATE_USER] * len(history.parse(history.temp_history)))
        if history._global_end_token is not None:
            states.append(STATE_USER)
        if history.reversed:
            states.reverse()
        if length is not None and len(states) != length:
            # text_vec did not come from this history (e.g. a teacher's own 'text_vec')
            warn_once("MoEL: context not built from the dialogue history; all its tokens are "
                      "treated as the user's turn")
            states = [STATE_USER] * length
        return states

    def batchify(self, obs_batch, sort=False):
        batch = super().batchify(obs_batch, sort=sort)
        if batch.get("valid_indices") is None:
            return batch
        exs = [obs_batch[i] for i in batch.valid_indices.tolist()]
        batch["dialogue_states"] = None
        if batch.text_vec is not None:
            states = [
                ex.get("dialogue_state_vec", torch.full((len(ex.get("text_vec", [])),), STATE_USER))
                for ex in exs
            ]
            padded, _ = padded_tensor(states, pad_idx=STATE_CLS, fp16friendly=self.fp16)
            batch["dialogue_states"] = padded[:, : batch.text_vec.size(1)]
        batch["emotion_ids"] = self._emotion_ids(exs, bool(batch.is_training))
        return batch

    def _emotion_ids(self, exs: List[Message], is_training: bool) -> Optional[torch.LongTensor]:
        """Gold emotion ids of labelled examples; an error when training without them."""
        if not any("labels" in ex or "eval_labels" in ex for ex in exs):
            return None
        field = self.label_set.field
        values = [ex.get(field) for ex in exs]
        missing = [ex for ex, value in zip(exs, values) if value in (None, "")]
        if missing:
            example = missing[0]
            fields = [
                key for key in sorted(example.keys())
                if not key.endswith(("_vec", "_choice", "_length", "_rate"))
                and key != "full_text"
            ]
            message = (
                f"{AGENT_NAME} needs each example's gold emotion in the '{field}' field of the "
                f"teacher's messages (--emotion-labels {self.label_set.name}), but an example "
                f"from '{example.get('id', 'the task')}' has none (its fields: "
                f"{', '.join(fields)}). -t empathetic_dialogues provides "
                "'emotion', -t esconv 'emotion_type'."
            )
            if is_training:
                raise ValueError(message)
            warn_once(message + " Emotion metrics are skipped for such batches.")
            return None
        ids = []
        for ex, value in zip(exs, values):
            try:
                ids.append(self.label_set.to_id(value))
            except ValueError as err:
                raise ValueError(
                    f"{err} (field '{field}' of the example {str(ex.get('text', ''))[:60]!r}; "
                    f"--emotion-labels {self.label_set.name})"
                ) from None
        return torch.LongTensor(ids)

    def _model_input(self, batch):
        return (batch.text_vec, batch.get("dialogue_states"))

    # --- training ----------------------------------------------------------------------------

    def _use_oracle(self) -> bool:
        schedule = self.opt.get("oracle_schedule", 0)
        if schedule <= 0:
            return False
        step = self._number_training_updates
        probability = 1e-4 + (1 - 1e-4) * math.exp(-step / schedule)
        return self._oracle_random.random() <= probability

    def compute_loss(self, batch, return_output=False):
        if batch.label_vec is None:
            raise ValueError("Cannot compute loss without a label.")
        emotion_ids = batch.get("emotion_ids")
        oracle = None
        if self.model.training and emotion_ids is not None and self._use_oracle():
            oracle = emotion_ids
        model_output = self.model(*self._model_input(batch), oracle, ys=batch.label_vec)
        scores, preds, encoder_states = model_output

        # generation: NLL for the metrics, label-smoothed NLL for the gradient
        labels = batch.label_vec
        notnull = labels.ne(self.NULL_IDX)
        logprobs = F.log_softmax(scores.float(), dim=-1)  # (B, T, V)
        target_logprobs = logprobs.gather(-1, labels.unsqueeze(-1)).squeeze(-1)  # (B, T)
        nll = -target_logprobs
        smoothing = self.opt.get("label_smoothing", 0.0)
        token_loss = nll
        if smoothing > 0:
            others = logprobs.sum(-1) - target_logprobs - logprobs[..., self.NULL_IDX]
            token_loss = (1 - smoothing) * nll - smoothing / (logprobs.size(-1) - 2) * others
        num_tokens = notnull.long().sum(dim=-1)
        gen_loss = (token_loss * notnull).sum()
        if self.opt.get("gen_loss_reduction", "sum") == "mean":
            gen_loss = gen_loss / num_tokens.sum().clamp(min=1)

        self.record_local_metric("loss", AverageMetric.from_mask(nll, notnull))
        self.record_local_metric("ppl", PPLMetric.from_mask(nll, notnull))
        correct = (labels == preds) & notnull
        self.record_local_metric("token_acc", AverageMetric.from_mask(labels == preds, notnull))
        self.record_local_metric(
            "token_em", AverageMetric.many(correct.sum(dim=-1) == num_tokens)
        )

        loss = gen_loss
        if emotion_ids is not None:
            loss = loss + self.opt.get("emotion_loss_weight", 1.0) * self._emotion_loss(
                encoder_states.emotion_logits.float(), emotion_ids
            )
        if self.model.training:
            # zero gradients for unselected listeners, as the dense mixture gives (and DDP needs)
            loss = loss + getattr(self.model, "module", self.model).parameter_anchor()  # DDP
        if return_output:
            return loss, model_output
        return loss

    def _emotion_loss(self, logits: torch.Tensor, emotion_ids: torch.Tensor) -> torch.Tensor:
        if self.opt.get("moel_gating") == "sigmoid":
            targets = F.one_hot(emotion_ids, logits.size(-1)).to(logits.dtype)
            per_example = F.binary_cross_entropy_with_logits(
                logits, targets, reduction="none"
            ).mean(-1)
        else:
            per_example = F.cross_entropy(logits, emotion_ids, reduction="none")
        k = min(5, logits.size(-1))
        top = logits.topk(k, dim=-1).indices
        self.record_local_metric("emotion_loss", AverageMetric.many(per_example))
        self.record_local_metric(
            "emotion_acc", AverageMetric.many(top[:, 0] == emotion_ids)
        )
        self.record_local_metric(
            "emotion_acc@5", AverageMetric.many((top == emotion_ids[:, None]).any(-1))
        )
        return per_example.mean()

    # --- evaluation and chat -----------------------------------------------------------------

    def _treesearch_factory(self, device, verbose=False):
        """ParlAI's searches, and MoEL's own beam rule with ``--beam-selection first_top``."""
        if self.opt.get("inference") != "beam" or self.opt.get("beam_selection") != "first_top":
            return super()._treesearch_factory(device, verbose=verbose)
        return FirstTopBeamSearch(
            self.opt.get("beam_size", 1),
            min_length=self.beam_min_length,
            block_ngram=self.beam_block_ngram,
            context_block_ngram=self.beam_context_block_ngram,
            length_penalty=self.opt.get("beam_length_penalty", 0.65),
            padding_token=self.NULL_IDX,
            bos_token=self.START_IDX,
            eos_token=self.END_IDX,
            device=device,
            verbose=verbose,
            gpu_beam_blocking=self.opt.get("gpu_beam_blocking", False),
        )

    def eval_step(self, batch):
        output = super().eval_step(batch)
        if output is None or batch.text_vec is None:
            return output
        model = getattr(self.model, "module", self.model)  # DDP
        logits = model.encoder(*self._encoder_input(batch)).emotion_logits.float()
        if self.opt.get("moel_gating") == "sigmoid":
            probabilities = torch.sigmoid(logits)
        else:
            probabilities = F.softmax(logits, dim=-1)
        best_prob, best_id = probabilities.max(dim=-1)
        output["emotion"] = [self.label_set.labels[i] for i in best_id.tolist()]
        output["emotion_prob"] = [round(p, 4) for p in best_prob.tolist()]
        return output


def _is_moel_agent(model_name: str) -> bool:
    try:
        return issubclass(load_agent_module(model_name), MoelAgent)
    except Exception:  # an agent that cannot be imported here is not MoEL either
        return False
