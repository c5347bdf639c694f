"""Persona sentence vectors for persona-aware MoEL: a frozen sentence encoder, mean-pooled, with
a content-keyed cache on disk.

:class:`SentenceVectors` embeds sentences with a ``transformers`` encoder read from a local
folder (default: the packaged all-MiniLM-L6-v2, :func:`parlai_empathy.hf_dictionary.
default_encoder_path`; weights read from ``safetensors`` only, so loading runs no code), in
``eval`` mode under ``no_grad``: the mean of the last hidden states over the sentence's real
tokens (all-MiniLM-L6-v2's own pooling, without its final normalisation).

Cache. Vectors are kept per sentence text, so a speaker's sentences are embedded once however
a teacher samples them (PEC samples up to ``--pec-num-personas`` per conversation). The file
``<cache_dir>/sentence-vectors-<fingerprint>.npz`` is keyed by content: the fingerprint is
the sha256 of every file of the encoder folder (names and bytes) and the pooling, each entry by
the sha256 of its sentence, so another encoder never reads these vectors. It is written whole
(temporary file, fsync, rename: :func:`parlai_empathy.atomic.atomic_write_bytes`) and read with
``numpy.load(allow_pickle=False)`` (arrays only, never code); a file that does not read as
such is an error naming it.

    python -c "from parlai_empathy.persona_vectors import SentenceVectors as S; \
        print(S().encode(['i love dogs']).shape)"
"""
import hashlib
import io
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from parlai_empathy.atomic import atomic_write_bytes
from parlai_empathy.hf_dictionary import default_encoder_path, load_tokenizer

POOLING = "mean"
CACHE_PREFIX = "sentence-vectors-"
MAX_TOKENS = 128  # all-MiniLM-L6-v2 was trained on up to 128 word pieces


class PersonaCacheError(ValueError):
    """A sentence-vector cache file is not one this module wrote; the message names it."""


def encoder_fingerprint(folder: str) -> str:
    """sha256 over the names and bytes of every file of ``folder`` (sorted walk) and the
    pooling."""
    digest = hashlib.sha256(f"pooling={POOLING};max_tokens={MAX_TOKENS}".encode())
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, folder).encode("utf-8") + b"\0")
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def sentence_key(sentence: str) -> bytes:
    return hashlib.sha256(sentence.encode("utf-8")).hexdigest().encode("ascii")


class SentenceVectors:
    """Mean-pooled vectors of sentences from a frozen encoder, cached by content."""

    def __init__(self, encoder_path: Optional[str] = None, cache_dir: Optional[str] = None,
                 batch_size: int = 64):
        from transformers import AutoModel

        self.encoder_path = os.path.expanduser(encoder_path or default_encoder_path())
        if not os.path.isdir(self.encoder_path):
            raise FileNotFoundError(
                f"--persona-encoder-path {self.encoder_path} is not a folder; it must hold a "
                "transformers model saved with save_pretrained (safetensors weights)"
            )
        self.batch_size = batch_size
        self.tokenizer = load_tokenizer(self.encoder_path)
        try:
            self.encoder = AutoModel.from_pretrained(
                self.encoder_path, local_files_only=True, use_safetensors=True
            ).eval()
        except (OSError, ValueError) as exc:
            raise FileNotFoundError(
                f"no safetensors encoder could be loaded from {self.encoder_path} ({exc})"
            ) from None
        for parameter in self.encoder.parameters():
            parameter.requires_grad_(False)
        self.dim = int(self.encoder.config.hidden_size)
        self.fingerprint = encoder_fingerprint(self.encoder_path)
        self.cache_file = (
            os.path.join(os.path.expanduser(cache_dir), f"{CACHE_PREFIX}{self.fingerprint}.npz")
            if cache_dir
            else None
        )
        self._vectors: Dict[bytes, np.ndarray] = {}
        self._unsaved = 0
        if self.cache_file and os.path.exists(self.cache_file):
            self._vectors = read_cache(self.cache_file, self.dim)

    def __len__(self) -> int:
        return len(self._vectors)

    @torch.no_grad()
    def _embed(self, sentences: Sequence[str]) -> np.ndarray:
        """(N, dim) float32: the mean of the encoder's last hidden states over real tokens."""
        out = []
        for start in range(0, len(sentences), self.batch_size):
            chunk = list(sentences[start:start + self.batch_size])
            inputs = self.tokenizer(chunk, padding=True, truncation=True,
                                    max_length=MAX_TOKENS, return_tensors="pt")
            hidden = self.encoder(**inputs).last_hidden_state  # (n, T, dim)
            mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (n, T, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out.append(pooled.float().numpy())
        return np.concatenate(out, axis=0) if out else np.zeros((0, self.dim), np.float32)

    def encode(self, sentences: Sequence[str]) -> torch.Tensor:
        """(N, dim) float32 vectors of ``sentences``, from the cache where possible."""
        keys = [sentence_key(s) for s in sentences]
        missing: Dict[bytes, str] = {}
        for key, sentence in zip(keys, sentences):
            if key not in self._vectors:
                missing.setdefault(key, sentence)
        if missing:
            vectors = self._embed(list(missing.values()))
            for key, vector in zip(missing, vectors):
                self._vectors[key] = vector
            self._unsaved += len(missing)
        if not keys:
            return torch.zeros(0, self.dim)
        return torch.from_numpy(np.stack([self._vectors[key] for key in keys]))

    def flush(self) -> None:
        """Write the cache file whole (if there is one and it has new entries)."""
        if not self.cache_file or not self._unsaved:
            return
        keys = sorted(self._vectors)
        buffer = io.BytesIO()
        np.savez(buffer, keys=np.array(keys, dtype="S64"),
                 vectors=np.stack([self._vectors[k] for k in keys]).astype(np.float32))
        atomic_write_bytes(self.cache_file, buffer.getvalue())
        self._unsaved = 0

    def batch(self, personas: Sequence[Sequence[str]], single: bool = False
              ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Padded vectors (B, P, dim) and mask (B, P) of each example's persona sentences;
        ``single``: one vector per example, the mean of its sentences (P = 1, masked out for
        an example without sentences)."""
        flat = [s for sentences in personas for s in sentences]
        vectors = self.encode(flat)
        rows: List[torch.Tensor] = []
        start = 0
        for sentences in personas:
            rows.append(vectors[start:start + len(sentences)])
            start += len(sentences)
        if single:
            keep = torch.tensor([[len(r) > 0] for r in rows], dtype=torch.bool)
            means = [r.mean(0) if len(r) else torch.zeros(self.dim) for r in rows]
            return torch.stack(means).unsqueeze(1), keep  # (B, 1, dim), (B, 1)
        width = max([len(r) for r in rows] + [0])
        padded = torch.zeros(len(rows), width, self.dim)
        keep = torch.zeros(len(rows), width, dtype=torch.bool)
        for i, r in enumerate(rows):
            padded[i, :len(r)] = r
            keep[i, :len(r)] = True
        return padded, keep


def read_cache(path: str, dim: int) -> Dict[bytes, np.ndarray]:
    """The entries of a cache file (arrays only: ``allow_pickle=False``), checked."""
    try:
        with np.load(path, allow_pickle=False) as data:
            keys, vectors = data["keys"], data["vectors"]
    except Exception as exc:  # noqa: BLE001 (any unreadable file gets the same message)
        raise PersonaCacheError(
            f"{path} is not a persona sentence-vector cache ({type(exc).__name__}: {exc}); "
            "delete it and it is rebuilt"
        ) from None
    if (keys.dtype != np.dtype("S64") or vectors.ndim != 2 or vectors.shape != (len(keys), dim)
            or vectors.dtype != np.float32):
        raise PersonaCacheError(
            f"{path} does not hold {dim}-d float32 vectors keyed by sentence digests; delete "
            "it and it is rebuilt"
        )
    return {bytes(k): v for k, v in zip(keys, vectors)}
