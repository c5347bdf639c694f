"""The ParlAI agent base of the emotion generators (MoEL, and the models built on it).

An agent on this base is a file of what is its own (MoEL: ``parlai.agents.empathy.moel``):
its options, its ``nn.Module`` (built from :meth:`EmotionGeneratorAgent._config_kwargs`) and,
where it has them, extra model inputs or losses. Everything below is shared:

* **Dictionary.** The papers' token space by default (``--dict-tokenizer paper``:
  lower-cased, contraction-expanded, NLTK tokens; :mod:`parlai_empathy.dictionary`), so ppl is
  per paper token like the originals'; replies are detokenized for display and metrics.
* **Dialogue states.** The originals prepend ``CLS`` and tag every token of context turn
  ``i`` with ``USR`` (``i`` even) or ``SYS`` (``i`` odd), counting from the first turn, which
  is always the speaker in their data (an odd number of turns, the last one the speaker's).
  ParlAI joins the episode's turns with ``--delimiter`` (default newline), so we count from the
  *end*: the last turn (the one we answer) and every second one before it are the user's, the
  others our own; a delimiter takes the state of the turn it opens. On the originals' data this
  is the same assignment, and it stays right for contexts of either parity (e.g. ED's
  responder side). ``--delimiter ' '`` reproduces the originals' input exactly.
* **Label sets** (:data:`parlai_empathy.emotions.LABEL_SETS`). ``--emotion-labels ed32``: the
  32 ED emotions in MoEL's id order, read from the ``emotion`` field; ``esconv``: ESConv's 11
  ``emotion_type`` values; ``ed16``: the seed paper's 16 groups of the ED emotions, read from
  the same ``emotion`` field (``--emotion-groups 16`` turns ``ed32`` into it; MoEL then has 16
  listeners and the shared one). ``auto`` (default) picks ``esconv`` when every task is
  ``esconv`` and ``ed32`` otherwise; the resolved set is saved with the model.
* **Noam schedule.** The originals' ``NoamOpt(d, factor=1, warmup=8000)`` sets
  ``lr(step) = factor * d^-0.5 * min(step^-0.5, step * warmup^-1.5)`` with Adam(0.9, 0.98,
  eps 1e-9). ParlAI's ``invsqrt`` scheduler gives the same curve when ``--learningrate`` is
  its peak ``factor * d^-0.5 * warmup^-0.5`` (computed from ``--noam-factor``,
  ``--hidden-size`` and ``--warmup-updates`` when ``--learningrate`` is left at -1),
  ``--invsqrt-lr-decay-gamma`` equals ``--warmup-updates`` (set when left at -1) and
  ``--warmup-rate`` is ``1 / warmup`` (set when left at -1): step ``k`` then gets
  ``peak * (1/W + (k-1)/W * (1 - 1/W))`` during warm-up (Noam: ``peak * k/W``, at most
  ``peak/W`` apart) and exactly Noam's ``peak * sqrt(W/k)`` after it. No gradient clipping by
  default (``--gradient-clip -1``), as MoEL.
* **Word vectors.** ``--embedding-file`` (:mod:`parlai_empathy.embeddings`) initialises the
  table of a new model: N(0, 0.01) for words without a vector, as the originals; a file whose
  dimension differs from ``--embedding-size`` gets a learned projection. Default: the 300-d
  word2vec (``word2vec-bolukbasi-300``), which trained a better MoEL than the packaged 50-d
  GloVe at the same budget (``recipes/moel_ed_vectors.sh``: ED valid ppl 70.96 against 91.24
  after 2,000 updates).
* **Loss.** Label-smoothed NLL (``--label-smoothing 0.1``: 0.9 on the target, 0.1 spread over
  the vocabulary less the target and padding, the originals' ``LabelSmoothing`` without its
  constant entropy term) **summed** over the batch's target tokens like their
  ``KLDivLoss(reduction='sum')`` (``--gen-loss-reduction mean`` averages per token, ParlAI's
  way), plus the emotion cross-entropy averaged over the batch, plus a subclass's own terms
  (:meth:`EmotionGeneratorAgent._extra_losses`). ParlAI's ``loss``/``ppl`` report the plain
  per-token NLL, like the originals' PPL. Metrics ``emotion_acc``, ``emotion_acc@5``,
  ``emotion_loss``.
* **Search.** Beam 5 with the originals' rule (``--beam-selection first_top``,
  :mod:`parlai_empathy.decoding`; ``rescored`` is ParlAI's), no length penalty,
  ``--label-truncate 50`` (also the longest generation: their 50 decoding steps);
  ``--inference greedy`` forces ``--beam-size 1``.
* **Interactive display.** Every generated reply has ``emotion`` (name) and ``emotion_prob``
  fields, and ``--display-add-fields`` defaults to ``emotion,emotion_prob`` so ``parlai
  interactive`` shows them under the reply without touching its text.
* **Chat and training** (:mod:`parlai_empathy.chat`, :mod:`parlai_empathy.training`): a short
  banner, truncation notices, chat-only 3-gram blocking and Ctrl-C as ``[EXIT]`` in ``parlai
  interactive``; Ctrl-C in ``train_model`` saves a usable checkpoint. ParlAI's 0-1 ``bleu-4``
  is left out of the report (``--metrics default`` brings it back).
* **Speed, same numbers.** A training loss projects only the real label tokens to the
  vocabulary (:meth:`EmotionGeneratorModel.scoring_positions`; a batch's labels are padded to
  its longest, and 56% of the positions of ED batches of 16 are padding), and ``adam`` is
  fused (:class:`PaperAdam`, which is also the originals' Adam: no AMSGrad). A MoEL training
  step on real ED batches is 1.45x faster from the first change alone
  (``benchmarks/generator_train_step.py``).
* **Other defaults.** Batch size 16 (left at ParlAI's 1 under ``parlai interactive``, whose
  world would otherwise batch the human); no dropout (the official runs set none);
  validation on ``ppl`` (which exists with ``--skip-generation true`` too).
"""
from typing import Any, Dict, List, Optional, Tuple

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

from parlai_empathy import early_stopping, emotions
from parlai_empathy.chat import ChatMixin
from parlai_empathy.decoding import BEAM_SELECTIONS, FirstTopBeamSearch
from parlai_empathy.dictionary import PAPER_TOKENIZER, EmpathyDictionaryAgent
from parlai_empathy.embeddings import (
    NO_VECTORS,
    PACKAGED_GLOVE,
    WORD2VEC_BOLUKBASI,
    embedding_dimension,
    load_word_vectors,
)
from parlai_empathy.metrics import GenerationMetricsMixin
from parlai_empathy.modules.emotion_base import (
    POOLINGS,
    STATE_CLS,
    STATE_SELF,
    STATE_USER,
    EmotionGeneratorModel,
)
from parlai_empathy.teacher_metrics import set_default_metrics
from parlai_empathy.training import InterruptCheckpointMixin


class PaperAdam(torch.optim.Adam):
    """``--optimizer adam`` of the emotion generators: the originals' Adam, fused.

    * No AMSGrad. ParlAI's ``init_optim`` asks every ``adam`` for ``amsgrad=True``; the
      originals' ``NoamOpt`` wraps a plain ``torch.optim.Adam``, so it is turned off here.
      (MoEL v2 and every run before 2026-12-02 trained with AMSGrad; a checkpoint's saved
      optimizer state keeps the setting it was trained with when the run resumes.)
    * ``fused=True``: one kernel over all parameters. On CPU, torch's default is a loop over
      them: for MoEL's 13.6M parameters the fused step is about 3x faster (76 against 243 ms
      on one thread), the same update up to float rounding (``tests/test_moel.py``).
    """

    def __init__(self, params, **kwargs):
        kwargs.setdefault("fused", True)
        kwargs["amsgrad"] = False
        super().__init__(params, **kwargs)


class EmotionGeneratorAgent(
    ChatMixin, InterruptCheckpointMixin, GenerationMetricsMixin, TorchGeneratorAgent
):
    """Base of the emotion generators; a subclass sets the class attributes below and
    implements :meth:`build_network`."""

    #: ``-m`` name of the agent, used in error messages (``empathy/moel``)
    AGENT_NAME = ""
    #: a state-dict key prefix that only this model family has: a model file without it was
    #: saved by another agent (MoEL: ``decoder.listeners.``)
    REQUIRED_WEIGHTS = ""
    #: what the error messages call the model
    MODEL_NAME = "the model"

    @classmethod
    def dictionary_class(cls):
        return EmpathyDictionaryAgent

    @classmethod
    def optim_opts(cls):
        optims = super().optim_opts()
        optims["adam"] = PaperAdam
        return optims

    def init_optim(self, params, optim_states=None, saved_optim_type=None,
                   is_finetune: bool = False) -> bool:
        reset = super().init_optim(params, optim_states, saved_optim_type, is_finetune)
        if isinstance(self.optimizer, PaperAdam):
            # a state saved by a plain Adam brings its groups' 'fused': None along
            for group in self.optimizer.param_groups:
                group["fused"], group["foreach"] = True, None
        return reset

    @classmethod
    def add_cmdline_args(
        cls, parser: ParlaiParser, partial_opt: Optional[Opt] = None
    ) -> ParlaiParser:
        super().add_cmdline_args(parser, partial_opt=partial_opt)
        group = parser.add_argument_group("Emotion generator arguments")
        group.add_argument("--embedding-size", type=int, default=300,
                           help="Size of the word embeddings the encoder and decoder read.")
        group.add_argument("--hidden-size", type=int, default=300,
                           help="Model (hidden) size of every layer.")
        group.add_argument("--num-layers", type=int, default=1,
                           help="Encoder layers (and decoder layers, see the model's help).")
        group.add_argument("--num-heads", type=int, default=2, help="Attention heads.")
        group.add_argument("--key-depth", type=int, default=40,
                           help="Total query/key depth over all heads.")
        group.add_argument("--value-depth", type=int, default=40,
                           help="Total value depth over all heads.")
        group.add_argument("--filter-size", type=int, default=50,
                           help="Inner size of the convolutional feed-forward block.")
        group.add_argument("--ffn-kernel-size", type=int, default=3,
                           help="Width of the feed-forward convolutions.")
        group.add_argument("--emotion-pooling", choices=POOLINGS, default="cls",
                           help="Encoder summary the emotion classifier reads.")
        group.add_argument("--emotion-labels", choices=["auto", *emotions.LABEL_SETS],
                           default="auto",
                           help="Emotion label set: ed32 reads the 'emotion' field, esconv the "
                           "'emotion_type' field; auto: esconv for -t esconv, else ed32.")
        group.add_argument("--emotion-groups", type=int, choices=emotions.EMOTION_GROUP_CHOICES,
                           default=32,
                           help="32: the ED emotions (one listener each in MoEL); 16: the seed "
                           "paper's emotion groups (label set ed16: the same 'emotion' field, "
                           "each emotion mapped to its group; on PEC the field comes from "
                           "--pec-emotion-file).")
        group.add_argument("--emotion-loss-weight", type=float, default=1.0,
                           help="Weight of the emotion classification loss.")
        group.add_argument("--beam-selection", choices=BEAM_SELECTIONS, default="first_top",
                           help="first_top: the originals' beam (finished hypotheses stay in "
                           "the beam; stop when the best one ends and return it); rescored: "
                           "ParlAI's (collect beam-size finished hypotheses, rank them after "
                           "--beam-length-penalty).")
        group.add_argument("--label-smoothing", type=float, default=0.1,
                           help="Label smoothing of the generation loss (0 disables).")
        group.add_argument("--gen-loss-reduction", choices=["sum", "mean"], default="sum",
                           help="sum: over the batch's target tokens, as the originals; "
                           "mean: per target token, as ParlAI.")
        group.add_argument("--noam-factor", type=float, default=1.0,
                           help="With --learningrate -1: lr = this * hidden^-0.5 * "
                           "warmup^-0.5, the peak of the Noam schedule.")
        group.add_argument("--embedding-file", type=str, default=WORD2VEC_BOLUKBASI,
                           help=f"Word vectors: '{WORD2VEC_BOLUKBASI}' (300-d word2vec, "
                           "fetched by scripts/setup_env.sh; the better MoEL of the two at "
                           f"the same budget), '{PACKAGED_GLOVE}' (packaged 50-d GloVe), "
                           "a GloVe text or word2vec binary file of any "
                           f"dimension, or '{NO_VECTORS}' (random). A dimension other than "
                           "--embedding-size gets a learned projection.")
        group.add_argument("--word-vector-size", type=int, default=None, hidden=True,
                           help="Size of the embedding table; set from --embedding-file.")
        early_stopping.add_cmdline_args(group)
        group.add_argument("--input-dropout", type=float, default=0.0,
                           help="Dropout on the embeddings.")
        group.add_argument("--dropout", type=float, default=0.0,
                           help="Dropout on each residual sum (the originals' layer dropout).")
        group.add_argument("--attention-dropout", type=float, default=0.0,
                           help="Dropout on attention weights.")
        group.add_argument("--relu-dropout", type=float, default=0.0,
                           help="Dropout after the feed-forward activations.")
        parser.set_defaults(
            dict_lower=True,
            dict_tokenizer=PAPER_TOKENIZER,
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
        set_default_metrics(parser)
        if not (partial_opt or {}).get("interactive_mode"):
            # the originals' batch size; not for `parlai interactive`, whose world would
            # become a batch world around the human agent
            parser.set_defaults(batchsize=16)
        return parser

    def __init__(self, opt: Opt, shared=None):
        if not shared:
            self._check_model_files(opt)
            opt["emotion_labels"] = emotions.resolve_label_set(
                opt.get("emotion_labels"), opt.get("task"), opt.get("emotion_groups") or 32
            )
            self._resolve_schedule(opt)
            if opt.get("embedding_type", "random") != "random":
                logging.warning(f"{self.MODEL_NAME} reads word vectors from --embedding-file; "
                                f"ParlAI's --embedding-type {opt['embedding_type']} is ignored")
            if opt.get("inference") == "greedy":
                opt["beam_size"] = 1  # our default is beam 5; ParlAI's greedy search needs 1
        self.label_set = emotions.LABEL_SETS[opt["emotion_labels"]]
        super().__init__(opt, shared)

    # --- options -----------------------------------------------------------------------------

    @classmethod
    def _resolve_schedule(cls, opt: Opt):
        """Fill the Noam mapping into ParlAI's invsqrt options (see the module docstring)."""
        warmup = opt.get("warmup_updates", -1)
        if opt.get("learningrate", 1) <= 0:
            peak = opt.get("noam_factor", 1.0) * opt.get("hidden_size", 300) ** -0.5
            if warmup > 0:
                peak *= warmup ** -0.5
            opt["learningrate"] = peak
            logging.info(f"{cls.MODEL_NAME}: Noam peak learning rate {peak:.6g}")
        if opt.get("lr_scheduler") == "invsqrt" and opt.get("invsqrt_lr_decay_gamma", -1) <= 0:
            opt["invsqrt_lr_decay_gamma"] = max(warmup, 1)
        if opt.get("warmup_rate", 1e-4) <= 0:
            opt["warmup_rate"] = 1.0 / warmup if warmup > 0 else 1e-4

    @classmethod
    def _check_model_files(cls, opt: Opt):
        """Refuse, clearly, a --model-file/--init-model saved by an agent off this base."""
        for flag, path in (("--init-model", opt.get("init_model")),
                           ("--model-file", opt.get("model_file"))):
            if not path or not PathManager.exists(path) or not PathManager.exists(path + ".opt"):
                continue
            saved_model = Opt.load(path + ".opt").get("model")
            if saved_model and not is_emotion_generator(saved_model):
                raise RuntimeError(
                    f"{flag} {path} was saved by '-m {saved_model}', not by an emotion "
                    f"generator such as {cls.AGENT_NAME}: its weights cannot be loaded into "
                    f"{cls.MODEL_NAME}. Load it with -m {saved_model}, or train "
                    f"{cls.AGENT_NAME} into a new --model-file."
                )

    def _config_kwargs(self) -> Dict[str, Any]:
        """The :class:`~parlai_empathy.modules.emotion_base.EmotionGeneratorConfig` fields
        from the options and the dictionary."""
        opt = self.opt
        return dict(
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
            emotion_pooling=opt["emotion_pooling"],
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

    def build_network(self) -> EmotionGeneratorModel:
        """The subclass's model, freshly initialised."""
        raise NotImplementedError

    def build_model(self):
        model = self.build_network()
        will_load = any(
            path and PathManager.exists(path)
            for path in (self.opt.get("init_model"), self.opt.get("model_file"))
        )
        if not will_load:
            self._copy_word_vectors(model)
        return model

    def _copy_word_vectors(self, model: EmotionGeneratorModel):
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
            # as the originals: N(0, 0.01) for words without a vector
            table.normal_(0.0, 0.01)
            found = torch.from_numpy(vectors.found)
            table[found] = torch.from_numpy(vectors.vectors[vectors.found]).to(table.dtype)
            table[self.NULL_IDX].zero_()
        logging.info(
            f"{self.MODEL_NAME} embeddings: {int(vectors.found.sum()):,d} of {len(words):,d} "
            f"dictionary tokens ({100 * vectors.coverage:.1f}%) found in {source} "
            f"({vectors.dim}-d); the rest start from N(0, 0.01)"
            + (f"; projected to {self.opt['embedding_size']}-d"
               if vectors.dim != self.opt["embedding_size"] else "")
        )

    def load_state_dict(self, state_dict):
        if self.REQUIRED_WEIGHTS and not any(
            key.startswith(self.REQUIRED_WEIGHTS) for key in state_dict
        ):
            raise RuntimeError(
                f"the model file does not hold a {self.MODEL_NAME} model (no "
                f"'{self.REQUIRED_WEIGHTS}*' weights; it was saved by another agent); load it "
                f"with the agent that saved it, or train {self.AGENT_NAME} into a new "
                "--model-file"
            )
        try:
            super().load_state_dict(state_dict)
        except RuntimeError as err:
            raise RuntimeError(
                f"{err}\n-----------------\nThe {self.MODEL_NAME} weights in the model file do "
                "not fit this model's sizes: options such as --hidden-size, --num-layers, "
                "--emotion-labels or the dictionary differ from the ones it was trained with; "
                "drop them from the command line to use the saved ones."
            ) from None

    # --- data --------------------------------------------------------------------------------

    def _set_text_vec(self, obs, history, truncate):
        obs = super()._set_text_vec(obs, history, truncate)
        if "text" in obs and obs.get("text_vec") is None and history.get_history_str() == "":
            # an empty context (ParlAI would drop the example): the encoder still reads CLS
            obs.force_set("text_vec", torch.LongTensor([]))
        if obs.get("text_vec") is not None:
            states = self._dialogue_states(history, obs.get("context_original_length"))
            states = self._check_truncate(states, truncate, not self.history_reversed)
            obs.force_set("dialogue_state_vec", torch.LongTensor(states))
        return obs

    @classmethod
    def _dialogue_states(cls, history, length: Optional[int]) -> List[int]:
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
            warn_once(f"{cls.MODEL_NAME}: context not built from the dialogue history; all "
                      "its tokens are treated as the user's turn")
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
                f"{self.AGENT_NAME} needs each example's gold emotion in the '{field}' field of "
                f"the teacher's messages (--emotion-labels {self.label_set.name}), but an "
                f"example from '{example.get('id', 'the task')}' has none (its fields: "
                f"{', '.join(fields)}). -t empathetic_dialogues provides "
                "'emotion', -t esconv 'emotion_type', -t pec 'emotion' from "
                "--pec-emotion-file."
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

    def _training_input(self, batch) -> Tuple:
        """The model's inputs for the loss; a subclass may add training-only ones."""
        return self._model_input(batch)

    # --- training ----------------------------------------------------------------------------

    def compute_loss(self, batch, return_output=False):
        if batch.label_vec is None:
            raise ValueError("Cannot compute loss without a label.")
        module = getattr(self.model, "module", self.model)  # (DDP)
        if self.model.training and not return_output:
            # a training loss needs the label positions only (EmotionGeneratorModel.
            # scoring_positions): the same loss and gradients, less of the vocabulary layer
            with module.scoring_positions(batch.label_vec.ne(self.NULL_IDX)):
                model_output = self.model(*self._training_input(batch), ys=batch.label_vec)
        else:
            model_output = self.model(*self._training_input(batch), ys=batch.label_vec)
        scores, preds, encoder_states = model_output
        loss = self._generation_loss(batch.label_vec, scores, preds)
        emotion_ids = batch.get("emotion_ids")
        if emotion_ids is not None:
            loss = loss + self.opt.get("emotion_loss_weight", 1.0) * self._emotion_loss(
                encoder_states.emotion_logits.float(), emotion_ids
            )
        loss = loss + self._extra_losses(batch, model_output)
        if self.model.training:
            # zero gradients for skipped sub-networks, as a dense computation (and DDP) needs
            loss = loss + module.parameter_anchor()
        if return_output:
            return loss, model_output
        return loss

    def _generation_loss(
        self, labels: torch.Tensor, scores: torch.Tensor, preds: torch.Tensor
    ) -> torch.Tensor:
        """Label-smoothed NLL for the gradient (summed or per token, see the module
        docstring); records ParlAI's loss, ppl, token_acc and token_em from the plain NLL.

        ``scores`` are (B, T, V), or (N, V) for the N non-padding label positions only (in
        ``labels[labels != NULL]``'s order, with ``preds`` (N,)): the same loss either way."""
        notnull = labels.ne(self.NULL_IDX)
        flat = scores.dim() == 2
        targets = labels[notnull] if flat else labels
        logprobs = F.log_softmax(scores.float(), dim=-1)  # (B, T, V) or (N, V)
        target_logprobs = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        nll = -target_logprobs
        smoothing = self.opt.get("label_smoothing", 0.0)
        token_loss = nll
        if smoothing > 0:
            others = logprobs.sum(-1) - target_logprobs - logprobs[..., self.NULL_IDX]
            token_loss = (1 - smoothing) * nll - smoothing / (logprobs.size(-1) - 2) * others
        num_tokens = notnull.long().sum(dim=-1)
        if flat:
            gen_loss = token_loss.sum()
            # back to (B, T) for the per-example metrics below
            nll = nll.detach().new_zeros(labels.shape).masked_scatter(notnull, nll.detach())
            preds = labels.new_full(labels.shape, self.NULL_IDX).masked_scatter(notnull, preds)
        else:
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
        return gen_loss

    def _extra_losses(self, batch, model_output) -> torch.Tensor:
        """A subclass's own loss terms (MIME's KL term, say); none here."""
        return torch.zeros((), device=model_output[0].device)

    def _emotion_sigmoid(self) -> bool:
        """Whether the emotion logits are independent sigmoids (else one softmax)."""
        return False

    def _emotion_loss(self, logits: torch.Tensor, emotion_ids: torch.Tensor) -> torch.Tensor:
        if self._emotion_sigmoid():
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

    def chat_banner_lines(self) -> List[str]:
        fields = ", ".join((self.opt.get("display_add_fields") or "").split(","))
        return super().chat_banner_lines() + [
            f"Under each reply: {fields} (the emotion {self.MODEL_NAME} read in the "
            "conversation, and its probability)."
        ]

    def _treesearch_factory(self, device, verbose=False):
        """ParlAI's searches, and the originals' beam with ``--beam-selection first_top``."""
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
        if self._emotion_sigmoid():
            probabilities = torch.sigmoid(logits)
        else:
            probabilities = F.softmax(logits, dim=-1)
        best_prob, best_id = probabilities.max(dim=-1)
        output["emotion"] = [self.label_set.labels[i] for i in best_id.tolist()]
        output["emotion_prob"] = [round(p, 4) for p in best_prob.tolist()]
        return output


def is_emotion_generator(model_name: str) -> bool:
    """Whether ``-m model_name`` is an agent on :class:`EmotionGeneratorAgent`."""
    try:
        return issubclass(load_agent_module(model_name), EmotionGeneratorAgent)
    except Exception:  # an agent that cannot be imported here is not one either
        return False

