"""CoBERT retrieval ranker (``-m empathy/cobert``): a ``transformers`` encoder with CoBERT's
co-attention matching (:mod:`parlai_empathy.modules.cobert`) as a ParlAI
``TorchRankerAgent``.

    parlai train_model -m empathy/cobert -t empathetic_dialogues --train-experiencer-only true \
        -mf /tmp/cobert/model -bs 16 -cands batch -ecands inline --max-train-steps 2000 \
        -vmt hits@1 -vmm max
    parlai eval_model -mf /tmp/cobert/model -t empathy_ranking:ed -dt test -ecands inline
    parlai interactive -mf /tmp/cobert/model --fixed-candidates-path responses.txt

* Encoder: ``--encoder-path`` (a local ``transformers`` folder; default the packaged
  all-MiniLM-L6-v2), shared by context, persona and response; its tokenizer is the
  dictionary. Contexts are ``[CLS] turn [SEP] turn ... [SEP]`` (one ``[SEP]`` per turn, the
  lines of a multi-line text counting as turns), truncated from the left to
  ``--text-truncate`` tokens; responses ``[CLS] response [SEP]`` truncated from the right to
  ``--label-truncate`` tokens.
* Personas: the teacher's ``personas`` field (``-t pec``), ``--num-personas`` sentences of at
  most ``--persona-sentence-truncate`` tokens, ``[CLS] s1 [SEP] s2 [SEP] ...``; as in the
  original, sentences found inside the gold response are dropped
  (``--persona-drop-response-overlap``). Examples without personas (ED, ESConv, or
  ``--use-personas false``) are scored by the context alone.
* Candidates: ParlAI's ``-cands``/``-ecands`` (``batch``, ``inline``, ``fixed``). Fixed
  candidates (``--fixed-candidates-path``) are encoded once and cached beside the model file
  as ``<model_file>.<candidates name>.cobert-encs``, keyed by the sha256 of the candidate
  file, of the model's weights and of the response length, written atomically; a changed
  model or candidate file rebuilds it. ``--candidate-cache-dtype float16`` halves it.
  Without ``--fixed-candidates-path``, ``<model_file>.cands.txt`` is used when it exists
  (a zoo release ships its candidates and their cache that way; ``python -m
  parlai_empathy.zoo pack --candidates FILE``). ``--rerank-top-k K`` matches only the K
  candidates nearest the context by mean-pooled dot product (fast on large sets; not exact).
* Metrics: ParlAI's ranking metrics (``hits@1``, ``hits@10`` ... from the teacher, ``mrr``
  and ``rank`` from the agent).
* ``--scorer cosine``: the untrained baseline (cosine of mean-pooled encoder outputs), same
  inputs and candidates, no model file needed.
"""
import hashlib
import os
from typing import List, Optional, Sequence

import torch
from parlai.core.opt import Opt
from parlai.core.params import ParlaiParser
from parlai.core.torch_ranker_agent import TorchRankerAgent
from parlai.utils import logging
from parlai.utils.io import PathManager
from parlai.utils.torch import padded_tensor

from parlai_empathy.atomic import atomic_write_bytes
from parlai_empathy.hf_dictionary import HuggingFaceTokenizerDictionary
from parlai_empathy.hf_encoder import load_encoder, max_length, save_encoder_config, wrap_ids
from parlai_empathy.modules.cobert import SCORERS, Cobert, CobertConfig

CACHE_SUFFIX = "cobert-encs"
# a release's own candidate set (zoo): used when no --fixed-candidates-path is given
SHIPPED_CANDIDATES_SUFFIX = ".cands.txt"
CACHE_FORMAT = 1


class CandidateCacheError(ValueError):
    """A candidate-encoding cache file that cannot be used; names the file."""


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 of the model's parameters and buffers (names, dtypes, shapes, values)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def pack_encodings(encs: torch.Tensor, mask: torch.Tensor, dtype: torch.dtype):
    """Padded ``(N, n, D)`` encodings -> the real tokens ``(T, D)`` and lengths ``(N,)``."""
    return encs[mask.bool()].to(dtype).contiguous(), mask.sum(1).long()


def unpack_encodings(tokens: torch.Tensor, lengths: torch.Tensor, width: int) -> torch.Tensor:
    """Inverse of :func:`pack_encodings`: ``(N, width, D)`` float32, zero padded."""
    out = tokens.new_zeros(len(lengths), width, tokens.size(1), dtype=torch.float32)
    mask = torch.arange(width)[None, :] < lengths[:, None]
    out[mask] = tokens.float()
    return out


class CobertAgent(TorchRankerAgent):
    """CoBERT as a ParlAI ranker (module docstring)."""

    @classmethod
    def add_cmdline_args(
        cls, parser: ParlaiParser, partial_opt: Optional[Opt] = None
    ) -> ParlaiParser:
        super().add_cmdline_args(parser, partial_opt=partial_opt)
        group = parser.add_argument_group("CoBERT arguments")
        group.add_argument(
            "--scorer",
            type=str,
            default="cobert",
            choices=list(SCORERS),
            help="cobert: co-attention matching (train it); cosine: the untrained baseline, "
            "cosine of mean-pooled encoder outputs.",
        )
        group.add_argument(
            "--use-personas",
            type="bool",
            default=True,
            help="Match the response against the example's personas field when it has one.",
        )
        group.add_argument(
            "--num-personas", type=int, default=10,
            help="At most this many persona sentences (the original's 10).",
        )
        group.add_argument(
            "--persona-sentence-truncate", type=int, default=22,
            help="Tokens kept of each persona sentence (the original's 22).",
        )
        group.add_argument(
            "--persona-drop-response-overlap",
            type="bool",
            default=True,
            help="Drop persona sentences found inside the gold response (as the original).",
        )
        group.add_argument(
            "--candidate-chunk",
            type=int,
            default=256,
            help="Context-candidate pairs matched at once (memory: pairs x context length "
            "x hidden size).",
        )
        group.add_argument(
            "--rerank-top-k",
            type=int,
            default=0,
            help="With fixed candidates: match only the K candidates whose mean-pooled "
            "encoding has the largest dot product with the context's, the rest ranked after "
            "them (0: match every candidate, exact).",
        )
        group.add_argument(
            "--inline-cache-size",
            type=int,
            default=20000,
            help="Evaluating with inline candidates, keep the encodings of up to this many "
            "distinct candidates (a 100-candidate test set reuses each about 100 times); "
            "0: encode every candidate every time.",
        )
        group.add_argument(
            "--candidate-cache-dtype",
            type=str,
            default="float32",
            choices=["float32", "float16"],
            help="Precision of the cached fixed-candidate encodings on disk.",
        )
        group.add_argument(
            "--train-bf16",
            type="bool",
            default=False,
            help="Run training's forward passes under bfloat16 autocast (weights, optimizer "
            "and gradients stay float32; a CPU with avx512_bf16 or a GPU). Evaluation, "
            "validation and chat always run in float32.",
        )
        parser.set_defaults(
            text_truncate=256,
            label_truncate=32,
            optimizer="adamw",
            learningrate=2e-5,
            lr_scheduler="linear",
            warmup_updates=0,
            gradient_clip=1.0,
            candidates="batch",
            eval_candidates="inline",
            history_size=-1,
        )
        return parser

    @staticmethod
    def dictionary_class():
        return HuggingFaceTokenizerDictionary

    def __init__(self, opt: Opt, shared=None):
        for name in ("text_truncate", "label_truncate"):
            if opt.get(name) is not None and 0 <= opt[name] < 3:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 3, got {opt[name]}")
        if opt.get("lr_scheduler") == "linear" and (opt.get("max_train_steps") or 0) <= 0:
            # ParlAI's linear decay needs a horizon; without one the rate stays constant
            datatype = opt.get("datatype", "train")
            if not shared and datatype.startswith("train") and "evalmode" not in datatype \
                    and not opt.get("interactive_mode"):
                logging.warning("cobert: --lr-scheduler linear needs --max-train-steps; "
                                "training with a constant learning rate")
            opt["lr_scheduler"] = "none"
        self._inline_memo = {}  # candidate token ids -> token outputs (evaluation only)
        self._inline_memo_size = opt.get("inline_cache_size", 20000)
        super().__init__(opt, shared)
        self.id = "CoBERT"

    # --- model ----------------------------------------------------------------------------

    def build_model(self):
        config = CobertConfig(
            scorer=self.opt.get("scorer", "cobert"),
            candidate_chunk=self.opt.get("candidate_chunk", 256),
        )
        init_model, _ = self._get_init_model(self.opt, None)
        return Cobert(load_encoder(self.opt, init_model, "cobert"), config)

    def _model(self) -> Cobert:
        return self.model.module if hasattr(self.model, "module") else self.model

    def save(self, path=None):
        super().save(path)
        path = self.opt.get("model_file", None) if path is None else path
        if path and hasattr(self, "model"):
            save_encoder_config(path, self._model().encoder)

    # --- inputs ---------------------------------------------------------------------------

    def _limit(self, truncate) -> int:
        return max_length(self._model().encoder, truncate)

    def _wrap_response(self, vec) -> torch.LongTensor:
        ids = vec.tolist() if torch.is_tensor(vec) else vec
        return wrap_ids(ids, self.START_IDX, self.END_IDX, self._limit(self.label_truncate),
                        keep_last=False)

    def _context_ids(self, turns: Sequence[str]) -> List[int]:
        ids: List[int] = []
        for turn in turns:
            for line in turn.split("\n"):
                if not line.strip():
                    continue
                if ids:
                    ids.append(self.END_IDX)
                ids.extend(self.dict.txt2vec(line))
        return ids

    def _set_text_vec(self, obs, history, truncate):
        if "text" not in obs or "text_vec" in obs:
            return super()._set_text_vec(obs, history, truncate)
        turns = list(history.history_strings) if history is not None else []
        ids = self._context_ids(turns)
        if not ids:
            return obs  # nothing to encode: not a valid example
        obs["full_text"] = history.get_history_str()
        obs["text_vec"] = wrap_ids(ids, self.START_IDX, self.END_IDX,
                                   self._limit(self.text_truncate), keep_last=True)
        return obs

    def _persona_vec(self, obs) -> Optional[torch.LongTensor]:
        personas = obs.get("personas")
        if not self.opt.get("use_personas", True) or not personas:
            return None
        if isinstance(personas, str):
            personas = [p for p in personas.split("\n") if p.strip()]
        gold = obs.get("labels") or obs.get("eval_labels") or []
        gold_text = " ".join(self.dict.tokenize(gold[0])) if gold else ""
        limit = self.opt.get("persona_sentence_truncate", 22)
        ids: List[int] = []
        kept = 0
        for sentence in personas:
            tokens = self.dict.txt2vec(sentence)[:limit]
            if not tokens:
                continue
            if self.opt.get("persona_drop_response_overlap", True) and gold_text:
                if " ".join(self.dict.tokenize(sentence)[:limit]) in gold_text:
                    continue
            if ids:
                ids.append(self.END_IDX)
            ids.extend(tokens)
            kept += 1
            if kept >= self.opt.get("num_personas", 10):
                break
        if not ids:
            return None
        limit_all = self._limit(None)
        return wrap_ids(ids, self.START_IDX, self.END_IDX, limit_all, keep_last=False)

    def vectorize(self, obs, history, **kwargs):
        kwargs.update(add_start=False, add_end=False, label_truncate=None)
        obs = super().vectorize(obs, history, **kwargs)
        if obs.get("cobert_wrapped"):
            return obs
        for key in ("labels_vec", "eval_labels_vec"):
            if obs.get(key) is not None:
                obs.force_set(key, self._wrap_response(obs[key]))
        if obs.get("label_candidates_vecs") is not None:
            obs.force_set(
                "label_candidates_vecs",
                [self._wrap_response(v) for v in obs["label_candidates_vecs"]],
            )
        persona = self._persona_vec(obs)
        if persona is not None:
            obs["persona_vec"] = persona
        obs["cobert_wrapped"] = True
        return obs

    def vectorize_fixed_candidates(self, cands_batch, add_start=False, add_end=False):
        return [self._wrap_response(self.dict.txt2vec(c)) for c in cands_batch]

    def batchify(self, obs_batch, sort=False):
        batch = super().batchify(obs_batch, sort=sort)
        batch.persona_vec = None
        if batch.get("valid_indices") is None or len(batch.valid_indices) == 0:
            return batch
        valid = [obs_batch[i] for i in batch.valid_indices]
        vecs = [obs.get("persona_vec") for obs in valid]
        if any(v is not None for v in vecs):
            empty = torch.LongTensor([])
            batch.persona_vec, _ = padded_tensor(
                [v if v is not None else empty for v in vecs], self.NULL_IDX, self.use_cuda
            )
        return batch

    # --- scoring ---------------------------------------------------------------------------

    def encode_candidates(self, padded_cands):
        """Token outputs ``(N, n, D)`` of padded candidates ``(N, n)``."""
        return self._model().encode(padded_cands, padded_cands != self.NULL_IDX)

    def score_candidates(self, batch, cand_vecs, cand_encs=None):
        if self.model.training and self.opt.get("train_bf16", False):
            with torch.autocast(batch.text_vec.device.type, dtype=torch.bfloat16):
                scores = self._score_candidates(batch, cand_vecs, cand_encs)
            return scores.float()  # the loss in float32
        return self._score_candidates(batch, cand_vecs, cand_encs)

    def _score_candidates(self, batch, cand_vecs, cand_encs=None):
        model = self._model()
        context_mask = batch.text_vec != self.NULL_IDX
        context = model.encode(batch.text_vec, context_mask)
        persona = persona_mask = None
        if batch.get("persona_vec") is not None:
            persona_mask = batch.persona_vec != self.NULL_IDX
            persona = model.encode(batch.persona_vec, persona_mask)
        cand_mask = cand_vecs != self.NULL_IDX
        top_k = self.opt.get("rerank_top_k", 0) or 0
        if cand_encs is not None and 0 < top_k < cand_encs.size(0):
            return self._rerank(model, context, context_mask, persona, persona_mask,
                                cand_encs.to(context.dtype), cand_mask, top_k)
        if cand_encs is not None:
            cands = cand_encs.to(context.dtype)
        elif cand_vecs.dim() == 2:
            cands = model.encode(cand_vecs, cand_mask)  # (C, n, D)
        else:
            b, c, n = cand_vecs.shape
            flat = cand_vecs.reshape(b * c, n)
            real = cand_mask.reshape(b * c, n).any(-1)
            cands = context.new_zeros(b * c, n, context.size(-1))
            if real.any() and (self.model.training or self._inline_memo_size <= 0):
                cands[real] = model.encode(flat[real], flat[real] != self.NULL_IDX)
            elif real.any():
                self._encode_inline_memoized(model, flat, real, cands)
            cands = cands.reshape(b, c, n, -1)  # (B, C, n, D)
        scores = model.score(context, context_mask, cands, cand_mask, persona, persona_mask)
        if cand_vecs.dim() == 3:
            # padding rows of uneven inline candidate lists never outrank a real candidate
            scores = scores.masked_fill(~cand_mask.any(-1), torch.finfo(scores.dtype).min)
        return scores

    def _encode_inline_memoized(self, model, flat, real, out) -> None:
        """Evaluation with inline candidates: ``out[i, :len]`` := the token outputs of
        candidate row ``flat[i]`` (each ``real`` row), each distinct candidate encoded once
        and kept (up to ``--inline-cache-size`` of them) until the weights next change.

        A 100-candidate test set draws its candidates from the split's own responses, so
        each is seen about 100 times; encoding it once makes a full-split evaluation about
        as costly as encoding the split. Each candidate is encoded alone in its own padded
        batch, which gives its tokens the same outputs as any other padding (masked)."""
        memo = self._inline_memo
        keys = {}
        for i in real.nonzero().flatten().tolist():
            row = flat[i]
            keys[i] = tuple(row[row != self.NULL_IDX].tolist())
        missing = sorted({k for k in keys.values() if k not in memo}, key=len)
        if len(memo) + len(missing) > self._inline_memo_size:
            memo.clear()
            missing = sorted(set(keys.values()), key=len)
        for start in range(0, len(missing), 64):
            group = missing[start:start + 64]
            width = len(group[-1])
            ids = flat.new_full((len(group), width), self.NULL_IDX)
            for j, key in enumerate(group):
                ids[j, :len(key)] = torch.as_tensor(key, dtype=ids.dtype)
            encs = model.encode(ids, ids != self.NULL_IDX)
            for j, key in enumerate(group):
                memo[key] = encs[j, :len(key)].detach()
        for i, key in keys.items():
            out[i, :len(key)] = memo[key].to(out.dtype)

    def train_step(self, batch):
        self._inline_memo.clear()  # the weights are about to change
        return super().train_step(batch)

    def load_state_dict(self, state_dict):
        self._inline_memo.clear()
        return super().load_state_dict(state_dict)

    def _rerank(self, model, context, context_mask, persona, persona_mask, cands, cand_mask,
                top_k):
        """``--rerank-top-k``: co-attention scores for the ``top_k`` candidates nearest the
        context by mean-pooled dot product; every other candidate scores below them."""
        from parlai_empathy.modules.cobert import masked_mean

        pooled = getattr(self, "_pooled_fixed", None)
        if pooled is None or pooled[0] is not cands:
            pooled = (cands, masked_mean(cands, cand_mask[..., None], dim=1))  # (N, D)
            self._pooled_fixed = pooled
        query = masked_mean(context, context_mask[..., None], dim=1)  # (B, D)
        nearest = (query @ pooled[1].t()).topk(top_k, dim=1).indices  # (B, K)
        matched = model.score(context, context_mask, cands[nearest], cand_mask[nearest],
                              persona, persona_mask)  # (B, K)
        lowest = torch.finfo(matched.dtype).min
        scores = matched.new_full((context.size(0), cands.size(0)), lowest)
        return scores.scatter(1, nearest, matched)

    # --- fixed candidates and their cached encodings ---------------------------------------

    def _shipped_candidates(self) -> Optional[str]:
        shipped = (self.opt.get("model_file") or "") + SHIPPED_CANDIDATES_SUFFIX
        return shipped if self.opt.get("model_file") and os.path.isfile(shipped) else None

    def set_interactive_mode(self, mode, shared=False):
        if mode and not self.fixed_candidates_path and self._shipped_candidates():
            self.fixed_candidates_path = self._shipped_candidates()
        super().set_interactive_mode(mode, shared)

    def set_fixed_candidates(self, shared):
        if shared:
            return super().set_fixed_candidates(shared)
        self.num_fixed_candidates = 0
        self.fixed_candidates = self.fixed_candidate_vecs = self.fixed_candidate_encs = None
        if "fixed" not in (self.candidates, self.eval_candidates):
            return
        path = self.fixed_candidates_path
        if not path:
            path = self._shipped_candidates() or self.get_task_candidates_path()
            self.fixed_candidates_path = path
        if not path or not PathManager.exists(path):
            raise FileNotFoundError(
                f"--fixed-candidates-path {path}: no such file (one candidate per line)"
            )
        with PathManager.open(path, "r", encoding="utf-8") as f:
            cands = [line.strip() for line in f if line.strip()]
        if not cands:
            raise ValueError(f"--fixed-candidates-path {path}: the file has no candidate")
        logging.info(f"cobert: {len(cands)} fixed candidates from {path}")
        self.fixed_candidates = cands
        self.num_fixed_candidates = len(cands)
        self.fixed_candidate_vecs = self._make_candidate_vecs(cands)
        if self.use_cuda:
            self.fixed_candidate_vecs = self.fixed_candidate_vecs.cuda()
        if self.encode_candidate_vecs:
            self.fixed_candidate_encs = self.cached_candidate_encodings(path)

    def candidate_cache_path(self, cands_path: str) -> Optional[str]:
        model_file = self.opt.get("model_file")
        if not model_file:
            return None
        name = os.path.splitext(os.path.basename(cands_path))[0]
        own = os.path.basename(model_file) + "."
        if name.startswith(own):  # model.cands.txt -> model.cands.cobert-encs
            name = name[len(own):]
        return f"{model_file}.{name}.{CACHE_SUFFIX}"

    def candidate_cache_key(self, cands_path: str) -> str:
        parts = [
            f"format {CACHE_FORMAT}",
            f"candidates {sha256_file(cands_path)}",
            f"weights {weights_digest(self._model())}",
            f"response length {self._limit(self.label_truncate)}",
            f"dtype {self.opt.get('candidate_cache_dtype', 'float32')}",
        ]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def cached_candidate_encodings(self, cands_path: str) -> torch.Tensor:
        """Encodings ``(N, n, D)`` of the fixed candidates: read from the cache beside the
        model file when its key matches, otherwise computed and (when there is a model
        file) saved there atomically."""
        vecs = self.fixed_candidate_vecs
        cache = self.candidate_cache_path(cands_path)
        key = self.candidate_cache_key(cands_path)
        if cache and os.path.isfile(cache):
            encs = self._read_cache(cache, key, vecs)
            if encs is not None:
                logging.info(f"cobert: candidate encodings from {cache}")
                return encs.to(vecs.device)
            logging.info(f"cobert: {cache} is out of date (model or candidates changed)")
        encs = self._make_candidate_encs(vecs).detach()
        dtype = getattr(torch, self.opt.get("candidate_cache_dtype", "float32"))
        tokens, lengths = pack_encodings(encs.cpu(), (vecs != self.NULL_IDX).cpu(), dtype)
        if dtype != torch.float32:  # what is used is what a reload reads
            encs = unpack_encodings(tokens, lengths, vecs.size(1)).to(vecs.device)
        if cache:
            import io

            buffer = io.BytesIO()
            torch.save({"format": CACHE_FORMAT, "key": key, "tokens": tokens,
                        "lengths": lengths}, buffer)
            atomic_write_bytes(cache, buffer.getvalue())
            logging.info(f"cobert: candidate encodings saved to {cache}")
        return encs

    def _read_cache(self, cache: str, key: str, vecs: torch.Tensor) -> Optional[torch.Tensor]:
        try:
            stored = torch.load(cache, map_location="cpu", weights_only=True)
        except Exception as exc:  # unreadable: rebuilt, as a stale one is
            logging.warning(f"cobert: {cache} is not a readable cache ({exc}); rebuilding it")
            return None
        if not isinstance(stored, dict) or stored.get("key") != key:
            return None
        lengths = stored["lengths"]
        expected = (vecs != self.NULL_IDX).sum(1).cpu()
        if lengths.shape != expected.shape or not torch.equal(lengths, expected):
            return None
        return unpack_encodings(stored["tokens"], lengths, vecs.size(1))
