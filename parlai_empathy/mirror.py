"""Mirror-first, checksummed, all-or-nothing downloads for our data builders and zoo.

One setting, ``PARLAI_EMPATHY_MIRROR``: a local folder or a base URL (``http(s)://``,
``file://``) holding the same files as the public download locations, laid out as
``<mirror>/<dataset>/<file>`` (for instance ``esconv/train.json``). Every fetch tries the
mirror first, then the public URL; every file with a known sha256 is verified.
``PARLAI_EMPATHY_TRUST_SHA256=<file>:<sha256>[,...]`` accepts another copy of a pinned file
(a different but legitimate release); each use is logged as a warning.

Every transfer has a deadline and a minimum rate (:class:`TransferLimits`, settable with
``PARLAI_EMPATHY_DOWNLOAD_DEADLINE``, ``..._MIN_RATE`` and ``..._RATE_WINDOW``): a source
that stalls or trickles is given up and the next one tried.

Nothing half-done is ever trusted: a file is written to a temporary name and renamed only
after it verified, and :func:`build_once` fills a temporary sibling folder, marks it built
and swaps it in only when everything succeeded (under a lock, so parallel workers build once).
SIGTERM/SIGHUP during a build (and Ctrl-C) remove the staging folder before the process ends.
With ``record_files``, a build also records the size, time and sha256 of its files in a
manifest (``.manifest.json``, beside ``.built``), and a built folder whose files no longer
match it is rebuilt rather than trusted.
"""
import bz2
import contextlib
import fcntl
import gzip
import hashlib
import http.client
import json
import lzma
import math
import os
import re
import shutil
import signal
import socket
import stat
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from typing import Callable, Dict, FrozenSet, Iterator, List, Optional, Tuple

MIRROR_ENV = "PARLAI_EMPATHY_MIRROR"
TRUST_ENV = "PARLAI_EMPATHY_TRUST_SHA256"
DEADLINE_ENV = "PARLAI_EMPATHY_DOWNLOAD_DEADLINE"
MIN_RATE_ENV = "PARLAI_EMPATHY_DOWNLOAD_MIN_RATE"
RATE_WINDOW_ENV = "PARLAI_EMPATHY_DOWNLOAD_RATE_WINDOW"
MANIFEST = ".manifest.json"  # beside ParlAI's .built marker: what was installed
_CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """No source delivered a good copy of a file; the message lists every try."""


class TransferTimeout(OSError):
    """A transfer passed its deadline or fell below the minimum rate (see TransferLimits)."""


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


# --- checksums: pinned, or trusted by the user ------------------------------------------------


def trusted_sha256() -> Dict[str, FrozenSet[str]]:
    """The user's explicit trust list from ``PARLAI_EMPATHY_TRUST_SHA256``.

    Entries ``<file>:<sha256>`` separated by commas or white space; ``<file>`` is a mirror
    path (``empatheticdialogues/valid.csv``) or a bare file name (``valid.csv``).

    :raises ValueError: naming the variable and the entry that is not of that form.
    """
    found: Dict[str, set] = {}
    for entry in re.split(r"[,\s]+", os.environ.get(TRUST_ENV, "").strip()):
        if not entry:
            continue
        name, _, digest = entry.rpartition(":")
        name, digest = name.strip("/"), digest.lower()
        if not name or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ValueError(
                f"{TRUST_ENV}: entry {entry!r} is not <file>:<sha256> (64 hex digits), "
                f"e.g. empatheticdialogues/valid.csv:{'0' * 64}"
            )
        found.setdefault(name, set()).add(digest)
    return {name: frozenset(digests) for name, digests in found.items()}


def check_sha256(remote: RemoteFile, got: str, source: str) -> None:
    """Accept ``got`` (the sha256 of the copy from ``source``) as ``remote``.

    Accepted: no pin, the pinned sha256, or a sha256 that ``PARLAI_EMPATHY_TRUST_SHA256``
    lists for this file (logged as a warning, every time it is used).

    :raises ValueError: ``sha256 mismatch``, with the setting that would accept this copy.
    """
    if remote.sha256 is None or got == remote.sha256.lower():
        return
    trusted = trusted_sha256()
    if got in trusted.get(remote.mirror_path, ()) or got in trusted.get(remote.filename, ()):
        from parlai.utils import logging

        logging.warning(
            f"{source}: sha256 {got} is not the known copy of {remote.mirror_path} "
            f"({remote.sha256}); accepted because {TRUST_ENV} lists it"
        )
        return
    raise ValueError(
        f"sha256 mismatch: expected {remote.sha256}, got {got} (if this is a legitimate "
        f"copy, accept it with {TRUST_ENV}={remote.mirror_path}:{got})"
    )


# --- transfer limits --------------------------------------------------------------------------


@dataclass(frozen=True)
class TransferLimits:
    """How long one transfer (one file from one source) may take before it is given up.

    The per-read ``timeout`` of :func:`download` only catches a silent source; these catch a
    source that keeps sending too little. Defaults, or the environment (see :meth:`from_env`).
    """

    deadline: float = 3600.0  # seconds for the whole file, headers included
    min_rate: float = 1024.0  # bytes per second, averaged over each window; 0 = no minimum
    window: float = 30.0  # seconds over which min_rate is averaged

    def __post_init__(self):
        for name, low in (("deadline", 0.0), ("window", 0.0)):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > low):
                raise ValueError(f"TransferLimits.{name} must be a positive number, got {value!r}")
        if not (math.isfinite(self.min_rate) and self.min_rate >= 0):
            raise ValueError(f"TransferLimits.min_rate must be >= 0, got {self.min_rate!r}")

    @classmethod
    def from_env(cls) -> "TransferLimits":
        """``PARLAI_EMPATHY_DOWNLOAD_DEADLINE`` (seconds), ``..._MIN_RATE`` (bytes/second,
        0 turns it off) and ``..._RATE_WINDOW`` (seconds); unset ones keep the defaults.

        :raises ValueError: naming the variable whose value is not a valid number.
        """
        values = {}
        for field, var, allow_zero in (
            ("deadline", DEADLINE_ENV, False),
            ("min_rate", MIN_RATE_ENV, True),
            ("window", RATE_WINDOW_ENV, False),
        ):
            raw = os.environ.get(var, "").strip()
            if not raw:
                continue
            try:
                value = float(raw)
            except ValueError:
                value = float("nan")
            if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
                kind = "a number >= 0" if allow_zero else "a positive number"
                raise ValueError(f"{var}={raw!r}: expected {kind}")
            values[field] = value
        return cls(**values)


class _Meter:
    """Wraps a stream's ``read``: at most one system call per read (``read1``), and after
    every block the deadline and the rate over the last window are checked."""

    def __init__(self, stream, limits: TransferLimits, clock=time.monotonic):
        self._read = getattr(stream, "read1", None) or stream.read
        self._limits = limits
        self._clock = clock
        self.start = self._window_start = clock()
        self.received = self._window_received = 0

    def read(self, size: int) -> bytes:
        block = self._read(size)
        if block:
            self.received += len(block)
            self.check()
        return block

    def check(self) -> None:
        limits, now = self._limits, self._clock()
        if now - self.start > limits.deadline:
            raise TransferTimeout(_deadline_message(limits, self.received))
        span = now - self._window_start
        if limits.min_rate and span >= limits.window:
            rate = (self.received - self._window_received) / span
            if rate < limits.min_rate:
                raise TransferTimeout(
                    f"too slow: {rate:.1f} bytes/s over the last {span:.1f} s, below the "
                    f"minimum of {limits.min_rate:g} bytes/s ({self.received} bytes received; "
                    f"{MIN_RATE_ENV} and {RATE_WINDOW_ENV} set the limit)"
                )
            self._window_start, self._window_received = now, self.received


def _deadline_message(limits: TransferLimits, received: int) -> str:
    return (
        f"not finished within its deadline of {limits.deadline:g} s ({received} bytes "
        f"received; {DEADLINE_ENV} sets the deadline)"
    )


class _Watchdog:
    """Shuts a transfer's sockets down when its deadline passes.

    A read that keeps receiving a byte now and then never hits the socket timeout; shutting
    the socket down makes it return, wherever the transfer is (headers or body).
    """

    def __init__(self, seconds: float):
        self.expired = False
        self._sockets: List[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                self._shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            # the plain socket's method, also for TLS sockets: only the file descriptor is
            # shut (ssl.SSLSocket.shutdown would tear down state the reading thread uses)
            socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


def _opener(watchdog: _Watchdog) -> urllib.request.OpenerDirector:
    """urllib's usual opener (proxies, redirects, file://) with watched HTTP(S) sockets."""

    def watched(connection_class):
        class Watched(connection_class):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                create = self._create_connection

                def create_watched(*a, **kw):
                    sock = create(*a, **kw)
                    watchdog.watch(sock)
                    return sock

                self._create_connection = create_watched

            def connect(self):
                super().connect()
                watchdog.watch(self.sock)  # the TLS socket, where there is one

        return Watched

    http_connection = watched(http.client.HTTPConnection)
    https_connection = watched(http.client.HTTPSConnection)

    class HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(http_connection, req)

    class HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(https_connection, req, context=self._context)

    return urllib.request.build_opener(HTTPHandler, HTTPSHandler)


# --- download ---------------------------------------------------------------------------------


def download(
    remote: RemoteFile,
    dest: str,
    timeout: float = 60.0,
    use_mirror: bool = True,
    limits: Optional[TransferLimits] = None,
) -> str:
    """Fetch ``remote`` to the path ``dest`` (mirror first) and verify it.

    ``timeout`` bounds each read; ``limits`` (default: :meth:`TransferLimits.from_env`) bound
    each transfer as a whole. A source that fails either is given up and the next one tried.

    :returns: the source that delivered the file.
    :raises DownloadError: naming the file, every location tried and the mirror variable.
    :raises OSError: when ``dest`` cannot be written (e.g. ``ENOSPC``); no other source
        is tried then, and no partial file is left behind.
    :raises ValueError: when a limit or trust setting in the environment is malformed.
    """
    limits = limits if limits is not None else TransferLimits.from_env()
    trusted_sha256()  # a malformed trust list is the user's error, not every source's
    tried: List[Tuple[str, str]] = []
    for source in sources(remote, use_mirror):
        try:
            _fetch_verified(source, remote, dest, timeout, limits)
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
        if isinstance(exc.reason, TransferTimeout):
            return str(exc.reason)
        if isinstance(exc.reason, FileNotFoundError):
            return "no such file"
        return f"network error: {exc.reason}"
    if isinstance(exc, (TransferTimeout, ValueError)):  # our own messages (sha256, limits)
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, http.client.IncompleteRead):
        return f"connection closed early ({exc!r})"
    return f"{type(exc).__name__}: {exc}"


def _fetch_verified(
    source: str, remote: RemoteFile, dest: str, timeout: float, limits: TransferLimits
):
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
                _copy_url(source, out, timeout, limits)
            else:
                with open(source, "rb") as src:
                    _pump(_Meter(src, limits).read, out)
        finally:
            try:
                out.close()  # flushes: a full disk may only show here
            except OSError as exc:
                raise _DestinationError() from exc
        if remote.sha256 is not None:
            check_sha256(remote, sha256_of(partial), source)
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


def _copy_url(url: str, out, timeout: float, limits: TransferLimits):
    watchdog = _Watchdog(limits.deadline)
    meter = None
    try:
        with _opener(watchdog).open(url, timeout=min(timeout, limits.deadline)) as response:
            expected = response.headers.get("Content-Length")
            meter = _Meter(response, limits)
            received = _pump(meter.read, out)
        if watchdog.expired:  # a cut connection without Content-Length looks like the end
            raise TransferTimeout(_deadline_message(limits, received))
    except (OSError, http.client.HTTPException) as exc:
        if watchdog.expired and not isinstance(exc, TransferTimeout):
            got = meter.received if meter is not None else 0
            raise TransferTimeout(_deadline_message(limits, got)) from exc
        raise
    finally:
        watchdog.cancel()
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


# --- what a build installed: the manifest -----------------------------------------------------


def _installed_files(folder: str) -> Dict[str, dict]:
    """Size, modification time and sha256 of every regular file under ``folder``."""
    files = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, folder).replace(os.sep, "/")
            info = os.lstat(path)
            if rel in (".built", MANIFEST) or not stat.S_ISREG(info.st_mode):
                continue
            files[rel] = {
                "size": info.st_size,
                "mtime_ns": info.st_mtime_ns,
                "sha256": sha256_of(path),
            }
    return files


def _write_manifest(folder: str, version: str, files: Dict[str, dict]) -> None:
    fd, partial = tempfile.mkstemp(prefix=MANIFEST + ".", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"format": 1, "version": version, "files": files}, f, indent=1,
                      sort_keys=True)
        os.chmod(partial, 0o666 & ~_umask())
        os.replace(partial, os.path.join(folder, MANIFEST))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)


def check_manifest(dpath: str) -> Tuple[str, Optional[str]]:
    """Compare a built folder with the manifest written when it was built.

    Cheap when nothing changed: one ``stat`` per file; a file whose time changed but size
    did not is hashed (and, when it still matches, its new time recorded).

    :returns: ``("intact", None)``, ``("unrecorded", None)`` (no manifest: built before
        manifests existed, or by ParlAI itself) or ``("changed", why)``.
    """
    path = os.path.join(dpath, MANIFEST)
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        files = manifest["files"]
        records = [
            (rel, int(r["size"]), int(r["mtime_ns"]), str(r["sha256"])) for rel, r in files.items()
        ]
    except FileNotFoundError:
        return "unrecorded", None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return "changed", f"its manifest {path} is unreadable ({type(exc).__name__}: {exc})"
    touched = False
    for rel, size, mtime_ns, digest in records:
        full = os.path.join(dpath, *rel.split("/"))
        try:
            info = os.stat(full)
        except OSError:
            return "changed", f"{full} is missing"
        if info.st_size != size:
            return "changed", f"{full} has {info.st_size} bytes, {size} when it was built"
        if info.st_mtime_ns != mtime_ns:
            got = sha256_of(full)
            if got != digest:
                return "changed", f"{full} changed since it was built (sha256 {got}, was {digest})"
            files[rel]["mtime_ns"] = info.st_mtime_ns
            touched = True
    if touched:  # same bytes, new time: remember it so the next check is a stat again
        with contextlib.suppress(OSError):
            _write_manifest(dpath, manifest.get("version"), files)
    return "intact", None


# --- all-or-nothing builds --------------------------------------------------------------------


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


class _Terminated(BaseException):
    """A terminating signal arrived during a build (raised so the cleanup runs)."""

    def __init__(self, signum: int):
        super().__init__(f"terminated by signal {signum}")
        self.signum = signum


_TERMINATING = (signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def _cleanup_before_termination() -> Iterator[None]:
    """While a build runs, SIGTERM and SIGHUP (when they would kill the process outright)
    raise instead, so the build's cleanup removes its staging folder; the signal is then
    delivered again with its default action, and the process ends as it would have.

    Ctrl-C needs nothing: Python's SIGINT handler already raises KeyboardInterrupt. Other
    threads cannot set handlers; a handler someone else installed is left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = [s for s in _TERMINATING if signal.getsignal(s) == signal.SIG_DFL]

    def handler(signum, frame):
        for s in caught:  # a second signal must not cut the cleanup short
            signal.signal(s, signal.SIG_IGN)
        raise _Terminated(signum)

    for s in caught:
        signal.signal(s, handler)
    try:
        yield
    except _Terminated as exc:
        for s in caught:
            signal.signal(s, signal.SIG_DFL)
        os.kill(os.getpid(), exc.signum)
        raise SystemExit(128 + exc.signum) from None  # only if the signal is blocked
    finally:
        for s in caught:
            signal.signal(s, signal.SIG_DFL)


def _remove_leftovers(parent: str, name: str) -> None:
    """Remove staging/retired folders of runs that died (we hold the lock: none is live)."""
    prefixes = (f".{name}.building-", f".{name}.old-")
    with contextlib.suppress(OSError):
        for entry in os.listdir(parent):
            if entry.startswith(prefixes):
                shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def build_once(
    dpath: str,
    version: str,
    populate: Callable[[str], None],
    record_files: bool = False,
    vet_unrecorded: Optional[Callable[[str], Optional[str]]] = None,
) -> bool:
    """Make ``dpath`` hold a complete build of ``version``, or leave it untouched.

    ``populate(folder)`` fills a fresh temporary sibling folder. Only when it returns is the
    folder marked built (ParlAI's ``.built`` file with ``version``) and swapped in place of
    any older ``dpath``. On any exception, and on SIGTERM/SIGHUP, the temporary folder is
    removed and ``dpath`` is as before. Returns True when it built, False when it kept
    ``dpath``.

    With ``record_files``, the build also records its files (``.manifest.json``), and a
    folder already built with ``version`` is kept only while they match
    (:func:`check_manifest`); otherwise it is rebuilt. A built folder without a manifest is
    passed to ``vet_unrecorded(dpath)``, which returns None to keep it (its files are then
    recorded) or the reason to rebuild it; without ``vet_unrecorded`` it is kept.
    """
    from parlai.core import build_data
    from parlai.utils import logging

    def kept() -> Tuple[bool, Optional[str]]:
        if not built(dpath, version):
            return False, None
        if not record_files:
            return True, None
        state, why = check_manifest(dpath)
        if state == "unrecorded":
            why = vet_unrecorded(dpath) if vet_unrecorded is not None else None
            if why is None:
                with contextlib.suppress(OSError):  # a read-only folder stays unrecorded
                    _write_manifest(dpath, version, _installed_files(dpath))
                return True, None
        return state == "intact", why

    dpath = os.path.abspath(dpath)
    if built(dpath, version) and (not record_files or check_manifest(dpath)[0] == "intact"):
        return False
    with _cleanup_before_termination(), _locked(dpath):
        keep, why = kept()  # maybe another worker finished while we waited
        if keep:
            return False
        if why:
            logging.warning(f"rebuilding {dpath}: {why}")
        parent, name = os.path.split(dpath)
        _remove_leftovers(parent, name)
        staging = tempfile.mkdtemp(prefix=f".{name}.building-", dir=parent)
        retired = None
        try:
            os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes it private
            populate(staging)
            if record_files:
                _write_manifest(staging, version, _installed_files(staging))
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
