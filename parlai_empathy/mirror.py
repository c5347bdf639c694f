"""Mirror-first, checksummed, all-or-nothing downloads for our data builders and zoo.

One setting, ``PARLAI_EMPATHY_MIRROR``: a local folder or a base URL (``http(s)://``,
``file://``) holding the same files as the public download locations, laid out as
``<mirror>/<dataset>/<file>`` (for instance ``esconv/train.json``). Every fetch tries the
mirror first, then the public URL; every file with a known sha256 is verified.

Nothing half-done is ever trusted: a file is written to a temporary name and renamed only
after it verified, and :func:`build_once` fills a temporary sibling folder, marks it built
and swaps it in only when everything succeeded (under a lock, so parallel workers build once).
"""
import bz2
import contextlib
import fcntl
import gzip
import hashlib
import http.client
import lzma
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional, Tuple

MIRROR_ENV = "PARLAI_EMPATHY_MIRROR"
_CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """No source delivered a good copy of a file; the message lists every try."""


class _DestinationError(Exception):
    """Writing our own copy failed (disk full, read-only folder): no other source helps."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a public release.

    ``mirror_path`` is where the same file sits inside a mirror (``esconv/train.json``);
    ``url`` is the public location (``None`` when the file is only ever mirrored, e.g. the
    unpacked members of a public archive); ``sha256`` is pinned where one is known.
    """

    mirror_path: str
    url: Optional[str] = None
    sha256: Optional[str] = None

    @property
    def filename(self) -> str:
        return self.mirror_path.rsplit("/", 1)[-1]


def mirror_location() -> Optional[str]:
    value = os.environ.get(MIRROR_ENV, "").strip()
    return value or None


def sources(remote: RemoteFile, use_mirror: bool = True) -> List[str]:
    """Locations to try, in order: the mirror's copy, then the public URL."""
    found = []
    mirror = mirror_location() if use_mirror else None
    if mirror:
        if _is_url(mirror):
            found.append(
                urllib.parse.urljoin(
                    mirror.rstrip("/") + "/", urllib.parse.quote(remote.mirror_path)
                )
            )
        else:
            found.append(os.path.join(os.path.expanduser(mirror), *remote.mirror_path.split("/")))
    if remote.url:
        found.append(remote.url)
    return found


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download(
    remote: RemoteFile, dest: str, timeout: float = 60.0, use_mirror: bool = True
) -> str:
    """Fetch ``remote`` to the path ``dest`` (mirror first) and verify it.

    :returns: the source that delivered the file.
    :raises DownloadError: naming the file, every location tried and the mirror variable.
    :raises OSError: when ``dest`` cannot be written (e.g. ``ENOSPC``); no other source
        is tried then, and no partial file is left behind.
    """
    tried: List[Tuple[str, str]] = []
    for source in sources(remote, use_mirror):
        try:
            _fetch_verified(source, remote.sha256, dest, timeout)
            return source
        except _DestinationError as exc:
            cause = exc.__cause__
            code = getattr(cause, "errno", None)
            message = (
                f"could not write {dest} (copy of {remote.mirror_path} from {source}): "
                f"{getattr(cause, 'strerror', None) or cause}"
            )
            raise (OSError(code, message) if code else OSError(message)) from cause
        except (OSError, urllib.error.URLError, ValueError, http.client.HTTPException) as exc:
            if isinstance(exc, urllib.error.HTTPError):
                exc.close()
            tried.append((source, _describe(exc)))
    raise DownloadError(_failure_message(remote, tried))


def _failure_message(remote: RemoteFile, tried: List[Tuple[str, str]]) -> str:
    lines = [f"could not obtain {remote.filename!r} ({remote.mirror_path})."]
    if tried:
        lines.append("Tried:")
        lines += [f"  {source}: {why}" for source, why in tried]
    else:
        lines.append("No location to try: the file has no public URL.")
    if not mirror_location():
        lines.append(
            f"{MIRROR_ENV} is not set; set it to a folder or base URL that holds "
            f"{remote.mirror_path} to build offline."
        )
    else:
        lines.append(f"{MIRROR_ENV}={mirror_location()}")
    return "\n".join(lines)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        if isinstance(exc.reason, FileNotFoundError):
            return "no such file"
        return f"network error: {exc.reason}"
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, http.client.IncompleteRead):
        return f"connection closed early ({exc!r})"
    return f"{type(exc).__name__}: {exc}"


def _fetch_verified(source: str, sha256: Optional[str], dest: str, timeout: float):
    folder = os.path.dirname(os.path.abspath(dest))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, partial = tempfile.mkstemp(
            prefix=os.path.basename(dest) + ".", suffix=".part", dir=folder
        )
    except OSError as exc:
        raise _DestinationError() from exc
    try:
        out = os.fdopen(fd, "wb")
        try:
            if _is_url(source):
                _copy_url(source, out, timeout)
            else:
                with open(source, "rb") as src:
                    _pump(src.read, out)
        finally:
            try:
                out.close()  # flushes: a full disk may only show here
            except OSError as exc:
                raise _DestinationError() from exc
        if sha256 is not None:
            got = sha256_of(partial)
            if got != sha256.lower():
                raise ValueError(f"sha256 mismatch: expected {sha256}, got {got}")
        try:
            os.chmod(partial, 0o666 & ~_umask())  # mkstemp makes it private
            os.replace(partial, dest)
        except OSError as exc:
            raise _DestinationError() from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)


def _pump(read: Callable[[int], bytes], out) -> int:
    """Copy blocks from ``read`` to ``out``; write errors are the destination's fault."""
    received = 0
    while True:
        block = read(_CHUNK)
        if not block:
            return received
        try:
            out.write(block)
        except OSError as exc:
            raise _DestinationError() from exc
        received += len(block)


def _copy_url(url: str, out, timeout: float):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        expected = response.headers.get("Content-Length")
        received = _pump(response.read, out)
    if expected is not None and received != int(expected):
        raise OSError(f"connection closed after {received} of {expected} bytes")


def _is_url(location: str) -> bool:
    return urllib.parse.urlparse(location).scheme in ("http", "https", "file")


_COMPRESSED = (
    (b"\x1f\x8b", gzip.open),
    (b"BZh", bz2.open),
    (b"\xfd7zXZ\x00", lzma.open),
)


def _check_compressed_stream(archive: str) -> None:
    """Read a compressed archive to its end, so its CRC and length checks run.

    tarfile stops reading at the tar end marker, so a corrupted or cut-off stream would
    otherwise unpack garbage without complaint.
    """
    with open(archive, "rb") as f:
        magic = f.read(6)
    for prefix, opener in _COMPRESSED:
        if magic.startswith(prefix):
            with opener(archive, "rb") as stream:
                while stream.read(_CHUNK):
                    pass
            return


def unpack(archive: str, dest: str) -> None:
    """Unpack a .tar.gz/.tgz/.tar/.zip into ``dest``; refuses members outside ``dest``.

    :raises ValueError: naming ``archive`` when it is damaged, truncated or unsafe.
    """
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for member in zf.namelist():
                    _check_inside(dest, member, archive)
                zf.extractall(dest)
        else:
            _check_compressed_stream(archive)
            with tarfile.open(archive) as tf:
                for member in tf.getmembers():
                    _check_inside(dest, member.name, archive)
                    if not (member.isfile() or member.isdir()):
                        raise ValueError(f"{archive}: refusing link or device member {member.name!r}")
                if hasattr(tarfile, "data_filter"):
                    tf.extractall(dest, filter="data")
                else:  # pragma: no cover - Python without PEP 706
                    tf.extractall(dest)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError,
            gzip.BadGzipFile) as exc:
        raise ValueError(f"{archive}: damaged or truncated archive ({exc})") from exc
    except OSError as exc:
        if exc.errno is None:  # bz2 reports bad data as a bare OSError
            raise ValueError(f"{archive}: damaged or truncated archive ({exc})") from exc
        raise


def _check_inside(dest: str, name: str, archive: str):
    root = os.path.realpath(dest)
    target = os.path.realpath(os.path.join(dest, name))
    if target != root and not target.startswith(root + os.sep):
        raise ValueError(f"{archive}: member {name!r} would unpack outside {dest}")


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (thread safety)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def built(dpath: str, version: Optional[str]) -> bool:
    from parlai.core import build_data

    return build_data.built(dpath, version_string=version)


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    parent, name = os.path.split(os.path.abspath(path))
    with open(os.path.join(parent, f".{name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _remove_leftovers(parent: str, name: str) -> None:
    """Remove staging/retired folders of runs that died (we hold the lock: none is live)."""
    prefixes = (f".{name}.building-", f".{name}.old-")
    with contextlib.suppress(OSError):
        for entry in os.listdir(parent):
            if entry.startswith(prefixes):
                shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def build_once(dpath: str, version: str, populate: Callable[[str], None]) -> bool:
    """Make ``dpath`` hold a complete build of ``version``, or leave it untouched.

    ``populate(folder)`` fills a fresh temporary sibling folder. Only when it returns is the
    folder marked built (ParlAI's ``.built`` file with ``version``) and swapped in place of
    any older ``dpath``. On any exception the temporary folder is removed and ``dpath`` is
    as before. Returns True when it built, False when ``dpath`` was already built.
    """
    from parlai.core import build_data

    dpath = os.path.abspath(dpath)
    if built(dpath, version):
        return False
    with _locked(dpath):
        if built(dpath, version):  # another worker finished while we waited
            return False
        parent, name = os.path.split(dpath)
        _remove_leftovers(parent, name)
        staging = tempfile.mkdtemp(prefix=f".{name}.building-", dir=parent)
        retired = None
        try:
            os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes it private
            populate(staging)
            build_data.mark_done(staging, version_string=version)
            if os.path.lexists(dpath):
                retired = tempfile.mkdtemp(prefix=f".{name}.old-", dir=parent)
                os.replace(dpath, os.path.join(retired, name))
            os.replace(staging, dpath)
        except BaseException:
            if retired is not None:
                old = os.path.join(retired, name)
                if os.path.lexists(old) and not os.path.lexists(dpath):
                    os.replace(old, dpath)  # put the previous build back
                shutil.rmtree(retired, ignore_errors=True)
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)
    return True
