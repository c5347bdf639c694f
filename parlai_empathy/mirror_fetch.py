"""Fill a data-mirror folder from the public download locations, once, where the network allows.

::

    python -m parlai_empathy.mirror_fetch ~/parlai-empathy-mirror
    export PARLAI_EMPATHY_MIRROR=~/parlai-empathy-mirror

It writes the files that the data tests and offline builds read, as ``<folder>/<dataset>/<file>``:

* ``empatheticdialogues/train.csv``, ``valid.csv``, ``test.csv``: unpacked from ParlAI's public
  archive ``http://parl.ai/downloads/empatheticdialogues/empatheticdialogues.tar.gz``
  (sha256-checked; the archive itself is not kept);
* ``esconv/train.json``, ``valid.json``, ``test.json``: the ``thu-coai/esconv`` dataset on the
  Hugging Face Hub (sha256-checked).

PEC (``hf_pec.zip``) is not fetched: its tests use fixtures, and its teacher downloads it
itself. Files already there and good (checksum, or ED's CSV layout) are kept; each new file is
written whole or not at all. Without a network, put the same files there by hand.
"""
import argparse
import os
import sys
import tempfile
from typing import Callable, List

from parlai_empathy.data import empathetic_dialogues_build as ed
from parlai_empathy.data import esconv
from parlai_empathy.mirror import MIRROR_ENV, DownloadError, download, sha256_of, unpack


def mirror_files() -> List[str]:
    """The files :func:`fetch` puts in a mirror folder (mirror paths)."""
    return [r.mirror_path for r in ed.SPLIT_FILES] + [
        esconv.SPLIT_FILES[split].mirror_path for split in esconv.SPLITS
    ]


def fetch(folder: str, timeout: float = 60.0, say: Callable[[str], None] = print) -> List[str]:
    """Fill ``folder``; returns the mirror paths it wrote (those already good are skipped).

    :raises DownloadError: a public location could not be reached or served a bad file.
    :raises ValueError: a downloaded archive or file is damaged (named in the message).
    """
    os.makedirs(folder, exist_ok=True)
    written = _fetch_empathetic_dialogues(folder, timeout, say)
    for split in esconv.SPLITS:
        remote = esconv.SPLIT_FILES[split]
        target = _path(folder, remote.mirror_path)
        if os.path.isfile(target) and sha256_of(target) == remote.sha256:
            say(f"{remote.mirror_path}: already there")
            continue
        say(f"{remote.mirror_path}: from {remote.url}")
        download(remote, target, timeout=timeout, use_mirror=False)
        written.append(remote.mirror_path)
    return written


def _path(folder: str, mirror_path: str) -> str:
    return os.path.join(folder, *mirror_path.split("/"))


def _good_split_file(path: str) -> bool:
    try:
        ed.check_split_file(path)
    except (OSError, ValueError):
        return False
    return True


def _fetch_empathetic_dialogues(folder, timeout, say) -> List[str]:
    targets = [_path(folder, r.mirror_path) for r in ed.SPLIT_FILES]
    if all(_good_split_file(t) for t in targets):
        say("empatheticdialogues/{train,valid,test}.csv: already there")
        return []
    say(f"empatheticdialogues/{{train,valid,test}}.csv: from {ed.ARCHIVE.url}")
    with tempfile.TemporaryDirectory(prefix=".mirror-fetch-", dir=folder) as scratch:
        archive = os.path.join(scratch, ed.ARCHIVE.filename)
        download(ed.ARCHIVE, archive, timeout=timeout, use_mirror=False)
        unpack(archive, scratch)
        unpacked = [_path(scratch, r.mirror_path) for r in ed.SPLIT_FILES]
        for remote, path in zip(ed.SPLIT_FILES, unpacked):
            if not os.path.isfile(path):
                raise ValueError(f"{ed.ARCHIVE.url}: the archive has no {remote.mirror_path}")
            ed.check_split_file(path)
        os.makedirs(os.path.dirname(targets[0]), exist_ok=True)
        for path, target in zip(unpacked, targets):
            os.replace(path, target)
    return [r.mirror_path for r in ed.SPLIT_FILES]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m parlai_empathy.mirror_fetch",
        description="Download the public data files into a folder to use as "
        f"{MIRROR_ENV} (files: {', '.join(mirror_files())}).",
    )
    parser.add_argument("folder", help="the mirror folder (created if missing)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per connection")
    args = parser.parse_args(argv)
    folder = os.path.abspath(os.path.expanduser(args.folder))
    try:
        fetch(folder, timeout=args.timeout)
    except (DownloadError, ValueError, OSError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        print(
            f"Without network access, copy these files into {folder} by hand: "
            + ", ".join(mirror_files()),
            file=sys.stderr,
        )
        return 1
    print(f"Done. Use it with: export {MIRROR_ENV}={folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
