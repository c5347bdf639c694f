"""Persona-aware MoEL (the seed paper, "Improving Empathetic Response Generation", Columbia
2022) as a ParlAI agent: MoEL whose every decoder layer also attends to the response
speaker's persona.

Train on PEC labelled with the emotion classifier, over the seed's 16 emotion groups
(``recipes/persona_moel_pec.sh`` does all of it, plain MoEL alongside)::

    parlai train_model -m empathy/persona_moel -t pec --pec-filter true \
        --pec-emotion-file pec_emotions.jsonl --emotion-groups 16 -mf /tmp/pmoel/model

The network is :class:`parlai_empathy.modules.persona_moel.PersonaMoelModel`; the rest is
MoEL's agent (:mod:`parlai.agents.empathy.moel`). What is this file's own:

* **Persona vectors** (``--persona``): ``sentences`` (default) gives each persona sentence of
  the example's ``personas`` field (PEC's teacher, at most ``--pec-num-personas``) its own
  vector, mean-pooled from a frozen sentence encoder (``--persona-encoder-path``, default the
  packaged all-MiniLM-L6-v2), cached by content under ``--persona-cache-dir``
  (:mod:`parlai_empathy.persona_vectors`); ``single`` averages them into one vector per
  speaker, the seed's form (it used one 3,072-d Longformer vector); ``none`` is exactly MoEL
  (same modules, same weights, same outputs; no encoder is loaded).
* **Order** (``--persona-attention-order``): ``context_first`` (the seed: context, then
  persona cross-attention in each layer) or ``persona_first``.
* A persona mode on a task whose examples carry no ``personas`` (ED, ESConv) is refused.
  ``parlai interactive`` has no persona to read: the model attends to its null slot only.
"""
from typing import List, Optional

import torch
from parlai.agents.empathy.moel import MoelAgent
from parlai.core.opt import Opt
from parlai.core.params import ParlaiParser
from parlai.utils.misc import warn_once

from parlai_empathy.modules.moel import MoelConfig, MoelModel
from parlai_empathy.modules.persona_moel import (
    PERSONA_ORDERS,
    PersonaMoelConfig,
    PersonaMoelModel,
)

AGENT_NAME = "empathy/persona_moel"
PERSONA_MODES = ("sentences", "single", "none")
PERSONA_FIELD = "personas"
# tasks whose examples have no persona sentences
TASKS_WITHOUT_PERSONAS = (
    "empathetic_dialogues", "esconv", "ed_emotion", "esconv_emotion",
)


def check_task_has_personas(opt: Opt) -> None:
    """Refuse a persona mode on a task without personas, naming the task and the option."""
    if opt.get("persona", "sentences") == "none":
        return
    for task in (opt.get("task") or "").split(","):
        name = task.split(":")[0].strip()
        if name in TASKS_WITHOUT_PERSONAS or name.startswith("parlai.tasks.esconv"):
            raise ValueError(
                f"--persona {opt['persona']} needs a task whose examples carry the response "
                f"speaker's persona sentences (a '{PERSONA_FIELD}' field, e.g. -t pec), but "
                f"-t {task.strip()} has none; use --persona none (plain MoEL on this task) or "
                "-m empathy/moel"
            )


class PersonaMoelAgent(MoelAgent):
    """MoEL with a persona cross-attention in every decoder layer."""

    AGENT_NAME = AGENT_NAME
    MODEL_NAME = "persona-aware MoEL"

    @classmethod
    def add_cmdline_args(
        cls, parser: ParlaiParser, partial_opt: Optional[Opt] = None
    ) -> ParlaiParser:
        super().add_cmdline_args(parser, partial_opt=partial_opt)
        group = parser.add_argument_group("Persona-aware MoEL arguments")
        group.add_argument("--persona", choices=PERSONA_MODES, default="sentences",
                           help="sentences: one vector per persona sentence; single: their "
                           "mean, one vector per speaker (the seed's form); none: plain MoEL.")
        group.add_argument("--persona-attention-order", choices=PERSONA_ORDERS,
                           default="context_first",
                           help="In each decoder layer, the context cross-attention before "
                           "the persona one (the seed) or after it.")
        group.add_argument("--persona-layers", type=int, default=1,
                           help="Self-attention layers of the persona encoder.")
        group.add_argument("--persona-encoder-path", type=str, default=None,
                           help="Folder of the frozen sentence encoder (a transformers model "
                           "with safetensors weights); default the packaged all-MiniLM-L6-v2.")
        group.add_argument("--persona-cache-dir", type=str, default=None,
                           help="Folder of the sentence-vector cache (content-keyed); default "
                           "DATAPATH/persona_vectors; '' disables the file.")
        group.add_argument("--persona-vector-size", type=int, default=None, hidden=True,
                           help="Size of a sentence vector; set from the encoder.")
        return parser

    def __init__(self, opt: Opt, shared=None):
        self.sentence_vectors = None
        if shared:
            self.sentence_vectors = shared.get("sentence_vectors")
        elif opt.get("persona", "sentences") != "none":
            if not opt.get("interactive_mode"):
                check_task_has_personas(opt)
            from parlai_empathy.persona_vectors import SentenceVectors

            cache_dir = opt.get("persona_cache_dir")
            if cache_dir is None:
                cache_dir = f"{opt.get('datapath', 'data')}/persona_vectors"
            self.sentence_vectors = SentenceVectors(opt.get("persona_encoder_path"), cache_dir)
            size = opt.get("persona_vector_size")
            if size and size != self.sentence_vectors.dim:
                raise ValueError(
                    f"the model reads {size}-d persona vectors but the encoder "
                    f"{self.sentence_vectors.encoder_path} gives "
                    f"{self.sentence_vectors.dim}-d ones: pass the encoder it was trained "
                    "with as --persona-encoder-path"
                )
            opt["persona_vector_size"] = self.sentence_vectors.dim  # saved with the model
        super().__init__(opt, shared)

    def share(self):
        shared = super().share()
        shared["sentence_vectors"] = self.sentence_vectors
        return shared

    def build_network(self):
        opt = self.opt
        if opt["persona"] == "none":
            return MoelModel(MoelConfig(**self._config_kwargs()))
        return PersonaMoelModel(PersonaMoelConfig(
            **self._config_kwargs(),
            persona_vector_size=opt["persona_vector_size"],
            persona_layers=opt["persona_layers"],
            persona_order=opt["persona_attention_order"],
        ))

    def save(self, path=None):
        if self.sentence_vectors is not None:
            self.sentence_vectors.flush()
        super().save(path)

    # --- data --------------------------------------------------------------------------------

    def batchify(self, obs_batch, sort=False):
        batch = super().batchify(obs_batch, sort=sort)
        if self.sentence_vectors is None or batch.get("valid_indices") is None:
            return batch
        exs = [obs_batch[i] for i in batch.valid_indices.tolist()]
        vectors, keep = self.sentence_vectors.batch(
            self._personas(exs), single=self.opt["persona"] == "single"
        )
        device = batch.text_vec.device if batch.text_vec is not None else "cpu"
        batch["persona_vectors"] = vectors.to(device)
        batch["persona_keep"] = keep.to(device)
        return batch

    def _personas(self, exs) -> List[List[str]]:
        personas = []
        for ex in exs:
            sentences = ex.get(PERSONA_FIELD)
            if sentences is None:
                if not self.opt.get("interactive_mode"):
                    raise ValueError(
                        f"{AGENT_NAME} --persona {self.opt['persona']} needs the response "
                        f"speaker's persona sentences in the '{PERSONA_FIELD}' field of each "
                        f"example, but one from '{ex.get('id', 'the task')}' has none "
                        f"({str(ex.get('text', ''))[:60]!r}); -t pec provides it, or use "
                        "--persona none"
                    )
                warn_once(f"{self.MODEL_NAME}: no persona sentences in chat; the model "
                          "attends to its null persona slot only")
                sentences = []
            personas.append([str(s) for s in sentences])
        return personas

    def _model_input(self, batch):
        if self.sentence_vectors is None:
            return super()._model_input(batch)
        return (*super()._model_input(batch), batch.get("persona_vectors"),
                batch.get("persona_keep"))

    def _dummy_batch(self, batchsize, maxlen):
        batch = super()._dummy_batch(batchsize, maxlen)
        if self.sentence_vectors is not None:
            dim = self.sentence_vectors.dim
            batch["persona_vectors"] = torch.zeros(batchsize, 2, dim)
            batch["persona_keep"] = torch.ones(batchsize, 2, dtype=torch.bool)
        return batch

