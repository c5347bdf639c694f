"""Install EmpatheticDialogues for ParlAI's stock ``empathetic_dialogues`` teacher.

Same result as ``parlai.tasks.empathetic_dialogues.build.build`` (folder
``<datapath>/empatheticdialogues/empatheticdialogues/{train,valid,test}.csv``, ``.built``
marker with version ``1.0``), but obtained mirror first: the public archive from the
mirror, else the archive's three CSV files from the mirror (``empatheticdialogues/*.csv``),
else the public archive. :mod:`parlai_empathy.compat` puts this ``build`` in place of
ParlAI's, so ``-t empathetic_dialogues`` needs no change.

Every installed file is verified before the folder is marked built: the archive by its
published sha256 (which covers its members), unpacked CSVs by :data:`KNOWN_SPLIT_SHA256`
(or ``PARLAI_EMPATHY_TRUST_SHA256``), and every CSV by :func:`check_split_file`. A folder
whose files changed since (or that was built before files were recorded and holds no known
copy) is rebuilt rather than trusted.
"""
import os
import shutil
from typing import Optional

from parlai_empathy.mirror import (
    TRUST_ENV,
    DownloadError,
    RemoteFile,
    build_once,
    check_sha256,
    download,
    mirror_location,
    sha256_of,
    unpack,
)

VERSION = "1.0"  # ParlAI's own version string for this dataset
ARCHIVE = RemoteFile(
    mirror_path="empatheticdialogues/empatheticdialogues.tar.gz",
    url="http://parl.ai/downloads/empatheticdialogues/empatheticdialogues.tar.gz",
    sha256="56f234d77b7dd1f005fd365bb17769cfe346c3c84295b69bc069c8ccb83be03d",
)
SPLITS = ("train", "valid", "test")
# sha256 of the unpacked CSVs this package knows. The official release publishes only the
# archive's sha256 (above); these are the CSVs of the documented offline reconstruction
# (rebuilt from third-party copies, 8 fields a line, not byte-identical to the official
# files; see the data mirror's README). Another legitimate copy is accepted with
# PARLAI_EMPATHY_TRUST_SHA256=empatheticdialogues/<split>.csv:<sha256> (logged when used).
KNOWN_SPLIT_SHA256 = {
    "train": "0757bfd99f1e7baf6dbbe9a5e4a948050613ba4e1f93875952a8e34638a96860",  # 16,282,178 B
    "valid": "b1e5bc3ca2c3d5f5663d8f90d32a035231c4ac6d107eb81b48e51ff32b1bd0ea",  # 2,492,305 B
    "test": "4634b094b9c1d80bd8f90b8a76e52bd979560cef744d80f24cb70ccd9dc8cfaa",  # 2,521,471 B
}
# The archive's members, as a mirror may hold them unpacked.
SPLIT_FILES = tuple(
    RemoteFile(f"empatheticdialogues/{split}.csv", None, KNOWN_SPLIT_SHA256[split])
    for split in SPLITS
)
HEADER = "conv_id,utterance_idx,context,prompt,speaker_idx,utterance,selfeval,tags"
FIELDS = len(HEADER.split(","))
FIELDS_WITH_CANDIDATES = FIELDS + 1  # ParlAI's valid/test files: 100 inline candidates


def build(opt):
    build_once(
        os.path.join(opt["datapath"], "empatheticdialogues"),
        VERSION,
        populate,
        record_files=True,
        vet_unrecorded=unknown_copy,
    )


def populate(folder: str) -> None:
    """Fill ``folder`` with ``empatheticdialogues/{train,valid,test}.csv``.

    Download failures (including a checksum mismatch) move on to the next way (mirror
    archive, mirror CSVs, public archive); a file that verified but is malformed
    (ValueError) or a local write error (OSError) stops the build.
    """
    failures = []
    if mirror_location():
        for attempt in (_archive_from_mirror, _split_files_from_mirror):
            try:
                attempt(folder)
                return
            except DownloadError as exc:
                failures.append(str(exc))
                _clear(folder)  # the next way starts from an empty folder
    archive = os.path.join(folder, ARCHIVE.filename)
    try:
        source = download(ARCHIVE, archive, use_mirror=False)
    except DownloadError as exc:
        failures.append(str(exc))
        raise DownloadError("EmpatheticDialogues could not be built:\n" + "\n".join(failures)) from None
    _unpack_archive(archive, source, folder)


def unknown_copy(dpath: str) -> Optional[str]:
    """For a folder marked built without a record of its files (built by ParlAI itself or an
    earlier version of this package): None when its CSVs are copies this package knows (or
    the user trusts), else why it must be rebuilt."""
    for remote in SPLIT_FILES:
        path = os.path.join(dpath, *remote.mirror_path.split("/"))
        if not os.path.isfile(path):
            return f"{path} is missing"
        got = sha256_of(path)
        try:
            check_sha256(remote, got, path)
        except ValueError:
            return (
                f"{path} is not a copy this package knows (sha256 {got}); to keep this "
                f"build, list the sha256 of each of its CSVs in {TRUST_ENV}"
            )
    return None


def _clear(folder):
    for entry in os.listdir(folder):
        path = os.path.join(folder, entry)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def _archive_from_mirror(folder):
    archive = os.path.join(folder, ARCHIVE.filename)
    source = download(RemoteFile(ARCHIVE.mirror_path, None, ARCHIVE.sha256), archive)
    _unpack_archive(archive, source, folder)


def _unpack_archive(archive, source, folder):
    try:
        unpack(archive, folder)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    os.remove(archive)
    for remote in SPLIT_FILES:
        path = os.path.join(folder, *remote.mirror_path.split("/"))
        if not os.path.isfile(path):
            raise ValueError(f"{source}: has no member {remote.mirror_path}")
        check_split_file(path, name=f"{source} member {remote.mirror_path}")


def _split_files_from_mirror(folder):
    for remote in SPLIT_FILES:
        dest = os.path.join(folder, *remote.mirror_path.split("/"))
        source = download(remote, dest)
        check_split_file(dest, name=source)


def check_split_file(path: str, name: Optional[str] = None) -> None:
    """Raise ValueError naming the file (``name``, default ``path``) and line unless ParlAI's
    teacher reads the file as written.

    ParlAI's ``EmpatheticDialoguesTeacher`` splits the file into lines (universal newlines),
    strips each line and splits it on ``,``; a line continuing a conversation must have
    ``FIELDS`` or ``FIELDS_WITH_CANDIDATES`` fields (else "Line N has the wrong number of
    fields!") and its ``utterance_idx`` must count 1, 2, ... (else a bare AssertionError).
    Checked here for every data line, also a conversation's first, whose utterance ParlAI
    reads as the context of the next line (a raw comma would silently cut it). Also refused:
    a blank line (it would split its conversation in two), a carriage return inside a line,
    a file that is not UTF-8, a wrong header, no data lines.
    """
    name = name or path
    previous_conv, position, previous_idx = None, 0, 0
    with open(path, "rb") as f:
        number = 0
        for number, raw in enumerate(f, start=1):
            where = f"{name}:{number}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(f"{where}: not UTF-8 ({exc.reason})") from None
            line = line[:-1] if line.endswith("\n") else line
            line = line[:-1] if line.endswith("\r") else line
            if "\r" in line:
                raise ValueError(
                    f"{where}: carriage return inside the line (ParlAI's reader would "
                    "split the line there)"
                )
            if number == 1:
                if line.lstrip("\ufeff") != HEADER:
                    raise ValueError(
                        f"{where}: expected the header {HEADER!r}, found {line[:120]!r}"
                    )
                continue
            if not line.strip():
                raise ValueError(f"{where}: blank line (ParlAI would split the conversation here)")
            parts = line.strip().split(",")
            if len(parts) not in (FIELDS, FIELDS_WITH_CANDIDATES):
                raise ValueError(
                    f"{where}: expected {FIELDS} comma-separated fields (or "
                    f"{FIELDS_WITH_CANDIDATES} with inline label candidates), found "
                    f"{len(parts)} (commas inside text are written _comma_)"
                )
            try:
                idx = int(parts[1])
            except ValueError:
                raise ValueError(f"{where}: utterance_idx {parts[1]!r} is not a number") from None
            if parts[0] == previous_conv:
                position += 1
                if previous_idx + 1 != idx or idx != position:
                    raise ValueError(
                        f"{where}: utterance_idx {idx} of {parts[0]} after {previous_idx}; "
                        f"expected {position} (utterances of a conversation count 1, 2, ...)"
                    )
            else:
                previous_conv, position = parts[0], 1
            previous_idx = idx
        if number == 0:
            raise ValueError(f"{name}:1: empty file, expected the header {HEADER!r}")
        if previous_conv is None:
            raise ValueError(f"{name}:{number}: the header is not followed by any data line")
