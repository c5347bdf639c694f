"""Tests of the mirror-first, checksummed, all-or-nothing download layer.

The files served are the real ones of the shared mirror folder (``mirror`` fixture), over a
loopback HTTP server that can be told to misbehave per path. Nothing leaves 127.0.0.1: an
autouse fixture fails any test that tries to connect elsewhere.
"""
import errno
import hashlib
import http.server
import io
import os
import socket
import signal
import subprocess
import sys
import tarfile
import threading
import time
import urllib.parse

import pytest

from parlai_empathy import mirror as mirror_mod
from parlai_empathy.mirror import (
    MIRROR_ENV,
    DownloadError,
    RemoteFile,
    build_once,
    built,
    download,
    mirror_location,
    sha256_of,
    sources,
    unpack,
)

ESCONV_TRAIN = "esconv/train.json"
ESCONV_TRAIN_SHA = "e401fc5010879dfec7bb716caf072706877a6863dc9d775d39c7296d74feb4fc"
ESCONV_VALID_SHA = "4458152869827ed82e2f0f4a0cdc3e6c33b224f03353f9f1b4ed93d24730b531"
WRONG_SHA = "0" * 64
# the settings users write, spelled out (a rename would break their configuration)
TRUST_ENV = "PARLAI_EMPATHY_TRUST_SHA256"
DEADLINE_ENV = "PARLAI_EMPATHY_DOWNLOAD_DEADLINE"
MIN_RATE_ENV = "PARLAI_EMPATHY_DOWNLOAD_MIN_RATE"
RATE_WINDOW_ENV = "PARLAI_EMPATHY_DOWNLOAD_RATE_WINDOW"
MANIFEST = ".manifest.json"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


# ---------------------------------------------------------------------------------------
# Fixtures: network guard and a loopback HTTP server over the real mirror files
# ---------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_remote_network(monkeypatch):
    """Fail loudly (not as a DownloadError) if anything connects beyond 127.0.0.1."""
    real = socket.create_connection

    def guarded(address, *args, **kwargs):
        host = address[0]
        if host not in _LOOPBACK:
            raise AssertionError(f"test tried to connect to {address!r}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    for var in (TRUST_ENV, DEADLINE_ENV, MIN_RATE_ENV, RATE_WINDOW_ENV):  # the user's own
        monkeypatch.delenv(var, raising=False)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # so Content-Length and chunked framing are honoured
    timeout = 10  # a stuck client never holds a server thread for long

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        server = self.server
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        with server.lock:
            server.requests.append(path)
            queue = server.behaviours.get(path)
            behaviour = queue.pop(0) if queue else "serve"
        body = server.body_of(path)
        if behaviour == "404" or body is None:
            self.send_error(404, "Not Found")
            return
        if behaviour == "serve":
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif behaviour == "truncate":  # promise every byte, send half, hang up
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
        elif behaviour == "chunked-truncate":  # chunked framing, stream cut mid-way
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            half = body[: len(body) // 2]
            self.wfile.write(b"%x\r\n" % len(half) + half + b"\r\n")
            self.close_connection = True
        elif behaviour == "no-length-half":  # no Content-Length: the end is where it closes
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
        elif behaviour == "trickle":  # honest headers, then one byte per tick
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self._trickle(body, 1, server.tick)
        elif behaviour == "steady":  # above any sensible minimum rate, but slow to finish
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self._trickle(body, 4096, server.tick)
        elif behaviour == "trickle-headers":  # even the headers come one byte per tick
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            head = b"Content-Length: %d\r\n\r\n" % len(body)
            self._trickle(head + body, 1, 2 * server.tick)
        elif behaviour == "corrupt":  # right length, one byte flipped
            damaged = bytearray(body)
            damaged[len(damaged) // 2] ^= 0xFF
            self.send_response(200)
            self.send_header("Content-Length", str(len(damaged)))
            self.end_headers()
            self.wfile.write(bytes(damaged))
        else:  # pragma: no cover - a typo in a test
            raise AssertionError(f"unknown behaviour {behaviour!r}")


    def _trickle(self, data, step, tick):
        """Send ``step`` bytes per ``tick`` seconds, for at most ``trickle_limit`` seconds
        (then hang up), stopping early when the client leaves or the server stops."""
        server = self.server
        self.close_connection = True
        end = time.monotonic() + server.trickle_limit
        try:
            for start in range(0, len(data), step):
                if time.monotonic() > end or server.stopping.wait(tick):
                    return
                self.wfile.write(data[start:start + step])
                with server.lock:
                    server.trickled += step
        except (BrokenPipeError, ConnectionResetError):
            return


class LoopbackServer(http.server.ThreadingHTTPServer):
    """Serves files from ``roots`` (first hit wins) on 127.0.0.1; ``public/`` is an alias.

    ``behaviours[path]`` is a queue of misbehaviours for the next requests of ``path``;
    ``requests`` records every requested path, in order.
    """

    daemon_threads = True

    def __init__(self, roots):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.roots = list(roots)
        self.extra = {}  # path -> bytes served in addition to the roots
        self.behaviours = {}
        self.requests = []
        self.lock = threading.Lock()
        self.tick = 0.05  # seconds between the pieces of a trickle
        self.trickle_limit = 8.0  # a trickling response ends (cut short) after this long
        self.trickled = 0  # bytes sent by trickles so far
        self.stopping = threading.Event()

    @property
    def base(self):
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def body_of(self, path):
        if path in self.extra:
            return self.extra[path]
        if path.startswith("public/"):
            path = path[len("public/"):]
        for root in self.roots:
            full = os.path.realpath(os.path.join(root, *path.split("/")))
            if full.startswith(os.path.realpath(root) + os.sep) and os.path.isfile(full):
                with open(full, "rb") as f:
                    return f.read()
        return None

    def misbehave(self, path, *behaviours):
        with self.lock:
            self.behaviours.setdefault(path, []).extend(behaviours)


def start_server(roots):
    server = LoopbackServer(roots)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


def stop_server(server, thread):
    server.stopping.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)
    assert not thread.is_alive(), "loopback server thread did not stop"


@pytest.fixture
def server(mirror):
    """A loopback HTTP server over the real mirror files, always shut down afterwards."""
    srv, thread = start_server([mirror])
    try:
        yield srv
    finally:
        stop_server(srv, thread)


@pytest.fixture
def http_mirror(server, monkeypatch):
    """``PARLAI_EMPATHY_MIRROR`` pointing at the loopback server."""
    monkeypatch.setenv(MIRROR_ENV, server.base)
    return server


def leftovers(folder):
    """Temporary names a failed run could leave: .part files and staging dot-folders."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        found += [os.path.join(dirpath, d) for d in dirnames if d.startswith(".")]
        found += [os.path.join(dirpath, f) for f in filenames if f.endswith(".part")]
    return found


def dot_folders(parent):
    return [e for e in os.listdir(parent) if e.startswith(".") and os.path.isdir(os.path.join(parent, e))]


def read_text(path):
    with open(path) as f:
        return f.read()


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def expected_mode(kind):
    mask = os.umask(0o022)
    os.umask(mask)
    return kind & ~mask


def make_tar_gz(path, members):
    """Write a .tar.gz holding ``members`` (name -> bytes)."""
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


# ---------------------------------------------------------------------------------------
# Sources and the mirror setting
# ---------------------------------------------------------------------------------------


def test_sources_mirror_first_then_public_url(monkeypatch, tmp_path):
    """The mirror's copy is tried before the public URL, for folders and URLs alike."""
    remote = RemoteFile("esconv/train.json", url="http://127.0.0.1:9/pub/train.json")
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    assert mirror_location() is None
    assert sources(remote) == ["http://127.0.0.1:9/pub/train.json"]

    monkeypatch.setenv(MIRROR_ENV, str(tmp_path))
    assert sources(remote) == [str(tmp_path / "esconv" / "train.json"), remote.url]
    assert sources(remote, use_mirror=False) == [remote.url]

    monkeypatch.setenv(MIRROR_ENV, "http://127.0.0.1:8/base")  # no trailing slash
    assert sources(remote)[0] == "http://127.0.0.1:8/base/esconv/train.json"
    monkeypatch.setenv(MIRROR_ENV, "file:///srv/mirror/")
    assert sources(RemoteFile("nrc_vad/a b.txt"))[0] == "file:///srv/mirror/nrc_vad/a%20b.txt"

    monkeypatch.setenv(MIRROR_ENV, "   ")  # blank means unset
    assert mirror_location() is None


# ---------------------------------------------------------------------------------------
# download(): success and every way a source can fail
# ---------------------------------------------------------------------------------------


def test_download_from_http_mirror_verifies_real_file(http_mirror, mirror, tmp_path):
    """The real esconv/train.json arrives intact from an HTTP mirror, pinned sha checked."""
    dest = str(tmp_path / "out" / "train.json")
    source = download(RemoteFile(ESCONV_TRAIN, sha256=ESCONV_TRAIN_SHA), dest)
    assert source == http_mirror.base + ESCONV_TRAIN
    assert sha256_of(dest) == ESCONV_TRAIN_SHA
    assert sha256_of(os.path.join(mirror, "esconv", "train.json")) == ESCONV_TRAIN_SHA
    assert http_mirror.requests == [ESCONV_TRAIN]
    assert leftovers(str(tmp_path)) == []
    # Readable like any other file (mkstemp's private 0600 must not leak through).
    assert os.stat(dest).st_mode & 0o777 == expected_mode(0o666)


def test_download_from_local_folder_mirror(mirror, monkeypatch, tmp_path):
    """A plain folder works as a mirror too."""
    monkeypatch.setenv(MIRROR_ENV, mirror)
    dest = str(tmp_path / "valid.json")
    source = download(RemoteFile("esconv/valid.json", sha256=ESCONV_VALID_SHA), dest)
    assert source == os.path.join(mirror, "esconv", "valid.json")
    assert sha256_of(dest) == ESCONV_VALID_SHA


def test_download_from_file_url_mirror(mirror, monkeypatch, tmp_path):
    """A file:// base URL is a mirror like any other."""
    monkeypatch.setenv(MIRROR_ENV, "file://" + mirror)
    dest = str(tmp_path / "train.json")
    source = download(RemoteFile(ESCONV_TRAIN, sha256=ESCONV_TRAIN_SHA), dest)
    assert source == "file://" + mirror + "/" + ESCONV_TRAIN
    assert sha256_of(dest) == ESCONV_TRAIN_SHA
    assert leftovers(str(tmp_path)) == []


def test_wrong_checksum_is_rejected(http_mirror, tmp_path):
    """A file whose sha256 differs from the pinned one is never installed."""
    dest = tmp_path / "train.json"
    with pytest.raises(DownloadError) as info:
        download(RemoteFile(ESCONV_TRAIN, sha256=WRONG_SHA), str(dest))
    message = str(info.value)
    assert "sha256 mismatch" in message and ESCONV_TRAIN_SHA in message
    assert http_mirror.base + ESCONV_TRAIN in message
    assert not dest.exists()
    assert leftovers(str(tmp_path)) == []


def test_corrupted_bytes_caught_by_checksum(http_mirror, tmp_path):
    """A copy of the right length with one flipped byte fails the sha256 check."""
    http_mirror.misbehave(ESCONV_TRAIN, "corrupt")
    dest = tmp_path / "train.json"
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        download(RemoteFile(ESCONV_TRAIN, sha256=ESCONV_TRAIN_SHA), str(dest))
    assert not dest.exists()


def test_http_404(http_mirror, tmp_path):
    """A missing file on the mirror is reported as HTTP 404 with the URL tried."""
    dest = tmp_path / "nothing.json"
    with pytest.raises(DownloadError) as info:
        download(RemoteFile("esconv/nothing.json"), str(dest))
    message = str(info.value)
    assert "HTTP 404" in message
    assert http_mirror.base + "esconv/nothing.json" in message
    assert "'nothing.json'" in message
    assert not dest.exists() and leftovers(str(tmp_path)) == []


def test_connection_dropped_mid_file_detected_without_checksum(http_mirror, tmp_path):
    """A body shorter than its Content-Length is an error even with no sha256 pinned."""
    http_mirror.misbehave(ESCONV_TRAIN, "truncate")
    dest = tmp_path / "train.json"
    with pytest.raises(DownloadError, match=r"connection closed after \d+ of 4037146 bytes"):
        download(RemoteFile(ESCONV_TRAIN), str(dest))
    assert not dest.exists()
    assert leftovers(str(tmp_path)) == []


def test_chunked_stream_cut_mid_file(http_mirror, tmp_path):
    """A chunked response cut off mid-way is a DownloadError (not a stray IncompleteRead)."""
    http_mirror.misbehave(ESCONV_TRAIN, "chunked-truncate")
    dest = tmp_path / "train.json"
    with pytest.raises(DownloadError, match="connection closed early"):
        download(RemoteFile(ESCONV_TRAIN), str(dest))
    assert not dest.exists()
    assert leftovers(str(tmp_path)) == []


def test_fallback_to_public_url_when_mirror_lacks_file(server, monkeypatch, tmp_path):
    """When the mirror has no copy, the public URL delivers (and is verified)."""
    empty_mirror = tmp_path / "empty-mirror"
    empty_mirror.mkdir()
    monkeypatch.setenv(MIRROR_ENV, str(empty_mirror))
    public = server.base + "public/" + ESCONV_TRAIN
    dest = str(tmp_path / "train.json")
    source = download(RemoteFile(ESCONV_TRAIN, url=public, sha256=ESCONV_TRAIN_SHA), dest)
    assert source == public
    assert server.requests == ["public/" + ESCONV_TRAIN]
    assert sha256_of(dest) == ESCONV_TRAIN_SHA


def test_fallback_to_public_url_when_mirror_copy_is_bad(http_mirror, tmp_path):
    """A damaged mirror copy is skipped in favour of a good public copy."""
    http_mirror.misbehave(ESCONV_TRAIN, "corrupt")
    public = http_mirror.base + "public/" + ESCONV_TRAIN
    dest = str(tmp_path / "train.json")
    source = download(RemoteFile(ESCONV_TRAIN, url=public, sha256=ESCONV_TRAIN_SHA), dest)
    assert source == public
    assert http_mirror.requests == [ESCONV_TRAIN, "public/" + ESCONV_TRAIN]
    assert sha256_of(dest) == ESCONV_TRAIN_SHA


def test_total_failure_names_file_every_source_and_variable(http_mirror, tmp_path):
    """The error of a total failure lists the file, each location tried and the variable."""
    remote = RemoteFile(
        "esconv/missing.json", url=http_mirror.base + "public/esconv/missing.json"
    )
    with pytest.raises(DownloadError) as info:
        download(remote, str(tmp_path / "missing.json"))
    message = str(info.value)
    assert "'missing.json'" in message and "esconv/missing.json" in message
    assert f"{http_mirror.base}esconv/missing.json: HTTP 404" in message
    assert f"{http_mirror.base}public/esconv/missing.json: HTTP 404" in message
    assert f"{MIRROR_ENV}={http_mirror.base}" in message
    assert http_mirror.requests == ["esconv/missing.json", "public/esconv/missing.json"]


def test_total_failure_without_mirror_says_how_to_set_it(server, monkeypatch, tmp_path):
    """With no mirror set, the error tells which variable would allow an offline build."""
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    remote = RemoteFile("esconv/missing.json", url=server.base + "public/esconv/missing.json")
    with pytest.raises(DownloadError) as info:
        download(remote, str(tmp_path / "missing.json"))
    message = str(info.value)
    assert f"{MIRROR_ENV} is not set" in message
    assert server.base + "public/esconv/missing.json: HTTP 404" in message


def test_disk_full_leaves_no_part_file_and_tries_no_other_source(http_mirror, monkeypatch, tmp_path):
    """ENOSPC while writing removes the partial file and is raised as the OSError it is."""
    real_pump = mirror_mod._pump

    class FullDisk:
        def __init__(self, out):
            self.out, self.written = out, 0

        def write(self, block):
            if self.written:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.written = self.out.write(block[:1000])  # some bytes land first
            return self.written

    monkeypatch.setattr(mirror_mod, "_pump", lambda read, out: real_pump(read, FullDisk(out)))
    folder = tmp_path / "dl"
    public = http_mirror.base + "public/" + ESCONV_TRAIN
    with pytest.raises(OSError) as info:
        download(RemoteFile(ESCONV_TRAIN, url=public, sha256=ESCONV_TRAIN_SHA), str(folder / "train.json"))
    assert info.value.errno == errno.ENOSPC
    assert not isinstance(info.value, DownloadError)
    assert "train.json" in str(info.value) and http_mirror.base + ESCONV_TRAIN in str(info.value)
    assert os.listdir(folder) == []  # no .part, no train.json
    assert http_mirror.requests == [ESCONV_TRAIN]  # a full disk is not the source's fault


# ---------------------------------------------------------------------------------------
# unpack()
# ---------------------------------------------------------------------------------------


@pytest.fixture
def esconv_archive(mirror, tmp_path):
    """A .tar.gz of the real esconv valid/test files."""
    members = {}
    for split in ("valid", "test"):
        with open(os.path.join(mirror, "esconv", f"{split}.json"), "rb") as f:
            members[f"esconv/{split}.json"] = f.read()
    return make_tar_gz(str(tmp_path / "esconv.tar.gz"), members), members


def test_unpack_good_archive(esconv_archive, tmp_path):
    """A sound archive unpacks byte for byte."""
    archive, members = esconv_archive
    out = tmp_path / "out"
    unpack(archive, str(out))
    for name, data in members.items():
        assert (out / name).read_bytes() == data


@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_unpack_truncated_archive_names_it(esconv_archive, tmp_path, keep):
    """A cut-off .tar.gz is a ValueError naming the archive, even if only the tail is lost."""
    archive, _ = esconv_archive
    with open(archive, "rb") as f:
        data = f.read()
    cut = str(tmp_path / "cut.tar.gz")
    with open(cut, "wb") as f:
        f.write(data[: int(len(data) * keep)])
    with pytest.raises(ValueError, match="cut.tar.gz: damaged or truncated archive"):
        unpack(cut, str(tmp_path / "out"))


def test_unpack_corrupted_archive_is_refused(esconv_archive, tmp_path):
    """A flipped bit inside the compressed data fails the gzip CRC instead of unpacking garbage."""
    archive, _ = esconv_archive
    data = bytearray(read_bytes(archive))
    data[len(data) // 3] ^= 0x01
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="bad.tar.gz: damaged or truncated archive"):
        unpack(str(bad), str(tmp_path / "out"))


@pytest.mark.parametrize("name", ["../evil.txt", "ok/../../evil.txt", "/tmp/evil-abs.txt"])
def test_unpack_refuses_member_outside_dest(tmp_path, name):
    """Members that would land outside the destination are refused before anything is written."""
    archive = make_tar_gz(str(tmp_path / "evil.tar.gz"), {"fine.txt": b"x", name: b"pwned"})
    out = tmp_path / "sub" / "out"
    out.mkdir(parents=True)
    with pytest.raises(ValueError, match="would unpack outside"):
        unpack(archive, str(out))
    assert os.listdir(out) == []
    assert not (tmp_path / "sub" / "evil.txt").exists()
    assert not os.path.exists("/tmp/evil-abs.txt")


def test_unpack_refuses_symlink_member(tmp_path):
    """A symlink member could redirect later writes; it is refused."""
    archive = str(tmp_path / "link.tar.gz")
    with tarfile.open(archive, "w:gz") as tf:
        info = tarfile.TarInfo("data")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc"
        tf.addfile(info)
    with pytest.raises(ValueError, match="refusing link"):
        unpack(archive, str(tmp_path / "out"))


# ---------------------------------------------------------------------------------------
# build_once(): all or nothing
# ---------------------------------------------------------------------------------------


def _writer(text):
    def populate(folder):
        with open(os.path.join(folder, "data.txt"), "w") as f:
            f.write(text)

    return populate


def _built_version(dpath):
    with open(os.path.join(dpath, ".built")) as f:
        return f.read().split("\n")[1]


def test_build_once_builds_then_skips(tmp_path):
    """A build is marked with its version; the next call with that version does nothing."""
    dpath = str(tmp_path / "ds")
    calls = []
    assert build_once(dpath, "1.0", lambda folder: (calls.append(folder), _writer("a")(folder)))
    assert built(dpath, "1.0") and _built_version(dpath) == "1.0"
    assert read_text(os.path.join(dpath, "data.txt")) == "a"
    assert not build_once(dpath, "1.0", lambda folder: calls.append(folder))
    assert len(calls) == 1
    assert dot_folders(str(tmp_path)) == []
    assert os.stat(dpath).st_mode & 0o777 == expected_mode(0o777)


def test_populate_failure_leaves_nothing(tmp_path):
    """A populate() that raises leaves no dpath, no .built and no staging folders."""
    dpath = tmp_path / "ds"

    def populate(folder):
        _writer("half")(folder)
        os.makedirs(os.path.join(folder, "sub"))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        build_once(str(dpath), "1.0", populate)
    assert not dpath.exists()
    assert not built(str(dpath), "1.0")
    assert dot_folders(str(tmp_path)) == []


def test_failed_rebuild_keeps_previous_build(tmp_path):
    """A failed build of a new version leaves the old, complete build in place."""
    dpath = str(tmp_path / "ds")
    build_once(dpath, "1", _writer("old"))

    def failing(folder):
        raise OSError(errno.EIO, "read error")

    with pytest.raises(OSError):
        build_once(dpath, "2", failing)
    assert built(dpath, "1") and not built(dpath, "2")
    assert read_text(os.path.join(dpath, "data.txt")) == "old"
    assert dot_folders(str(tmp_path)) == []


def test_failed_swap_restores_previous_build(tmp_path, monkeypatch):
    """If the final rename fails, the old build is put back rather than lost."""
    dpath = str(tmp_path / "ds")
    build_once(dpath, "1", _writer("old"))
    real_replace = os.replace

    def replace(src, dst):
        if os.path.basename(src).startswith(".ds.building-"):
            raise OSError(errno.EXDEV, "simulated rename failure")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="simulated rename failure"):
        build_once(dpath, "2", _writer("new"))
    monkeypatch.undo()
    assert built(dpath, "1") and read_text(os.path.join(dpath, "data.txt")) == "old"
    assert dot_folders(str(tmp_path)) == []


def test_version_change_rebuilds(tmp_path):
    """A new version replaces the folder entirely (old files do not linger)."""
    dpath = str(tmp_path / "ds")
    build_once(dpath, "1", _writer("one"))
    with open(os.path.join(dpath, "stale.txt"), "w") as f:
        f.write("from version 1")

    def populate_v2(folder):
        _writer("two")(folder)

    assert build_once(dpath, "2", populate_v2)
    assert _built_version(dpath) == "2" and not built(dpath, "1")
    assert read_text(os.path.join(dpath, "data.txt")) == "two"
    assert not os.path.exists(os.path.join(dpath, "stale.txt"))
    assert dot_folders(str(tmp_path)) == []


def test_leftovers_of_a_killed_run_are_removed(tmp_path):
    """Staging folders of a run that died are cleaned up by the next build, never used."""
    dpath = str(tmp_path / "ds")
    stale = tmp_path / ".ds.building-dead"
    (stale / "partial").mkdir(parents=True)
    assert build_once(dpath, "1", _writer("fresh"))
    assert not stale.exists()
    assert dot_folders(str(tmp_path)) == []


def test_parallel_callers_build_once(tmp_path):
    """Concurrent build_once calls (e.g. distributed workers) run populate a single time."""
    dpath = str(tmp_path / "ds")
    calls = []
    gate = threading.Event()

    def populate(folder):
        calls.append(folder)
        gate.wait(0.3)
        _writer("x")(folder)

    results = []
    threads = [
        threading.Thread(target=lambda: results.append(build_once(dpath, "1", populate)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(calls) == 1 and sorted(results) == [False, False, False, True]
    assert built(dpath, "1")


def _download_into(remote):
    def populate(folder):
        download(remote, os.path.join(folder, "esconv", remote.filename))

    return populate


def test_second_run_after_failure_builds(http_mirror, tmp_path):
    """After a mid-file disconnect fails a build, the next call builds from scratch."""
    http_mirror.misbehave(ESCONV_TRAIN, "truncate")
    dpath = str(tmp_path / "esconv")
    populate = _download_into(RemoteFile(ESCONV_TRAIN, sha256=ESCONV_TRAIN_SHA))
    with pytest.raises(DownloadError, match="connection closed after"):
        build_once(dpath, "1.0", populate)
    assert not os.path.exists(dpath) and dot_folders(str(tmp_path)) == []

    assert build_once(dpath, "1.0", populate) is True
    assert built(dpath, "1.0")
    assert sha256_of(os.path.join(dpath, "esconv", "train.json")) == ESCONV_TRAIN_SHA
    assert http_mirror.requests == [ESCONV_TRAIN, ESCONV_TRAIN]
    assert leftovers(str(tmp_path)) == []


def test_checksum_failure_in_build_marks_nothing(http_mirror, tmp_path):
    """A checksum mismatch inside a build leaves nothing built."""
    dpath = tmp_path / "esconv"
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        build_once(str(dpath), "1.0", _download_into(RemoteFile(ESCONV_TRAIN, sha256=WRONG_SHA)))
    assert not dpath.exists() and dot_folders(str(tmp_path)) == []


def test_truncated_archive_in_build_marks_nothing(esconv_archive, tmp_path):
    """A truncated archive unpacked by populate() leaves no half-unpacked folder behind."""
    archive, _ = esconv_archive
    data = read_bytes(archive)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: len(data) * 3 // 4])
    parent = tmp_path / "datapath"
    dpath = parent / "esconv"
    with pytest.raises(ValueError, match="cut.tar.gz"):
        build_once(str(dpath), "1.0", lambda folder: unpack(str(cut), folder))
    assert not dpath.exists() and not built(str(dpath), "1.0")
    assert dot_folders(str(parent)) == []


def test_disk_full_during_build_marks_nothing(http_mirror, monkeypatch, tmp_path):
    """ENOSPC mid-download aborts the build with no .part file and nothing built."""
    real_pump = mirror_mod._pump

    class FullDisk:
        def __init__(self, out):
            self.out = out

        def write(self, block):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(mirror_mod, "_pump", lambda read, out: real_pump(read, FullDisk(out)))
    dpath = tmp_path / "esconv"
    with pytest.raises(OSError) as info:
        build_once(str(dpath), "1.0", _download_into(RemoteFile(ESCONV_TRAIN, sha256=ESCONV_TRAIN_SHA)))
    assert info.value.errno == errno.ENOSPC
    assert not dpath.exists() and leftovers(str(tmp_path)) == []
    assert dot_folders(str(tmp_path)) == []


def test_sha256_of_matches_hashlib(tmp_path):
    """sha256_of reads in blocks; it must agree with a one-shot digest across block edges."""
    data = os.urandom(mirror_mod._CHUNK + 123)
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert sha256_of(str(path)) == hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------
# Trusting another copy explicitly
# ---------------------------------------------------------------------------------------


@pytest.fixture
def warnings_logged(monkeypatch):
    """Messages passed to ParlAI's ``logging.warning`` (it writes to its own stdout handler)."""
    from parlai.utils import logging

    seen = []
    monkeypatch.setattr(logging, "warning", lambda msg, *a, **k: seen.append(str(msg)))
    return seen


def test_mismatch_names_the_setting_that_would_accept_the_copy(http_mirror, tmp_path):
    """The sha256 error says which setting accepts this exact copy."""
    with pytest.raises(DownloadError) as info:
        download(RemoteFile(ESCONV_TRAIN, sha256=WRONG_SHA), str(tmp_path / "train.json"))
    assert f"{TRUST_ENV}={ESCONV_TRAIN}:{ESCONV_TRAIN_SHA}" in str(info.value)


@pytest.mark.parametrize("name", [ESCONV_TRAIN, "train.json"])
def test_trusted_copy_is_accepted_and_logged(http_mirror, monkeypatch, tmp_path, warnings_logged, name):
    """A copy whose sha256 the user lists (by mirror path or file name) is installed, with a
    warning naming the source; other files are still held to their pins."""
    monkeypatch.setenv(TRUST_ENV, f"esconv/valid.json:{'1' * 64}, {name}:{ESCONV_TRAIN_SHA.upper()}")
    dest = str(tmp_path / "train.json")
    source = download(RemoteFile(ESCONV_TRAIN, sha256=WRONG_SHA), dest)
    assert sha256_of(dest) == ESCONV_TRAIN_SHA
    assert len(warnings_logged) == 1
    assert source in warnings_logged[0] and TRUST_ENV in warnings_logged[0]
    assert ESCONV_TRAIN_SHA in warnings_logged[0] and WRONG_SHA in warnings_logged[0]
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        download(RemoteFile("esconv/valid.json", sha256=WRONG_SHA), str(tmp_path / "valid.json"))


@pytest.mark.parametrize("value", ["esconv/train.json", "esconv/train.json:abc", f":{'0' * 64}"])
def test_malformed_trust_list_is_named(http_mirror, monkeypatch, tmp_path, value):
    """A trust entry that is not <file>:<sha256> is the user's error, named as such."""
    monkeypatch.setenv(TRUST_ENV, value)
    with pytest.raises(ValueError) as info:
        download(RemoteFile(ESCONV_TRAIN, sha256=ESCONV_TRAIN_SHA), str(tmp_path / "train.json"))
    assert TRUST_ENV in str(info.value) and repr(value) in str(info.value)
    assert http_mirror.requests == []


# ---------------------------------------------------------------------------------------
# Deadlines and minimum rates
# ---------------------------------------------------------------------------------------


def _timed_download(remote, dest):
    start = time.monotonic()
    try:
        with pytest.raises(DownloadError) as info:
            download(remote, dest)
    finally:
        elapsed = time.monotonic() - start
    return str(info.value), elapsed


def test_trickling_source_is_cut_by_the_minimum_rate(http_mirror, monkeypatch, tmp_path):
    """A body arriving one byte per tick (each read well inside the read timeout) is given up
    once a rate window shows it below the minimum rate."""
    http_mirror.misbehave(ESCONV_TRAIN, "trickle")
    monkeypatch.setenv(MIN_RATE_ENV, "1000")
    monkeypatch.setenv(RATE_WINDOW_ENV, "0.5")
    dest = tmp_path / "train.json"
    message, elapsed = _timed_download(RemoteFile(ESCONV_TRAIN, sha256=ESCONV_TRAIN_SHA), str(dest))
    assert "too slow" in message and "below the minimum of 1000 bytes/s" in message
    assert MIN_RATE_ENV in message
    assert elapsed < 4, elapsed  # the trickle itself would go on for 8 s
    assert not dest.exists() and leftovers(str(tmp_path)) == []


def test_steady_but_slow_source_is_cut_by_the_deadline(http_mirror, monkeypatch, tmp_path):
    """A source above the minimum rate that would still take long is cut at the deadline."""
    http_mirror.misbehave(ESCONV_TRAIN, "steady")  # ~80 KB/s: 50 s for this file
    monkeypatch.setenv(DEADLINE_ENV, "1")
    message, elapsed = _timed_download(RemoteFile(ESCONV_TRAIN, sha256=ESCONV_TRAIN_SHA), str(tmp_path / "t"))
    assert "not finished within its deadline of 1 s" in message and DEADLINE_ENV in message
    assert elapsed < 4, elapsed
    assert leftovers(str(tmp_path)) == []


def test_trickling_headers_are_cut_by_the_deadline(http_mirror, monkeypatch, tmp_path):
    """Even while the response headers trickle in (no body read yet), the deadline holds."""
    http_mirror.misbehave(ESCONV_TRAIN, "trickle-headers")
    monkeypatch.setenv(DEADLINE_ENV, "1")
    message, elapsed = _timed_download(RemoteFile(ESCONV_TRAIN), str(tmp_path / "t"))
    assert "not finished within its deadline of 1 s" in message
    assert elapsed < 4, elapsed
    assert leftovers(str(tmp_path)) == []


def test_slow_mirror_falls_back_to_public_url(http_mirror, monkeypatch, tmp_path):
    """A mirror too slow to use is one failed source: the public URL then delivers."""
    http_mirror.misbehave(ESCONV_TRAIN, "trickle")
    monkeypatch.setenv(MIN_RATE_ENV, "1000")
    monkeypatch.setenv(RATE_WINDOW_ENV, "0.5")
    public = http_mirror.base + "public/" + ESCONV_TRAIN
    dest = str(tmp_path / "train.json")
    start = time.monotonic()
    source = download(RemoteFile(ESCONV_TRAIN, url=public, sha256=ESCONV_TRAIN_SHA), dest)
    assert time.monotonic() - start < 4
    assert source == public and sha256_of(dest) == ESCONV_TRAIN_SHA


@pytest.mark.parametrize(
    "var, value",
    [(DEADLINE_ENV, "soon"), (DEADLINE_ENV, "0"), (MIN_RATE_ENV, "-1"), (RATE_WINDOW_ENV, "inf")],
)
def test_malformed_limit_settings_are_named(http_mirror, monkeypatch, tmp_path, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError) as info:
        download(RemoteFile(ESCONV_TRAIN), str(tmp_path / "t"))
    assert f"{var}={value!r}" in str(info.value)
    assert http_mirror.requests == []


def test_limits_defaults_and_settings(monkeypatch):
    """Unset: one hour per file, 1 KiB/s over 30 s; each variable overrides its own limit."""
    limits = mirror_mod.TransferLimits.from_env()
    assert (limits.deadline, limits.min_rate, limits.window) == (3600.0, 1024.0, 30.0)
    monkeypatch.setenv(DEADLINE_ENV, "90")
    monkeypatch.setenv(MIN_RATE_ENV, "0")  # no minimum
    assert mirror_mod.TransferLimits.from_env() == mirror_mod.TransferLimits(90.0, 0.0, 30.0)


# ---------------------------------------------------------------------------------------
# The manifest: a built folder is kept only while its files are what was built
# ---------------------------------------------------------------------------------------


def _manifest(dpath):
    import json

    with open(os.path.join(dpath, MANIFEST)) as f:
        return json.load(f)


def _counting_writer(text, calls):
    def populate(folder):
        calls.append(folder)
        _writer(text)(folder)

    return populate


def test_build_records_every_file(tmp_path):
    plain = str(tmp_path / "plain")  # not asked to: as before, no manifest
    build_once(plain, "1", _writer("abc"))
    assert sorted(os.listdir(plain)) == [".built", "data.txt"]
    dpath = str(tmp_path / "ds")
    build_once(dpath, "1", _writer("abc"), record_files=True)
    files = _manifest(dpath)["files"]
    assert list(files) == ["data.txt"]
    assert files["data.txt"]["size"] == 3
    assert files["data.txt"]["sha256"] == hashlib.sha256(b"abc").hexdigest()
    assert mirror_mod.check_manifest(dpath) == ("intact", None)


@pytest.mark.parametrize(
    "damage", ["truncate", "same-size", "delete"],
)
def test_changed_built_file_is_rebuilt(tmp_path, damage):
    """A file that no longer matches its record (size, bytes, or gone) makes the folder be
    rebuilt instead of trusted because of its .built marker."""
    dpath = str(tmp_path / "ds")
    calls = []
    build_once(dpath, "1", _counting_writer("line one\nline two\n", calls), record_files=True)
    data = os.path.join(dpath, "data.txt")
    if damage == "truncate":  # cut at a line break
        with open(data, "w") as f:
            f.write("line one\n")
    elif damage == "same-size":
        with open(data, "w") as f:
            f.write("line one\nline TWO\n")
        os.utime(data, ns=(1, 1))
    else:
        os.remove(data)
    assert build_once(dpath, "1", _counting_writer("line one\nline two\n", calls),
                      record_files=True) is True
    assert len(calls) == 2
    assert read_text(data) == "line one\nline two\n"
    assert mirror_mod.check_manifest(dpath) == ("intact", None)
    assert dot_folders(str(tmp_path)) == []


def test_touched_but_unchanged_file_is_kept(tmp_path):
    """A new modification time alone costs one hash, not a rebuild; the time is recorded."""
    dpath = str(tmp_path / "ds")
    build_once(dpath, "1", _writer("same"), record_files=True)
    data = os.path.join(dpath, "data.txt")
    os.utime(data, ns=(10**18, 10**18))
    assert build_once(dpath, "1", lambda folder: pytest.fail("rebuilt"), record_files=True) is False
    assert _manifest(dpath)["files"]["data.txt"]["mtime_ns"] == 10**18


def test_unreadable_manifest_means_rebuild(tmp_path):
    dpath = str(tmp_path / "ds")
    build_once(dpath, "1", _writer("x"), record_files=True)
    with open(os.path.join(dpath, MANIFEST), "w") as f:
        f.write("{not json")
    state, why = mirror_mod.check_manifest(dpath)
    assert state == "changed" and MANIFEST in why
    calls = []
    assert build_once(dpath, "1", _counting_writer("x", calls), record_files=True) is True
    assert len(calls) == 1


def _unrecorded_build(dpath, text):
    """A folder marked built the way ParlAI (or this package before manifests) left it."""
    from parlai.core import build_data

    os.makedirs(dpath)
    _writer(text)(dpath)
    build_data.mark_done(dpath, version_string="1")


def test_unrecorded_build_vetted(tmp_path):
    """Without a manifest, ``vet_unrecorded`` decides: keep (and record) or rebuild."""
    keep = str(tmp_path / "keep")
    _unrecorded_build(keep, "known")
    assert build_once(keep, "1", lambda f: pytest.fail("rebuilt"), record_files=True,
                      vet_unrecorded=lambda d: None) is False
    assert list(_manifest(keep)["files"]) == ["data.txt"]

    redo = str(tmp_path / "redo")
    _unrecorded_build(redo, "unknown")
    vetted = []
    vet = lambda d: vetted.append(d) or "data.txt is not a known copy"  # noqa: E731
    assert build_once(redo, "1", _writer("fresh"), record_files=True, vet_unrecorded=vet) is True
    assert vetted == [redo] and read_text(os.path.join(redo, "data.txt")) == "fresh"
    assert mirror_mod.check_manifest(redo) == ("intact", None)

    plain = str(tmp_path / "plain")  # no vetting: kept as before, and recorded from now on
    _unrecorded_build(plain, "old")
    assert build_once(plain, "1", lambda f: pytest.fail("rebuilt"), record_files=True) is False
    assert mirror_mod.check_manifest(plain) == ("intact", None)
    assert dot_folders(str(tmp_path)) == []


# ---------------------------------------------------------------------------------------
# Killed during a build: no staging folder survives
# ---------------------------------------------------------------------------------------

# Ctrl-C raises KeyboardInterrupt in the child even when pytest itself was started in the
# background by a non-interactive shell, which starts it with SIGINT ignored (inherited, and
# Python then installs no handler): a terminal's Ctrl-C is what the test stands for.
_BUILD_ESCONV = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from parlai_empathy.data import esconv; esconv.build({'datapath': sys.argv[1]})"
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_slow_download_leaves_no_staging(server, tmp_path, signum):
    """A build killed (SIGTERM) or interrupted (Ctrl-C) in the middle of a download removes
    its staging folder and ends by that signal, as it would have without a build."""
    server.misbehave(ESCONV_TRAIN, "trickle")
    server.trickle_limit = 60.0
    datapath = tmp_path / "data"
    datapath.mkdir()
    env = dict(os.environ, **{MIRROR_ENV: server.base, "no_proxy": "127.0.0.1", "NO_PROXY": "127.0.0.1"})
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env[var] = "http://127.0.0.1:9"  # the public URL, if ever tried, stays on loopback
    for var in (TRUST_ENV, DEADLINE_ENV, MIN_RATE_ENV, RATE_WINDOW_ENV):
        env.pop(var, None)
    proc = subprocess.Popen(
        [sys.executable, "-c", _BUILD_ESCONV, str(datapath)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (server.trickled >= 5 and dot_folders(str(datapath))):
            assert proc.poll() is None, proc.communicate()[0].decode()
            assert time.monotonic() < deadline, "the build never started downloading"
            time.sleep(0.05)
        assert [d for d in dot_folders(str(datapath)) if d.startswith(".esconv.building-")]
        proc.send_signal(signum)
        try:
            output = proc.communicate(timeout=30)[0].decode()
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("the build did not end within 30 s of the signal; its output:\n"
                        + proc.communicate()[0].decode())
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signum, output
    assert dot_folders(str(datapath)) == [], output
    assert leftovers(str(datapath)) == []
    assert not (datapath / "esconv").exists()
