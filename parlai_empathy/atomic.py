"""Write a file (or a folder) whole or not at all, so an interrupted command leaves no
half-written file."""
import os
import shutil
import tempfile
from typing import Callable


def atomic_write_bytes(path: str, data: bytes):
    """``data`` to ``path`` through a temporary file in the same folder, then a rename."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix="." + os.path.basename(path), dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.unlink(partial)
        raise


def atomic_write_text(path: str, text: str):
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_dir(path: str, fill: Callable[[str], None]):
    """Replace the folder ``path`` by one that ``fill(staging_folder)`` writes in full.

    The staging folder is a sibling of ``path``; an error (or an interrupt) inside ``fill``
    leaves ``path`` as it was and removes the staging folder.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    staging = tempfile.mkdtemp(dir=folder, prefix="." + os.path.basename(path) + "-")
    try:
        fill(staging)
        if os.path.isdir(path):
            shutil.rmtree(path)
        os.replace(staging, path)
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging)
