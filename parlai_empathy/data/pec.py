"""PEC (Zhong et al., "Towards Persona-Based Empathetic Conversational Models", EMNLP 2020):
build and read the public ``hf_pec.zip`` release.

The archive comes mirror first (``<mirror>/pec/hf_pec.zip``), then from its public URL (no
sha256 is published, so none is checked; the digest of each download is logged), and is
unpacked under ``<datapath>/pec/hf_pec/<domain>/{train,valid,test,persona}.txt``. Parsing
follows ``shared/docs/PEC_FORMAT.md``: ``SPEAKER---+---UTTERANCE`` (separator matched
literally, first occurrence), lines without the separator continue the previous utterance
(joined with one space), blank lines are ignored, a line holding 20 asterisks ends a
conversation whose last utterance is the response.

:func:`load_examples` gives one ParlAI example per conversation (its own episode): the
context joined with newlines as ``text`` (one utterance a line, as ParlAI's history
delimiter would join them), the response as label, the response speaker's ``personas``
(up to ``num_personas`` sentences, sampled deterministically per conversation), ``domain``,
``context_speakers``, ``response_speaker``, ``conversation_index`` (0-based position of the
conversation in its split file) and, for valid/test, 100 ``label_candidates``: the gold
response and 99 other distinct responses of the same domain and split, drawn
deterministically per conversation from the whole split file (so they do not change with
``--pec-filter``). A split with fewer than 100 distinct responses gives every example all
of them; the shortfall is logged.

Kept or dropped, and counted (logged by :func:`load_examples`):

* response speaker missing from ``persona.txt``: kept with ``personas = []``;
* a conversation with no context (one utterance) or an empty response: dropped;
* with ``filter_like_seed_paper`` (``--pec-filter``): dropped unless the context has more
  than one speaker and at least 20 words, the response speaker has at least 25 persona
  sentences and the response has at least 10 words (the seed paper's filter).

Emotion labels file (``--pec-emotion-file``): JSON Lines, one object per conversation,
``{"domain": "happy", "split": "valid", "index": 12, "emotion": "joyful"}`` where
``index`` is the conversation's ``conversation_index`` and ``emotion`` one of the 32 ED
emotions (:data:`parlai_empathy.emotions.ED_EMOTIONS`); it fills the ``emotion`` field.
An optional ``"probability"`` (a number in [0, 1], as ``parlai empathy_label_emotions``
writes it) fills ``emotion_probability``; other keys (``top5``, ``example`` ...) are ignored.
Blank lines are allowed; anything else malformed is an error naming ``file:line``.

    parlai display_data -t pec:happy -dt valid -n 3 --display-add-fields personas,domain
"""
import hashlib
import json
import os
import random
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from parlai.utils import logging

from parlai_empathy.emotions import normalize_emotion
from parlai_empathy.mirror import RemoteFile, build_once, download, sha256_of, unpack

VERSION = "hf_pec-1"
DOMAINS = ("happy", "offmychest")
SPLITS = ("train", "valid", "test")
ARCHIVE = RemoteFile(
    mirror_path="pec/hf_pec.zip",
    url="https://dl.dropboxusercontent.com/s/u04fzuhsnxd0uvw/hf_pec.zip",
    sha256=None,  # not published
)
SEPARATOR = "---+---"
END_OF_BLOCK = "*" * 20
NUM_CANDIDATES = 100
DEFAULT_NUM_PERSONAS = 10
# the seed paper's filter
MIN_CONTEXT_SPEAKERS = 2
MIN_CONTEXT_WORDS = 20
MIN_PERSONA_SENTENCES = 25
MIN_RESPONSE_WORDS = 10


class PECFormatError(ValueError):
    """A PEC file is not in the release's layout; the message names ``file:line``."""


# --- build ------------------------------------------------------------------------------------


def build(opt) -> str:
    """Install ``hf_pec`` under ``<datapath>/pec`` once; return the ``hf_pec`` folder."""
    folder = os.path.join(opt["datapath"], "pec")
    build_once(folder, VERSION, populate)
    return os.path.join(folder, "hf_pec")


def populate(folder: str) -> None:
    archive = os.path.join(folder, ARCHIVE.filename)
    source = download(ARCHIVE, archive, timeout=300)
    logging.info(f"PEC: {ARCHIVE.filename} from {source} has sha256 {sha256_of(archive)}")
    unpack(archive, folder)
    os.remove(archive)
    for domain in DOMAINS:
        for name in SPLITS + ("persona",):
            member = os.path.join("hf_pec", domain, f"{name}.txt")
            if not os.path.isfile(os.path.join(folder, member)):
                raise PECFormatError(f"{source}: the archive has no member {member}")


# --- read the release files -------------------------------------------------------------------


@dataclass(frozen=True)
class Conversation:
    domain: str
    split: str
    index: int  # 0-based position in the split file
    line: int  # 1-based line of the closing asterisk line
    context: Tuple[str, ...]
    context_speakers: Tuple[str, ...]
    response: str
    response_speaker: str


def _open_checked(path: str, what: str):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"PEC {what} file {path} does not exist")
    return open(path, encoding="utf-8")


def read_conversations(path: str, domain: str = "", split: str = "") -> Iterator[Conversation]:
    """Yield the conversations of one ``train/valid/test.txt`` file in file order."""
    speakers: List[str] = []
    texts: List[str] = []
    index = 0
    start = 0
    with _open_checked(path, "conversation") as f:
        for number, raw in enumerate(f, start=1):
            line = raw.rstrip("\r\n")
            if END_OF_BLOCK in line:
                if len(texts) == 0:
                    logging.debug(f"{path}:{number}: empty conversation skipped")
                    continue
                yield Conversation(
                    domain=domain,
                    split=split,
                    index=index,
                    line=number,
                    context=tuple(texts[:-1]),
                    context_speakers=tuple(speakers[:-1]),
                    response=texts[-1],
                    response_speaker=speakers[-1],
                )
                index += 1
                speakers, texts = [], []
            elif not line.strip():
                continue
            elif SEPARATOR in line:
                speaker, _, text = line.partition(SEPARATOR)
                if not texts:
                    start = number
                speakers.append(speaker.strip())
                texts.append(text.strip())
            elif texts:
                texts[-1] = f"{texts[-1]} {line.strip()}" if texts[-1] else line.strip()
            else:
                raise PECFormatError(
                    f"{path}:{number}: utterance line has no speaker separator "
                    f"{SEPARATOR!r} and there is no previous utterance it could continue"
                )
    if texts:
        logging.warning(
            f"{path}:{start}: the last conversation is not closed by a line of 20 "
            "asterisks; it is ignored"
        )


def read_personas(path: str) -> Dict[str, List[str]]:
    """Speaker -> persona sentences from ``persona.txt`` (blank lines ignored; a speaker
    with several blocks gets their sentences concatenated in file order)."""
    personas: Dict[str, List[str]] = {}
    speaker: Optional[str] = None
    with _open_checked(path, "persona") as f:
        for raw in f:
            line = raw.strip()
            if END_OF_BLOCK in line:
                speaker = None
            elif not line:
                continue
            elif speaker is None:
                speaker = line
                personas.setdefault(speaker, [])
            else:
                personas[speaker].append(line)
    return personas


def read_emotion_labels(path: str, domain: str, split: str) -> Dict[int, Tuple[str, int]]:
    """``conversation_index -> (emotion, line number)`` for one domain and split of an
    emotion labels file (format in the module docstring); every line is checked."""
    return {
        index: (emotion, line)
        for index, (emotion, line, _) in read_emotion_records(path, domain, split).items()
    }


def read_emotion_records(
    path: str, domain: str, split: str
) -> Dict[int, Tuple[str, int, Optional[float]]]:
    """``conversation_index -> (emotion, line number, probability or None)``, as
    :func:`read_emotion_labels`."""
    found: Dict[Tuple[str, str, int], int] = {}
    wanted: Dict[int, Tuple[str, int, Optional[float]]] = {}
    with _open_checked(os.path.expanduser(path), "emotion labels") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PECFormatError(f"{where}: malformed JSON line ({exc.msg})") from None
            if not isinstance(record, dict) or any(
                k not in record for k in ("domain", "split", "index", "emotion")
            ):
                raise PECFormatError(
                    f'{where}: expected an object with "domain", "split", "index" and '
                    f'"emotion", got {line.strip()[:200]}'
                )
            if record["domain"] not in DOMAINS or record["split"] not in SPLITS:
                raise PECFormatError(
                    f"{where}: domain must be one of {DOMAINS} and split one of {SPLITS}"
                )
            index = record["index"]
            if not isinstance(index, int) or isinstance(index, bool) or index < 0:
                raise PECFormatError(
                    f"{where}: index must be a non-negative integer, got {index!r}"
                )
            try:
                emotion = normalize_emotion(record["emotion"])
            except ValueError as exc:
                raise PECFormatError(f"{where}: {exc}") from None
            probability = record.get("probability")
            if probability is not None and (
                isinstance(probability, bool)
                or not isinstance(probability, (int, float))
                or not 0.0 <= probability <= 1.0
            ):
                raise PECFormatError(
                    f"{where}: probability must be a number in [0, 1], got {probability!r}"
                )
            key = (record["domain"], record["split"], index)
            if key in found:
                raise PECFormatError(f"{where}: {key} already labelled on line {found[key]}")
            found[key] = number
            if key[:2] == (domain, split):
                wanted[index] = (emotion, number, probability)
    return wanted


# --- examples ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PECSettings:
    num_personas: int = DEFAULT_NUM_PERSONAS  # negative: keep every persona sentence
    filter_like_seed_paper: bool = False
    emotion_file: Optional[str] = None


@dataclass
class LoadReport:
    """What :func:`load_examples` read, kept and dropped for one domain and split."""

    domain: str
    split: str
    conversations: int = 0
    examples: int = 0
    missing_persona: int = 0  # kept with empty personas unless filtered out
    missing_persona_speakers: List[str] = field(default_factory=list)
    no_context: int = 0  # dropped
    empty_response: int = 0  # dropped
    filtered_out: int = 0  # dropped by the seed paper's filter
    missing_emotion: int = 0  # kept without an 'emotion' field
    distinct_responses: int = 0
    candidates_per_example: int = 0


def passes_filter(conversation: Conversation, persona_sentences: int) -> bool:
    """The seed paper's filter on PEC (counts whitespace-separated words)."""
    return (
        len(set(conversation.context_speakers)) >= MIN_CONTEXT_SPEAKERS
        and sum(len(u.split()) for u in conversation.context) >= MIN_CONTEXT_WORDS
        and persona_sentences >= MIN_PERSONA_SENTENCES
        and len(conversation.response.split()) >= MIN_RESPONSE_WORDS
    )


def _rng(*key) -> random.Random:
    digest = hashlib.sha256("\x1f".join(str(k) for k in key).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def sample_personas(sentences: Sequence[str], limit: int, key: tuple) -> List[str]:
    """Up to ``limit`` sentences (all when ``limit`` < 0), chosen by a generator seeded
    with ``key`` and kept in file order."""
    if limit < 0 or len(sentences) <= limit:
        return list(sentences)
    chosen = sorted(_rng("personas", *key).sample(range(len(sentences)), limit))
    return [sentences[i] for i in chosen]


class CandidatePool:
    """The non-empty responses of one split, to draw ranking candidates from."""

    def __init__(self, responses: Sequence[str]):
        self.responses = [r for r in responses if r]
        self.distinct = list(dict.fromkeys(self.responses))  # first-seen order
        self._members = frozenset(self.distinct)

    @property
    def candidates_per_example(self) -> int:
        return min(NUM_CANDIDATES, len(self.distinct))

    def sample(self, gold: str, key: tuple) -> List[str]:
        """The gold response and up to 99 other distinct responses, drawn and ordered by a
        generator seeded with ``key``; all of them when the pool has fewer."""
        rng = _rng("candidates", *key)
        available = len(self.distinct) - (1 if gold in self._members else 0)
        wanted = NUM_CANDIDATES - 1
        if available <= wanted:
            chosen = [c for c in self.distinct if c != gold]
            rng.shuffle(chosen)
        else:
            chosen, seen = [], {gold}
            while len(chosen) < wanted:
                candidate = self.responses[rng.randrange(len(self.responses))]
                if candidate not in seen:
                    seen.add(candidate)
                    chosen.append(candidate)
        chosen.insert(rng.randrange(len(chosen) + 1), gold)
        return chosen


def load_examples(
    data_dir: str, domain: str, split: str, settings: PECSettings = PECSettings()
) -> Tuple[List[dict], LoadReport]:
    """Examples of one domain and split of ``data_dir`` (an ``hf_pec`` folder), and a report
    of what was kept and dropped (also logged)."""
    if domain not in DOMAINS or split not in SPLITS:
        raise ValueError(f"PEC has domains {DOMAINS} and splits {SPLITS}; got {domain}/{split}")
    report = LoadReport(domain, split)
    personas = read_personas(os.path.join(data_dir, domain, "persona.txt"))
    split_file = os.path.join(data_dir, domain, f"{split}.txt")
    conversations = list(read_conversations(split_file, domain, split))
    report.conversations = len(conversations)
    emotions = _emotions(settings.emotion_file, domain, split, len(conversations))

    with_candidates = split != "train"
    if with_candidates:
        pool = CandidatePool([c.response for c in conversations])
        report.distinct_responses = len(pool.distinct)
        report.candidates_per_example = pool.candidates_per_example

    examples = []
    for conversation in conversations:
        speaker_personas = personas.get(conversation.response_speaker)
        if speaker_personas is None:
            report.missing_persona += 1
            if len(report.missing_persona_speakers) < 5:
                report.missing_persona_speakers.append(conversation.response_speaker)
            speaker_personas = []
        if not conversation.context:
            report.no_context += 1
            continue
        if not conversation.response:
            report.empty_response += 1
            continue
        if settings.filter_like_seed_paper and not passes_filter(
            conversation, len(speaker_personas)
        ):
            report.filtered_out += 1
            continue
        key = (domain, split, conversation.index)
        example = {
            "text": "\n".join(conversation.context),
            "labels": [conversation.response],
            "personas": sample_personas(speaker_personas, settings.num_personas, key),
            "domain": domain,
            "context_speakers": list(conversation.context_speakers),
            "response_speaker": conversation.response_speaker,
            "conversation_index": conversation.index,
        }
        if with_candidates:
            example["label_candidates"] = pool.sample(conversation.response, key)
        if emotions is not None:
            if conversation.index in emotions:
                emotion, _, probability = emotions[conversation.index]
                example["emotion"] = emotion
                if probability is not None:
                    example["emotion_probability"] = probability
            else:
                report.missing_emotion += 1
        examples.append(example)
    report.examples = len(examples)
    _log(report, settings)
    return examples, report


def _emotions(path: Optional[str], domain: str, split: str, count: int):
    if not path:
        return None
    labels = read_emotion_records(path, domain, split)
    for index, (_, line, _) in labels.items():
        if index >= count:
            raise PECFormatError(
                f"{path}:{line}: index {index} is out of range: {domain}/{split}.txt has "
                f"{count} conversations"
            )
    return labels


def _log(report: LoadReport, settings: PECSettings) -> None:
    where = f"PEC {report.domain}/{report.split}"
    logging.info(
        f"{where}: {report.conversations} conversations, {report.examples} examples "
        f"(dropped: {report.no_context} without context, {report.empty_response} with an "
        f"empty response, {report.filtered_out} by --pec-filter)"
    )
    if report.missing_persona:
        logging.warning(
            f"{where}: {report.missing_persona} conversations have a response speaker "
            f"missing from persona.txt (e.g. "
            f"{', '.join(map(repr, report.missing_persona_speakers))}); "
            "they are kept with empty personas"
            + (" unless the filter drops them" if settings.filter_like_seed_paper else "")
        )
    if report.split != "train" and report.candidates_per_example < NUM_CANDIDATES:
        logging.warning(
            f"{where}: only {report.distinct_responses} distinct responses, so each example "
            f"has {report.candidates_per_example} label candidates instead of {NUM_CANDIDATES}"
        )
    if report.missing_emotion:
        logging.warning(
            f"{where}: {report.missing_emotion} examples have no label in "
            f"{settings.emotion_file} and no 'emotion' field"
        )
