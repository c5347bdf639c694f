"""Tests of the mirror-first EmpatheticDialogues builder and ParlAI's stock teacher on it.

The shared mirror folder holds the three CSVs (``empatheticdialogues/{train,valid,test}.csv``)
and no archive. The public archive URL is always pointed at the loopback server, so no test
can reach parl.ai.
"""
import os
import shutil

import pytest

import parlai_empathy
from parlai_empathy.data import empathetic_dialogues_build as ed
from parlai_empathy.mirror import MIRROR_ENV, DownloadError, RemoteFile, sha256_of
from parlai_cli import run_parlai
from test_mirror import (  # noqa: F401  (fixtures are used by name)
    TRUST_ENV,
    dot_folders,
    expected_mode,
    http_mirror,
    leftovers,
    make_tar_gz,
    read_text,
    no_remote_network,
    server,
    start_server,
    stop_server,
    warnings_logged,
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


def trust_mirror_copies(monkeypatch, root):
    """Trust the ED CSVs under ``root`` by their sha256, as a user with another copy would."""
    entries = [
        f"empatheticdialogues/{s}.csv:{sha256_of(os.path.join(root, 'empatheticdialogues', f'{s}.csv'))}"
        for s in SPLITS
    ]
    monkeypatch.setenv(TRUST_ENV, ",".join(entries))


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
    assert sorted(os.listdir(os.path.join(datapath, "empatheticdialogues"))) == [
        ".built", ".manifest.json", "empatheticdialogues"
    ]


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
    """A malformed mirror CSV (trusted by its sha256) is a ValueError naming the mirror's
    file:line, and nothing is built."""
    files = {f"empatheticdialogues/{s}.csv": broken.get(s, TINY) for s in SPLITS}
    root = write_mirror(tmp_path / "m", files)
    monkeypatch.setenv(MIRROR_ENV, root)
    trust_mirror_copies(monkeypatch, root)
    with pytest.raises(ValueError) as info:
        ed.build({"datapath": datapath})
    message = str(info.value)
    assert message.startswith(os.path.join(root, "empatheticdialogues", where))  # the source
    assert ".building-" not in message  # never the staging copy, deleted by then
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
    short.write_text(TINY + "hit:0_conv:2,1,sad,lost my dog,1\n")
    with pytest.raises(ValueError, match=r"short.csv:4: expected 8 comma-separated fields \(or 9 with inline label candidates\), found 5"):
        ed.check_split_file(str(short))


def parlai_reads(path):
    """The messages ParlAI's own teacher reads from ``path`` (its ``setup_data``, unchanged)."""
    from parlai.tasks.empathetic_dialogues.agents import EmpatheticDialoguesTeacher

    reader = object.__new__(EmpatheticDialoguesTeacher)  # setup_data needs only this field
    reader.experiencer_side_only = False
    return [message for message, _ in reader.setup_data(path)]


LINE_1 = "hit:0_conv:1,1,joyful,I won the race_comma_ finally,1,I won the race!,,"
LINE_2 = "hit:0_conv:1,2,joyful,I won the race_comma_ finally,0,Congratulations!,,"


@pytest.mark.parametrize(
    "lines, error, parlai",
    [
        ([LINE_1, LINE_2], None, "reads"),
        ([LINE_1, LINE_2 + ",great|well done"], None, "reads"),  # 9th: inline candidates
        ([LINE_1, LINE_2.replace("Congratulations!", "Wow, congratulations, really!")],
         ":3: expected 8 comma-separated fields (or 9 with inline label candidates), found 10",
         "wrong number of fields"),
        ([LINE_1.replace("I won the race!", "I won, finally, the race!"), LINE_2],
         ":2: expected 8 comma-separated fields (or 9 with inline label candidates), found 10",
         "misreads"),  # ParlAI silently cuts the first utterance, used as context
        ([LINE_1, LINE_2.replace(",,", ",")], ":3: expected 8", "wrong number of fields"),
        ([LINE_1, LINE_2.replace(",2,", ",3,")], ":3: utterance_idx 3 of hit:0_conv:1 after 1; expected 2",
         "AssertionError"),
        ([LINE_1, LINE_2.replace(",2,", ",two,")], ":3: utterance_idx 'two' is not a number", "ValueError"),
        ([LINE_1, "", LINE_2], ":3: blank line", "splits"),
        ([LINE_1, LINE_2.replace("Congratulations!", "Congrat\rulations!")],
         ":3: carriage return inside the line", "wrong number of fields"),
    ],
    ids=["8-fields", "9-fields", "raw-comma-reply", "raw-comma-opening", "7-fields",
         "turn-skipped", "turn-not-a-number", "blank-line", "carriage-return"],
)
def test_layout_check_agrees_with_parlai_reader(tmp_path, lines, error, parlai):
    """The build accepts a CSV only if ParlAI's teacher reads it as written: 8 or 9 fields
    on every line (not "8 or more"), utterances counted 1, 2, ...; errors name file:line."""
    path = tmp_path / "split.csv"
    path.write_bytes(("\n".join([ed.HEADER] + lines) + "\n").encode())
    if error is None:
        ed.check_split_file(str(path))
    else:
        with pytest.raises(ValueError) as info:
            ed.check_split_file(str(path), name="mirror/valid.csv")
        assert str(info.value).startswith("mirror/valid.csv" + error), str(info.value)

    if parlai == "reads":
        (message,) = parlai_reads(str(path))
        assert (message["text"], message["labels"]) == ("I won the race!", ["Congratulations!"])
        if len(lines[1].split(",")) == 9:
            assert message["label_candidates"] == ["great", "well done"]
    elif parlai == "misreads":
        (message,) = parlai_reads(str(path))
        assert message["text"] == "I won"  # what the build check now refuses to install
    elif parlai == "splits":
        assert len(parlai_reads(str(path))) == 0  # the reply lost its context: no example
    else:
        with pytest.raises((ValueError, AssertionError)) as info:
            parlai_reads(str(path))
        assert parlai in f"{type(info.value).__name__}: {info.value}"


# ---------------------------------------------------------------------------------------
# Checksums of the unpacked CSVs, and built folders that changed
# ---------------------------------------------------------------------------------------

VALID_CONVERSATIONS = 2768  # what ParlAI's teacher loads from the mirror's valid.csv


def copy_mirror(mirror, root):
    """A writable copy of the mirror's three ED CSVs under ``root``."""
    folder = os.path.join(root, "empatheticdialogues")
    os.makedirs(folder)
    for split in SPLITS:
        shutil.copyfile(os.path.join(mirror, "empatheticdialogues", f"{split}.csv"),
                        os.path.join(folder, f"{split}.csv"))
    return str(root)


def cut_at_line_break(path, fraction=0.5):
    """Truncate ``path`` right after the line break nearest ``fraction`` of its size."""
    with open(path, "rb") as f:
        data = f.read()
    cut = data.index(b"\n", int(len(data) * fraction)) + 1
    with open(path, "wb") as f:
        f.write(data[:cut])
    return data


def valid_episodes(datapath):
    from parlai.core.params import ParlaiParser
    from parlai.core.teachers import create_task_agent_from_taskname

    opt = ParlaiParser(True, False).parse_args(
        ["-t", "empathetic_dialogues", "-dt", "valid", "--datapath", datapath]
    )
    (teacher,) = create_task_agent_from_taskname(opt)
    return teacher.num_episodes()


def test_known_hashes_are_those_of_the_reconstruction(mirror):
    """The table of known CSVs holds the mirror's reconstruction (see its README)."""
    for split in SPLITS:
        path = os.path.join(mirror, "empatheticdialogues", f"{split}.csv")
        assert ed.KNOWN_SPLIT_SHA256[split] == sha256_of(path)
    assert [r.sha256 for r in ed.SPLIT_FILES] == [ed.KNOWN_SPLIT_SHA256[s] for s in SPLITS]


def test_mirror_csv_cut_at_line_break_is_refused_until_repaired(
    mirror, tmp_path, monkeypatch, public_on_loopback, datapath
):
    """A valid.csv cut at a line break passes any layout check; its sha256 does not. Nothing
    is built; once the mirror is repaired the next build succeeds."""
    root = copy_mirror(mirror, tmp_path / "m")
    valid = os.path.join(root, "empatheticdialogues", "valid.csv")
    full = cut_at_line_break(valid)
    ed.check_split_file(valid)  # the cut file is well-formed CSV
    monkeypatch.setenv(MIRROR_ENV, root)
    with pytest.raises(DownloadError) as info:
        ed.build({"datapath": datapath})
    message = str(info.value)
    assert f"{valid}: sha256 mismatch: expected {ed.KNOWN_SPLIT_SHA256['valid']}" in message
    assert f"{TRUST_ENV}=empatheticdialogues/valid.csv:{sha256_of(valid)}" in message
    assert_nothing_built(datapath)

    with open(valid, "wb") as f:  # the mirror is repaired
        f.write(full)
    ed.build({"datapath": datapath})
    assert sha256_of(installed(datapath, "valid")) == ed.KNOWN_SPLIT_SHA256["valid"]
    assert valid_episodes(datapath) == VALID_CONVERSATIONS


def test_http_mirror_sending_half_without_length_is_refused(http_mirror, public_on_loopback, datapath):
    """A half valid.csv from an HTTP mirror that sends no Content-Length is caught."""
    http_mirror.misbehave("empatheticdialogues/valid.csv", "no-length-half")
    with pytest.raises(DownloadError, match=r"valid.csv: sha256 mismatch"):
        ed.build({"datapath": datapath})
    assert_nothing_built(datapath)
    assert leftovers(datapath) == []


def test_other_copy_refused_unless_trusted_then_logged(tmp_path, monkeypatch, public_on_loopback, datapath, warnings_logged):
    """A different (here: tiny) copy of the CSVs builds only when the user trusts its sha256,
    and each use of that trust is logged with the file it came from."""
    root = write_mirror(tmp_path / "m", {f"empatheticdialogues/{s}.csv": TINY for s in SPLITS})
    monkeypatch.setenv(MIRROR_ENV, root)
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        ed.build({"datapath": datapath})
    assert_nothing_built(datapath)

    trust_mirror_copies(monkeypatch, root)
    ed.build({"datapath": datapath})
    assert read_text(installed(datapath, "valid")) == TINY
    for split in SPLITS:
        source = os.path.join(root, "empatheticdialogues", f"{split}.csv")
        assert any(source in w and TRUST_ENV in w for w in warnings_logged), split


def test_installed_csv_changed_after_build_is_rebuilt(mirror, monkeypatch, datapath, warnings_logged):
    """An installed valid.csv cut after the build is noticed by the next build (through
    ParlAI's own teacher) and replaced, instead of trusting the .built marker."""
    monkeypatch.setenv(MIRROR_ENV, mirror)
    ed.build({"datapath": datapath})
    cut_at_line_break(installed(datapath, "valid"))
    assert valid_episodes(datapath) == VALID_CONVERSATIONS
    assert sha256_of(installed(datapath, "valid")) == ed.KNOWN_SPLIT_SHA256["valid"]
    assert any("rebuilding" in w and "valid.csv" in w for w in warnings_logged)
    assert dot_folders(datapath) == []


def _mark_built_without_manifest(datapath, source_folder):
    """The state an earlier version of this package (or ParlAI) left: CSVs and .built only."""
    from parlai.core import build_data

    dpath = os.path.join(datapath, "empatheticdialogues")
    os.makedirs(os.path.join(dpath, "empatheticdialogues"))
    for split in SPLITS:  # plain copies: the mirror may be read-only
        shutil.copyfile(os.path.join(source_folder, f"{split}.csv"), installed(datapath, split))
    build_data.mark_done(dpath, version_string=ed.VERSION)
    return dpath


def test_unrecorded_build_from_a_cut_mirror_is_rebuilt(mirror, tmp_path, monkeypatch, datapath, warnings_logged):
    """A folder built (before manifests) from a cut valid.csv is rebuilt once the mirror is
    good, not trusted forever; the warning says how to keep a legitimate other copy."""
    root = copy_mirror(mirror, tmp_path / "m")
    cut_at_line_break(os.path.join(root, "empatheticdialogues", "valid.csv"))
    _mark_built_without_manifest(datapath, os.path.join(root, "empatheticdialogues"))
    monkeypatch.setenv(MIRROR_ENV, mirror)
    assert valid_episodes(datapath) == VALID_CONVERSATIONS
    assert any("valid.csv is not a copy this package knows" in w and TRUST_ENV in w
               for w in warnings_logged)


def test_unrecorded_build_of_known_copies_is_kept_and_recorded(mirror, monkeypatch, datapath):
    """A folder built before manifests, holding the known CSVs, is kept (no download) and
    its files are recorded from then on."""
    from parlai_empathy import mirror as mirror_mod

    dpath = _mark_built_without_manifest(datapath, os.path.join(mirror, "empatheticdialogues"))
    marker = os.path.join(dpath, ".built")
    before = (os.stat(marker).st_ino, read_text(marker))
    monkeypatch.delenv(MIRROR_ENV)  # nothing to download from: it must not try
    ed.build({"datapath": datapath})
    assert (os.stat(marker).st_ino, read_text(marker)) == before
    assert mirror_mod.check_manifest(dpath) == ("intact", None)


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
