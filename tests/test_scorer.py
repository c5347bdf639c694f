"""The file scorer: `python -m parlai_empathy.metrics.score` and `parlai empathy_score`."""
import json
import sys

import pytest

from parlai_cli import run_command, run_parlai
from parlai_empathy.metrics.parlai_metrics import generation_metrics
from parlai_empathy.metrics.score import ScoreInputError, load_inputs, main, read_lines

# the hand-worked multi-bleu.perl example of test_metrics.py: BLEU = 44.50
HYPS = ["the cat sat on the mat", "i am so sorry", "Hello !"]
REFS_A = ["the cat sat on a mat", "i am sorry", "hello there my friend !"]
REFS_B = ["the cat sat on a mat", "i am so so sorry", "hello there my friend !"]
MBLEU_LINE = "BLEU = 44.50, 91.7/66.7/50.0/25.0 (BP=0.846, ratio=0.857, hyp_len=12, ref_len=14)"


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


@pytest.fixture
def files(tmp_path):
    return {
        "hyp": _write(tmp_path / "hyp.txt", HYPS),
        "ref_a": _write(tmp_path / "ref_a.txt", REFS_A),
        "ref_b": _write(tmp_path / "ref_b.txt", REFS_B),
        "contexts": _write(tmp_path / "ctx.txt", ["where is the cat ?", "i lost my job", "hi"]),
        "emotions": _write(tmp_path / "emo.txt", ["Curious", "sad", "joyful"]),
        "pred": _write(tmp_path / "pred.txt", ["curious", "afraid", "joyful"]),
    }


def test_scores_printed_and_saved_equal_the_suite(files, tmp_path, capsys):
    out_json = tmp_path / "scores.json"
    rows = tmp_path / "rows.jsonl"
    argv = [
        "--hyp", files["hyp"], "--ref", files["ref_a"], files["ref_b"],
        "--contexts", files["contexts"], "--emotions", files["emotions"],
        "--pred-emotions", files["pred"], "--json", str(out_json), "--per-example", str(rows),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out

    expected = {
        k: v.value()
        for k, v in generation_metrics(HYPS, [list(r) for r in zip(REFS_A, REFS_B)]).items()
    }
    saved = json.loads(out_json.read_text())
    assert saved["n_responses"] == 3 and saved["tokenizer"] == "paper"
    assert saved["scores"]["mbleu"] == pytest.approx(44.50154967, abs=1e-6)  # hand-worked
    assert saved["scores"]["emotion_acc"] == pytest.approx(2 / 3)  # "Curious" = "curious"
    for name, value in expected.items():
        assert saved["scores"][name] == pytest.approx(value), name
        assert f"{name} " in printed and f"{value:10.4f}" in printed, name
    assert f"multi-bleu.perl: {MBLEU_LINE}" in printed
    assert saved["multi_bleu"] == MBLEU_LINE

    lines = [json.loads(line) for line in rows.read_text().splitlines()]
    assert [row["line"] for row in lines] == [1, 2, 3]
    assert lines[1]["refs"] == ["i am sorry", "i am so so sorry"]
    assert lines[1]["context"] == "i lost my job" and lines[1]["pred_emotion"] == "afraid"
    assert lines[0]["resp_len"] == 6
    # rougeL of line 1: LCS "the cat sat on mat" = 5 of 6 words each way
    assert lines[0]["rougeL"] == pytest.approx(500 / 6)


def test_one_reference_file_and_whitespace_tokenizer(files, tmp_path, capsys):
    assert main(["--hyp", files["hyp"], "--ref", files["ref_a"], "--tokenizer", "whitespace"]) == 0
    printed = capsys.readouterr().out
    assert "3 responses" in printed and "tokenizer: whitespace" in printed
    assert "emotion_acc" not in printed
    # with only "i am sorry" for line 2 its reference length is 3 as before, but "so" and
    # every n-gram with it miss: p1 = (5+3+2)/12, p2 = (3+1+0)/9, p3 = (2+0)/6, p4 = 1/4;
    # 100 * exp(-1/6) * (10/12 * 4/9 * 2/6 * 1/4) ** 0.25 = 35.48
    assert (
        "BLEU = 35.48, 83.3/44.4/33.3/25.0 (BP=0.846, ratio=0.857, hyp_len=12, ref_len=14)"
        in printed
    )


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f, p: {"hyp": str(p / "nope.txt")}, r"nope\.txt: no such file"),
        (lambda f, p: {"ref": [f["ref_a"], str(p)]}, r"is a directory"),
        (
            lambda f, p: {"ref": [_write(p / "short.txt", REFS_A[:2])]},
            r"short\.txt has 2 lines but .*hyp\.txt has 3: .*hyp\.txt:3 has no counterpart",
        ),
        (
            lambda f, p: {"emotions": _write(p / "long.txt", "abcde"), "pred_emotions": f["pred"]},
            r"long\.txt has 5 lines but .*hyp\.txt has 3: .*long\.txt:4 has no counterpart",
        ),
        (lambda f, p: {"emotions": f["emotions"]}, r"needs both --emotions and --pred-emotions"),
        (lambda f, p: {"hyp": None}, r"no responses file given \(--hyp\)"),
        (lambda f, p: {"hyp": _write(p / "empty.txt", [])}, r"empty\.txt: no responses"),
        (lambda f, p: {"ref": None}, r"no references file given \(--ref\)"),
    ],
)
def test_bad_input_is_one_clear_error(files, tmp_path, capsys, change, message):
    from parlai_empathy.metrics.score import run

    opt = {"hyp": files["hyp"], "ref": [files["ref_a"]]}
    opt.update(change(files, tmp_path))
    with pytest.raises(ScoreInputError, match=message):
        run(opt)


def test_non_utf8_line_is_reported_with_its_number(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("ok\nstill ok\ncaf\u00e9\n".encode("latin-1"))
    with pytest.raises(ScoreInputError, match=r"latin1\.txt:3: not UTF-8"):
        read_lines(str(bad))
    # CRLF endings and a missing final newline are fine
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(b"a b\r\nc d")
    assert read_lines(str(crlf)) == ["a b", "c d"]
    assert load_inputs(str(crlf), [str(crlf)]).refs == [["a b"], ["c d"]]


def test_python_m_entry_point(files):
    proc = run_command(
        [sys.executable, "-m", "parlai_empathy.metrics.score", "--hyp", files["hyp"],
         "--ref", files["ref_a"], files["ref_b"]],
        timeout=120, merge_stderr=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert MBLEU_LINE in proc.stdout

    missing = run_command(
        [sys.executable, "-m", "parlai_empathy.metrics.score", "--hyp", files["hyp"],
         "--ref", files["hyp"] + ".missing"],
        timeout=120, merge_stderr=False,
    )
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"python -m parlai_empathy.metrics.score: error: {files['hyp']}.missing: no such file"
    ]


@pytest.mark.slow
def test_parlai_empathy_score_command(files, tmp_path):
    out_json = tmp_path / "scores.json"
    proc = run_parlai(
        ["empathy_score", "--hyp", files["hyp"], "--ref", files["ref_a"], files["ref_b"],
         "--emotions", files["emotions"], "--pred-emotions", files["pred"], "--json", out_json],
        timeout=120,
    )
    assert MBLEU_LINE in proc.stdout
    for name in ("bleu1", "bleu4", "mbleu", "rougeL", "dist1", "dist2", "resp_len",
                 "vader_delta", "emotion_acc"):
        assert name in proc.stdout, name
    assert json.loads(out_json.read_text())["scores"]["emotion_acc"] == pytest.approx(2 / 3)

    short = _write(tmp_path / "short.txt", REFS_A[:1])
    failed = run_parlai(
        ["empathy_score", "--hyp", files["hyp"], "--ref", short], timeout=120, check=False
    )
    assert failed.returncode != 0
    expected = f"parlai empathy_score: error: {short} has 1 lines but {files['hyp']} has 3"
    assert expected in failed.stdout
    assert "Traceback" not in failed.stdout
