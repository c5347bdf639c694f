"""Install EmpatheticDialogues for ParlAI's stock ``empathetic_dialogues`` teacher.

Same result as ``parlai.tasks.empathetic_dialogues.build.build`` (folder
``<datapath>/empatheticdialogues/empatheticdialogues/{train,valid,test}.csv``, ``.built``
marker with version ``1.0``), but obtained mirror first: the public archive from the
mirror, else the archive's three CSV files from the mirror (``empatheticdialogues/*.csv``),
else the public archive. :mod:`parlai_empathy.compat` puts this ``build`` in place of
ParlAI's, so ``-t empathetic_dialogues`` needs no change.
"""
import os
import shutil

from parlai_empathy.mirror import (
    DownloadError,
    RemoteFile,
    build_once,
    download,
    mirror_location,
    unpack,
)

VERSION = "1.0"  # ParlAI's own version string for this dataset
ARCHIVE = RemoteFile(
    mirror_path="empatheticdialogues/empatheticdialogues.tar.gz",
    url="http://parl.ai/downloads/empatheticdialogues/empatheticdialogues.tar.gz",
    sha256="56f234d77b7dd1f005fd365bb17769cfe346c3c84295b69bc069c8ccb83be03d",
)
# The archive's members, as a mirror may hold them unpacked. No checksum is published for
# the unpacked files, so their layout is checked instead.
SPLIT_FILES = tuple(
    RemoteFile(mirror_path=f"empatheticdialogues/{split}.csv") for split in ("train", "valid", "test")
)
HEADER = "conv_id,utterance_idx,context,prompt,speaker_idx,utterance,selfeval,tags"
FIELDS = len(HEADER.split(","))


def build(opt):
    build_once(os.path.join(opt["datapath"], "empatheticdialogues"), VERSION, populate)


def populate(folder: str) -> None:
    """Fill ``folder`` with ``empatheticdialogues/{train,valid,test}.csv``.

    Download failures move on to the next way (mirror archive, mirror CSVs, public
    archive); a file that arrived but is malformed (ValueError) or a local write error
    (OSError) stops the build.
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
        download(ARCHIVE, archive, use_mirror=False)
    except DownloadError as exc:
        failures.append(str(exc))
        raise DownloadError("EmpatheticDialogues could not be built:\n" + "\n".join(failures)) from None
    _unpack_archive(archive, folder)


def _clear(folder):
    for entry in os.listdir(folder):
        path = os.path.join(folder, entry)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def _archive_from_mirror(folder):
    archive = os.path.join(folder, ARCHIVE.filename)
    download(RemoteFile(ARCHIVE.mirror_path, None, ARCHIVE.sha256), archive)
    _unpack_archive(archive, folder)


def _unpack_archive(archive, folder):
    unpack(archive, folder)
    os.remove(archive)
    for remote in SPLIT_FILES:
        path = os.path.join(folder, *remote.mirror_path.split("/"))
        if not os.path.isfile(path):
            raise ValueError(f"{archive}: has no member {remote.mirror_path}")
        check_split_file(path)


def _split_files_from_mirror(folder):
    for remote in SPLIT_FILES:
        dest = os.path.join(folder, *remote.mirror_path.split("/"))
        source = download(remote, dest)
        try:
            check_split_file(dest)
        except ValueError as exc:
            raise ValueError(f"{exc} (this file came from {source})") from None


def check_split_file(path: str) -> None:
    """Raise ValueError naming the file and line if it is not in ED's CSV layout.

    The layout is what ParlAI's teacher reads: the header line, then lines of at least
    ``FIELDS`` comma-separated fields (UTF-8; LF or CRLF line ends).
    """
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise ValueError(f"{path}:{number}: not UTF-8 ({exc.reason})") from None
            if number == 1:
                if line.lstrip("\ufeff") != HEADER:
                    raise ValueError(
                        f"{path}:1: expected the header {HEADER!r}, found {line[:120]!r}"
                    )
            elif len(line.split(",")) < FIELDS:
                raise ValueError(
                    f"{path}:{number}: expected at least {FIELDS} comma-separated fields, "
                    f"found {len(line.split(','))} (commas inside text are written _comma_)"
                )
        if f.tell() == 0:
            raise ValueError(f"{path}:1: empty file, expected the header {HEADER!r}")
