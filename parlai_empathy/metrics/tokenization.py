"""The word tokenization every overlap metric applies first (BLEU, ROUGE-L, Distinct, length).

MoEL and MIME (``utils/data_reader.py: clean``) preprocess EmpatheticDialogues with

1. ``sentence.lower()``;
2. a fixed table of contraction expansions applied as plain substring replacements, in
   order (``"it's" -> "it is"``, ``"don't" -> "do not"``, ...; see :data:`CONTRACTIONS`);
3. ``nltk.word_tokenize``: punkt sentence splitting, then NLTK's Treebank-style word
   tokenizer on each sentence (``"shouldn't" -> "should n't"``, ``"that." -> "that ."``),

and score the tokens joined by single spaces with ``multi-bleu.perl -lc``.
:func:`paper_tokenize` does the same to *both* hypotheses and references, so a model that
writes ``"I'm sorry."`` and one that writes ``"i am sorry ."`` are scored alike.

Two differences from the papers' run, both small:

* punkt's English model is a data download that is not installed here, so sentence
  boundaries come from a rule: punkt breaks after any period-final word that is not a known
  abbreviation, and :func:`split_sentences` does exactly that with a short abbreviation
  list (:data:`ABBREVIATIONS`). Splits after ``!``/``?`` and ellipses need no rule: the word
  tokenizer separates those marks anywhere in a sentence, so only a word-final ``.``
  depends on the sentence split. (Punkt's rarer heuristics, e.g. for initials, are not
  reproduced.)
* the installed NLTK also splits a few things the 2019 NLTK of the papers kept whole
  (``too..``, ``*does*``, ``'around``).

On MoEL's released (already tokenized) test references, 91 of 5,255 lines tokenize
differently, mostly for these reasons, and MIME's beam BLEU moves from 3.126 to 3.131 (MoEL's from
2.900 to 2.905); the hypotheses are unchanged.

``whitespace`` (:func:`whitespace_tokenize`) is exactly what ``multi-bleu.perl -lc`` itself
does with a line (the script reads bytes: it folds only A-Z and splits only on ASCII
whitespace). Use it to score text that is already tokenized exactly as wanted, such as the
papers' released outputs: it reproduces their BLEU exactly (MIME's ``output.txt``: 3.13 beam,
2.76 greedy, as its header says).
"""
import functools
import re
from typing import Callable, Dict, List

# MoEL/MIME's expansion table, in their order (applied with str.replace, so also inside
# longer words, as they did).
CONTRACTIONS = (
    ("it's", "it is"),
    ("don't", "do not"),
    ("doesn't", "does not"),
    ("didn't", "did not"),
    ("you'd", "you would"),
    ("you're", "you are"),
    ("you'll", "you will"),
    ("i'm", "i am"),
    ("they're", "they are"),
    ("that's", "that is"),
    ("what's", "what is"),
    ("couldn't", "could not"),
    ("i've", "i have"),
    ("we've", "we have"),
    ("can't", "cannot"),
    ("i'd", "i would"),
    ("aren't", "are not"),
    ("isn't", "is not"),
    ("wasn't", "was not"),
    ("weren't", "were not"),
    ("won't", "will not"),
    ("there's", "there is"),
    ("there're", "there are"),
)

# Lower-cased words after which a period does not end a sentence.
ABBREVIATIONS = frozenset(
    # "ok": punkt keeps "ok." whole (MoEL's test references: "oh ok. in that case ...")
    ["mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs"]
    + ["e.g", "i.e", "a.m", "p.m", "u.s", "ok"]
)

# A whitespace-separated chunk that ends a sentence: a word, one period, then optional
# closing quotes/brackets (the same closers NLTK's tokenizer accepts after a final period).
_SENTENCE_FINAL = re.compile(r"^(?P<word>.*[^.])\.[\]\)}>\"']*$")

_ASCII_WHITESPACE = re.compile(r"[ \t\n\r\f\v]+")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def expand_contractions(text: str) -> str:
    """Apply :data:`CONTRACTIONS` in order, as substring replacements."""
    for short, long in CONTRACTIONS:
        text = text.replace(short, long)
    return text


def split_sentences(text: str) -> List[str]:
    """Split after every period-final word that is not in :data:`ABBREVIATIONS`."""
    sentences, current = [], []
    for chunk in text.split():
        current.append(chunk)
        match = _SENTENCE_FINAL.match(chunk)
        if match and match.group("word").lower() not in ABBREVIATIONS:
            sentences.append(" ".join(current))
            current = []
    if current:
        sentences.append(" ".join(current))
    return sentences


@functools.lru_cache(maxsize=1)
def _word_tokenizer():
    # nltk takes over a second to import: only pay for it when tokenizing.
    from nltk.tokenize.destructive import NLTKWordTokenizer

    return NLTKWordTokenizer()


def paper_tokenize(text: str) -> List[str]:
    """MoEL/MIME tokens of ``text``: lower-case, expand contractions, split, word-tokenize."""
    tokenizer = _word_tokenizer()
    text = expand_contractions(text.lower())
    return [token for sentence in split_sentences(text) for token in tokenizer.tokenize(sentence)]


def perl_split(line: str, lowercase: bool = True) -> List[str]:
    """The words multi-bleu.perl [-lc] reads from ``line``."""
    if lowercase:
        line = line.translate(_ASCII_LOWER)
    return [word for word in _ASCII_WHITESPACE.split(line) if word]


def whitespace_tokenize(text: str) -> List[str]:
    """``multi-bleu.perl -lc`` tokens: A-Z lower-cased, split on ASCII whitespace."""
    return perl_split(text, lowercase=True)


TOKENIZERS: Dict[str, Callable[[str], List[str]]] = {
    "paper": paper_tokenize,
    "whitespace": whitespace_tokenize,
}


def get_tokenizer(name: str) -> Callable[[str], List[str]]:
    """The tokenizer called ``name`` (``paper`` or ``whitespace``)."""
    try:
        return TOKENIZERS[name]
    except KeyError:
        raise ValueError(
            f"unknown tokenizer {name!r}; choose one of {', '.join(sorted(TOKENIZERS))}"
        ) from None
