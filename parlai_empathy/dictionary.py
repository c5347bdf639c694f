"""The papers' token space as a ParlAI dictionary, and readable text back from any dictionary.

**Tokenizing.** MoEL and MIME train, and are scored, on text lower-cased, contraction-expanded
and NLTK-tokenized (:func:`parlai_empathy.metrics.tokenization.paper_tokenize`). ParlAI picks a
dictionary's tokenizer by name (``--dict-tokenizer NAME`` calls ``NAME_tokenize``);
:class:`EmpathyDictionaryAgent` adds ``paper`` to ParlAI's names. The name is saved in the
model's ``.opt``, so a reloaded model or a zoo release tokenizes the way it was trained::

    parlai train_model -m empathy/moel -t empathetic_dialogues --train-experiencer-only true \
        -mf /tmp/moel/model --dict-tokenizer paper     # (the default of our generators)

**Detokenizing.** A generator's reply is a sequence of dictionary tokens; ParlAI's
``vec2txt`` joins them with spaces (``i ' m sorry to hear that .`` for the ``re`` tokenizer),
and only the BPE families (``gpt2``, ``bytelevelbpe``) give text back. :func:`detokenize`
turns each tokenizer's output back into a sentence (``I'm sorry to hear that.``) before any
metric or display sees it; :class:`DetokenizedOutputMixin` does that for a
``TorchGeneratorAgent``'s replies. The scorer then tokenizes the text the papers' way, so a
model's numbers do not depend on the dictionary it happens to use.

==========================  =========================================================
``--dict-tokenizer``        what :func:`detokenize` does with the joined tokens
==========================  =========================================================
``paper``, ``nltk``         NLTK's Treebank detokenizer (``should n't`` -> ``shouldn't``)
``re``, ``split``, ``bpe``  rejoin what ParlAI's regex split inside a word (``i ' m``,
                            ``well - known``, ``10 , 000``, ``. . .``), then Treebank
``space``                   nothing (splitting on spaces loses nothing)
``gpt2``, ``bytelevelbpe``  nothing (ParlAI's ``vec2txt`` already decodes them)
==========================  =========================================================

A lower-casing dictionary's text also gets sentence-initial capitals and a capital ``I``
(:func:`display_case`); every metric lower-cases again, so this only changes what people read.
"""
import functools
import re
from typing import List

from parlai.core.dict import DictionaryAgent

PAPER_TOKENIZER = "paper"

# tokenizers whose joined tokens need rejoining inside words first (ParlAI's \w+|[^\w\s])
_REGEX_SPLIT = ("re", "split", "bpe")
_TREEBANK = (PAPER_TOKENIZER, "nltk")
_ALREADY_TEXT = ("space", "gpt2", "bytelevelbpe", "slow_bytelevel_bpe")
DETOKENIZABLE = _REGEX_SPLIT + _TREEBANK + _ALREADY_TEXT

_APOSTROPHE_INSIDE = re.compile(r"(?<=\w) ' (?=\w)")  # i ' m, wasn ' t, john ' s
_HYPHEN_INSIDE = re.compile(r"(?<=\w) - (?=\w)")  # well - known
_NUMBER_INSIDE = re.compile(r"(?<=\d) ([.,:]) (?=\d)")  # 10 , 000 / 3 . 5 / 10 : 30
_REPEATED_MARK = re.compile(r"([.!?])(?: \1)+")  # . . . -> ...
_DETACHED_MARKS = re.compile(r"(?<=\S) ([.!?]{2,})(?= |$)")  # that ... -> that...
_SENTENCE_START = re.compile(r"(^|[.!?]\s+)([a-z])")
_LONE_I = re.compile(r"\bi\b(?=$|[\s'.,!?;:])")


@functools.lru_cache(maxsize=1)
def _treebank():
    from nltk.tokenize.treebank import TreebankWordDetokenizer

    return TreebankWordDetokenizer()


def detokenize(text: str, tokenizer: str) -> str:
    """Readable text from tokens joined by spaces, for the dictionary tokenizer ``tokenizer``.

    :raises ValueError: for a tokenizer this function does not know.
    """
    if tokenizer in _ALREADY_TEXT:
        return text
    if tokenizer not in DETOKENIZABLE:
        raise ValueError(
            f"no detokenizer for --dict-tokenizer {tokenizer!r}; known: "
            f"{', '.join(DETOKENIZABLE)}"
        )
    if tokenizer in _REGEX_SPLIT:
        text = _APOSTROPHE_INSIDE.sub("'", text)
        text = _HYPHEN_INSIDE.sub("-", text)
        text = _NUMBER_INSIDE.sub(r"\1", text)
    # a run of one mark (". . ." from ParlAI's split, or generated "." tokens) is one token
    text = _REPEATED_MARK.sub(lambda m: m.group(0).replace(" ", ""), text)
    # the Treebank detokenizer attaches single marks only: attach runs too ("that...")
    return _DETACHED_MARKS.sub(r"\1", _treebank().detokenize(text.split()))


def display_case(text: str) -> str:
    """Capitalize sentence starts and the pronoun ``i`` of lower-cased text."""
    text = _LONE_I.sub("I", text)
    return _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), text)


def readable(text: str, tokenizer: str, lowercased: bool) -> str:
    """:func:`detokenize`, then :func:`display_case` for a lower-casing dictionary."""
    text = detokenize(text, tokenizer)
    return display_case(text) if lowercased else text


class EmpathyDictionaryAgent(DictionaryAgent):
    """ParlAI's dictionary with the papers' tokenizer (``--dict-tokenizer paper``)."""

    @staticmethod
    def paper_tokenize(text: str) -> List[str]:
        """MoEL/MIME's preprocessing: lower-case, expand contractions, NLTK word tokens."""
        from parlai_empathy.metrics.tokenization import paper_tokenize

        return paper_tokenize(text)

    def readable(self, text: str) -> str:
        """This dictionary's joined tokens as a sentence (see :func:`readable`)."""
        return readable(text, self.tokenizer, bool(self.lower))


class DetokenizedOutputMixin:
    """Generated replies as sentences: ``_v2t`` detokenizes with the agent's dictionary.

    Put it before ``TorchGeneratorAgent`` among the bases. ParlAI builds every reply's
    ``text`` (and its beam texts) through ``_v2t``, which stops at the end token, so chat,
    logs, world logs and the metrics all see the readable text.
    """

    def _v2t(self, vec) -> str:
        return readable(super()._v2t(vec), self.dict.tokenizer, bool(self.dict.lower))
