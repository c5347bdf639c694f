"""Tests of the mirror-first EmpatheticDialogues builder and ParlAI's stock teacher on it.

The shared mirror folder holds the three CSVs (``empatheticdialogues/{train,valid,test}.csv``)
and no archive. The public archive URL is always pointed at the loopback server, so no test
can reach parl.ai.
"""
import os

import pytest

import parlai_empathy
from parlai_empathy.data import empathetic_dialogues_build as ed
from parlai_empathy.mirror import MIRROR_ENV, DownloadError, RemoteFile, sha256_of
from parlai_cli import run_parlai
from test_mirror import (  # noqa: F401  (fixtures are used by name)
    dot_folders,
    expected_mode,
    http_mirror,
    make_tar_gz,
    read_text,
    no_remote_network,
    server,
    start_server,
    stop_server,
)

SPLITS = ("train", "valid", "test")
ARCHIVE_PATH = ed.ARCHIVE.mirror_path  # empatheticdialogues/empatheticdialogues.tar.gz
TINY = (
    ed.HEADER + "\n"
    "hit:0_conv:1,1,joyful,I won the race_comma_ finally,1,I won the race!,,\n"
    "hit:0_conv:1,2,joyful,I won the race_comma_ finally,0,Congratulations!,,\n"
)


def installed(datapath, split):
    return os.path.join(datapath, "empatheticdialogues", "empatheticdialogues", f"{split}.csv")


def built_version(datapath):
    with open(os.path.join(datapath, "empatheticdialogues", ".built")) as f:
        return f.read().split("\n")[1]


def assert_nothing_built(datapath):
    assert not os.path.exists(os.path.join(datapath, "empatheticdialogues"))
    assert dot_folders(datapath) == []


def write_mirror(root, files):
    """Lay out ``files`` (mirror path -> text or bytes) under ``root``."""
    for rel, content in files.items():
        path = os.path.join(root, *rel.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content.encode("utf-8") if isinstance(content, str) else content)
    return str(root)


@pytest.fixture
def public_on_loopback(server, monkeypatch):
    """Point the public archive URL at the loopback server (where it is 404)."""
    url = server.base + "public/" + ARCHIVE_PATH
    monkeypatch.setattr(ed, "ARCHIVE", RemoteFile(ARCHIVE_PATH, url, ed.ARCHIVE.sha256))
    return url


@pytest.fixture
def tiny_archive(tmp_path):
    """A .tar.gz with ED's layout but tiny CSVs (so its sha256 is not the pinned one)."""
    folder = tmp_path / "archive-mirror"
    path = os.path.join(folder, *ARCHIVE_PATH.split("/"))
    os.makedirs(os.path.dirname(path))
    make_tar_gz(path, {f"empatheticdialogues/{s}.csv": TINY.encode() for s in SPLITS})
    return str(folder), path


# ---------------------------------------------------------------------------------------


def test_compat_replaced_parlai_build():
    """The stock teacher's module-level ``build`` is ours, so -t empathetic_dialogues uses it."""
    import parlai.tasks.empathetic_dialogues.agents as a
    import parlai.tasks.empathetic_dialogues.build as b

    assert parlai_empathy  # the installed package is what applied compat
    assert a.build is ed.build
    assert b.build is ed.build


def test_build_installs_csvs_from_mirror_folder(ed_datapath, mirror):
    """The CSVs land where ParlAI's teacher reads them, marked built with version 1.0."""
    from parlai.core import build_data

    for split in SPLITS:
        assert sha256_of(installed(ed_datapath, split)) == sha256_of(
            os.path.join(mirror, "empatheticdialogues", f"{split}.csv")
        )
    assert built_version(ed_datapath) == "1.0"
    assert build_data.built(os.path.join(ed_datapath, "empatheticdialogues"), version_string="1.0")
    assert dot_folders(ed_datapath) == []
    # A second build is a no-op: the marker is not rewritten.
    marker = os.path.join(ed_datapath, "empatheticdialogues", ".built")
    before = (os.stat(marker).st_ino, read_text(marker))
    ed.build({"datapath": ed_datapath})
    assert (os.stat(marker).st_ino, read_text(marker)) == before


def test_build_from_http_mirror(http_mirror, public_on_loopback, mirror, datapath):
    """Over HTTP: the archive is tried first (absent), then the three CSVs are used."""
    ed.build({"datapath": datapath})
    assert http_mirror.requests == [ARCHIVE_PATH] + [f"empatheticdialogues/{s}.csv" for s in SPLITS]
    for split in SPLITS:
        assert sha256_of(installed(datapath, split)) == sha256_of(
            os.path.join(mirror, "empatheticdialogues", f"{split}.csv")
        )
    assert built_version(datapath) == "1.0"
    for split in SPLITS:  # the umask's usual mode, like ParlAI's own unpacked files
        assert os.stat(installed(datapath, split)).st_mode & 0o777 == expected_mode(0o666)


def test_archive_with_wrong_sha_rejected_then_csvs_used(
    tiny_archive, mirror, public_on_loopback, monkeypatch, datapath
):
    """A mirror archive that fails the pinned sha256 is never unpacked; the CSVs win."""
    archive_root, _ = tiny_archive
    srv, thread = start_server([archive_root, mirror])
    try:
        monkeypatch.setenv(MIRROR_ENV, srv.base)
        ed.build({"datapath": datapath})
        requests = list(srv.requests)
    finally:
        stop_server(srv, thread)
    assert requests == [ARCHIVE_PATH] + [f"empatheticdialogues/{s}.csv" for s in SPLITS]
    for split in SPLITS:
        assert sha256_of(installed(datapath, split)) == sha256_of(
            os.path.join(mirror, "empatheticdialogues", f"{split}.csv")
        )
    assert not os.path.exists(os.path.join(datapath, "empatheticdialogues", "empatheticdialogues.tar.gz"))
    assert built_version(datapath) == "1.0"


def test_archive_with_pinned_sha_is_unpacked(tiny_archive, monkeypatch, public_on_loopback, datapath):
    """A mirror archive matching the pinned sha256 is unpacked (and not left lying around)."""
    archive_root, archive = tiny_archive
    monkeypatch.setattr(ed, "ARCHIVE", RemoteFile(ARCHIVE_PATH, None, sha256_of(archive)))
    monkeypatch.setenv(MIRROR_ENV, archive_root)
    ed.build({"datapath": datapath})
    for split in SPLITS:
        with open(installed(datapath, split)) as f:
            assert f.read() == TINY
    assert sorted(os.listdir(os.path.join(datapath, "empatheticdialogues"))) == [".built", "empatheticdialogues"]


def test_archive_missing_a_split_builds_nothing(tmp_path, monkeypatch, public_on_loopback, datapath):
    """An archive without test.csv is refused by name; nothing is marked built."""
    root = tmp_path / "m"
    path = os.path.join(root, *ARCHIVE_PATH.split("/"))
    os.makedirs(os.path.dirname(path))
    make_tar_gz(path, {f"empatheticdialogues/{s}.csv": TINY.encode() for s in ("train", "valid")})
    monkeypatch.setattr(ed, "ARCHIVE", RemoteFile(ARCHIVE_PATH, None, sha256_of(path)))
    monkeypatch.setenv(MIRROR_ENV, str(root))
    with pytest.raises(ValueError, match=r"empatheticdialogues.tar.gz: has no member empatheticdialogues/test.csv"):
        ed.build({"datapath": datapath})
    assert_nothing_built(datapath)


@pytest.mark.parametrize(
    "broken, where",
    [
        ({"valid": "conv_id,utterance_idx,context\n" + TINY.split("\n", 1)[1]}, "valid.csv:1:"),
        ({"train": TINY + "hit:0_conv:2,1,sad,lost my dog,1\n"}, "train.csv:4:"),
        ({"test": TINY.replace("0,Congratulations!,,", "Congratulations!")}, "test.csv:3:"),
    ],
    ids=["wrong-header", "too-few-fields", "fields-merged"],
)
def test_malformed_csv_names_file_and_line(tmp_path, monkeypatch, public_on_loopback, datapath, broken, where):
    """A malformed mirror CSV is a ValueError naming file:line, and nothing is built."""
    files = {f"empatheticdialogues/{s}.csv": broken.get(s, TINY) for s in SPLITS}
    root = write_mirror(tmp_path / "m", files)
    monkeypatch.setenv(MIRROR_ENV, root)
    with pytest.raises(ValueError) as info:
        ed.build({"datapath": datapath})
    message = str(info.value)
    assert where in message
    assert os.path.join(root, "empatheticdialogues", where.split(":")[0]) in message  # the source
    assert_nothing_built(datapath)


def test_total_failure_lists_every_try(tmp_path, monkeypatch, public_on_loopback, datapath, server):
    """With nothing anywhere, the error names each file, each location and the variable."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(MIRROR_ENV, str(empty))
    with pytest.raises(DownloadError) as info:
        ed.build({"datapath": datapath})
    message = str(info.value)
    assert os.path.join(str(empty), "empatheticdialogues", "empatheticdialogues.tar.gz") in message
    assert os.path.join(str(empty), "empatheticdialogues", "train.csv") in message
    assert public_on_loopback + ": HTTP 404" in message
    assert f"{MIRROR_ENV}={empty}" in message
    assert server.requests == ["public/" + ARCHIVE_PATH]
    assert_nothing_built(datapath)


def test_check_split_file(mirror, tmp_path):
    """The real CSVs pass; CRLF is fine; bad bytes, empty files and short lines are named."""
    for split in SPLITS:
        ed.check_split_file(os.path.join(mirror, "empatheticdialogues", f"{split}.csv"))
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(TINY.replace("\n", "\r\n").encode())
    ed.check_split_file(str(crlf))

    bad_utf8 = tmp_path / "bytes.csv"
    bad_utf8.write_bytes(TINY.encode() + b"hit:1_conv:1,1,sad,\xff\xfe,1,x,,\n")
    with pytest.raises(ValueError, match=r"bytes.csv:4: not UTF-8"):
        ed.check_split_file(str(bad_utf8))

    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty.csv:1: empty file"):
        ed.check_split_file(str(empty))

    short = tmp_path / "short.csv"
    short.write_text(TINY + "\n")  # a blank line has 1 field
    with pytest.raises(ValueError, match=r"short.csv:4: expected at least 8 comma-separated fields, found 1"):
        ed.check_split_file(str(short))


# ---------------------------------------------------------------------------------------
# ParlAI's stock teacher, unchanged, on the built data
# ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_display_data_through_real_cli(mirror, tmp_path):
    """`parlai display_data -t empathetic_dialogues` builds from the mirror and reads it."""
    dp = str(tmp_path / "fresh")
    proc = run_parlai(
        ["display_data", "-t", "empathetic_dialogues", "-dt", "valid", "-n", "3", "--datapath", dp],
        env={MIRROR_ENV: mirror},
        timeout=120,
    )
    out = proc.stdout
    assert "loaded 2768 episodes with a total of 5736 examples" in out
    assert out.count("- - - NEW EPISODE: empathetic_dialogues - - -") == 2
    expected = [
        "Today,as i was leaving for work in the morning,i had a tire burst in the middle of a busy road. That scared the hell out of me!",
        "   Are you fine now?",
        "Yeah,i'm doing alright now, but with minor injuries.",
        "   Cool :) Is your car damaged a lot?",
        "A few weeks ago, I was walking through my hallway, minding my own business, when all of a sudden a hand reached out from under a table and grabbed my ankle.",
        "   That's funny, hope he didn't give you a heart attack.",
    ]
    lines = out.splitlines()
    for text in expected:
        assert any(line.startswith(text) for line in lines), text
    assert built_version(dp) == "1.0"


def _teacher_count(datapath, *extra):
    from parlai.core.params import ParlaiParser
    from parlai.core.teachers import create_task_agent_from_taskname

    opt = ParlaiParser(True, False).parse_args(
        ["-t", "empathetic_dialogues", "-dt", "train:ordered", "--datapath", datapath, *extra]
    )
    (teacher,) = create_task_agent_from_taskname(opt)
    return teacher.num_episodes(), teacher.num_examples()


def test_train_counts_in_process(ed_datapath):
    """Train counts of the stock teacher agree with the CSV (and 40252 experiencer-only)."""
    with open(installed(ed_datapath, "train"), encoding="utf-8") as f:
        rows = [line.split(",", 2)[:2] for line in f.read().splitlines()[1:]]
    follow_ups = [(c, int(i)) for (c, i), (prev, _) in zip(rows[1:], rows) if c == prev]
    experiencer = sum(1 for _, idx in follow_ups if idx % 2 == 0)

    _, only_experiencer = _teacher_count(ed_datapath, "--train-experiencer-only", "True")
    assert only_experiencer == experiencer == 40252
    _, both_sides = _teacher_count(ed_datapath)
    assert both_sides == len(follow_ups)
