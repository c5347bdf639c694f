"""``python -m parlai_empathy.mirror_fetch FOLDER``: a data mirror from the public locations.

The "public locations" here are file:// URLs of files made by the test, so nothing goes
beyond this machine (``no_remote_network`` fails any other connection).
"""
import hashlib
import os

import pytest

from parlai_empathy import mirror_fetch
from parlai_empathy.data import empathetic_dialogues_build as ed
from parlai_empathy.data import esconv
from parlai_empathy.mirror import DownloadError, RemoteFile
from test_mirror import make_tar_gz, no_remote_network  # noqa: F401  (fixture used by name)

CSV = {
    split: (ed.HEADER + "\n"
            f"hit:0_conv:1,1,joyful,I won the {split} race,1,I won!,,\n"
            f"hit:0_conv:1,2,joyful,I won the {split} race,0,Congratulations!,,\n")
    for split in ("train", "valid", "test")
}
JSON = {split: f'{{"dialog": [], "split": "{split}"}}' for split in esconv.SPLITS}


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture
def public(tmp_path, monkeypatch):
    """ED's archive and ESConv's files at file:// URLs, with their sha256 pinned."""
    site = tmp_path / "public"
    site.mkdir()
    archive = make_tar_gz(str(site / "empatheticdialogues.tar.gz"),
                          {f"empatheticdialogues/{s}.csv": CSV[s].encode() for s in CSV})
    monkeypatch.setattr(ed, "ARCHIVE", RemoteFile(ed.ARCHIVE.mirror_path, f"file://{archive}",
                                                  _sha256(archive)))
    files = {}
    for split in esconv.SPLITS:
        path = site / f"{split}.json"
        path.write_text(JSON[split])
        files[split] = RemoteFile(f"esconv/{split}.json", f"file://{path}", _sha256(path))
    monkeypatch.setattr(esconv, "SPLIT_FILES", files)
    return site


def _contents(folder):
    found = {}
    for root, dirs, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path) as f:
                found[os.path.relpath(path, folder)] = f.read()
    return found


def test_fetch_fills_a_mirror_folder_once(public, tmp_path):
    folder = tmp_path / "mirror"
    written = mirror_fetch.fetch(str(folder), say=lambda _: None)
    expected = {f"empatheticdialogues/{s}.csv": CSV[s] for s in CSV}
    expected.update({f"esconv/{s}.json": JSON[s] for s in JSON})
    assert sorted(written) == sorted(expected) == sorted(mirror_fetch.mirror_files())
    assert _contents(folder) == expected  # the archive itself is not kept
    said = []
    assert mirror_fetch.fetch(str(folder), say=said.append) == []
    assert all(line.endswith("already there") for line in said)


def test_a_bad_download_leaves_nothing_behind(public, tmp_path, monkeypatch):
    monkeypatch.setattr(ed, "ARCHIVE", RemoteFile(ed.ARCHIVE.mirror_path, ed.ARCHIVE.url,
                                                  "0" * 64))
    folder = tmp_path / "mirror"
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        mirror_fetch.fetch(str(folder), say=lambda _: None)
    assert _contents(folder) == {} and os.listdir(folder) == []


def test_command_says_which_files_to_copy_by_hand_when_offline(public, tmp_path, capsys,
                                                                monkeypatch):
    missing = RemoteFile(ed.ARCHIVE.mirror_path, f"file://{tmp_path}/nowhere.tar.gz",
                         ed.ARCHIVE.sha256)
    monkeypatch.setattr(ed, "ARCHIVE", missing)
    assert mirror_fetch.main([str(tmp_path / "mirror")]) == 1
    err = capsys.readouterr().err
    assert "could not obtain 'empatheticdialogues.tar.gz'" in err
    assert ("copy these files into " + str(tmp_path / "mirror") + " by hand: "
            "empatheticdialogues/train.csv, empatheticdialogues/valid.csv, "
            "empatheticdialogues/test.csv, esconv/train.json, esconv/valid.json, "
            "esconv/test.json") in err
