"""Run commands in subprocesses that never outlive the test.

Every command starts in a session (and process group) of its own; when it ends, times out or
the test fails, the whole group is killed, so no worker it spawned (``multiprocessing_train``'s
ranks, a server) is left running. :func:`run_parlai` runs the real ``parlai`` command (the
console script of this environment); :func:`run_command` any other; :func:`spawn` keeps one
running while the test talks to it.
"""
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

PARLAI = os.path.join(os.path.dirname(sys.executable), "parlai")


def kill_group(process: subprocess.Popen, sig=signal.SIGKILL):
    """Send ``sig`` to ``process``'s whole group (it leads one: ``start_new_session``)."""
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already


def run_command(argv, *, env=None, stdin=None, timeout=600, cwd=None, merge_stderr=True,
                replace_env=False):
    """Run ``argv`` like :func:`subprocess.run` (text, output captured) in its own group.

    ``env`` adds to (and overrides) this process's environment, or with ``replace_env`` is
    the whole environment. The command's end is its own exit, not the end of its output (a
    worker it left behind may hold the pipe open): then, or on a timeout, the whole group is
    killed, and a timeout raises ``subprocess.TimeoutExpired`` with what it had printed.
    """
    full_env = dict(env or {}) if replace_env else {**os.environ, **(env or {})}
    argv = [str(a) for a in argv]
    process = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        text=True,
        env=full_env,
        cwd=cwd,
        start_new_session=True,
    )
    out, err = [], []
    threads = [threading.Thread(target=_drain, args=(process.stdout, out), daemon=True)]
    if not merge_stderr:
        threads.append(threading.Thread(target=_drain, args=(process.stderr, err), daemon=True))
    if stdin is not None:
        threads.append(threading.Thread(target=_feed, args=(process.stdin, stdin), daemon=True))
    for thread in threads:
        thread.start()
    timed_out = False
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        kill_group(process)  # on a timeout, a failure, or what a finished command left
        process.wait()
        for thread in threads:
            thread.join(timeout=30)
    stdout, stderr = "".join(out), ("".join(err) if not merge_stderr else None)
    if timed_out:
        raise subprocess.TimeoutExpired(argv, timeout, output=stdout, stderr=stderr)
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def _drain(stream, chunks):
    for data in iter(lambda: stream.read(1 << 16), ""):
        chunks.append(data)
    stream.close()


def _feed(stream, text):
    try:
        stream.write(text)
        stream.close()
    except (BrokenPipeError, OSError):
        pass  # the command stopped reading; its exit status tells


def run_parlai(args, *, env=None, stdin=None, timeout=600, check=True, command=None, cwd=None):
    """Run ``parlai ARGS`` and return the CompletedProcess (stdout and stderr merged).

    ``command`` replaces the ``parlai`` executable (e.g. ``[sys.executable, '-m', 'parlai']``).
    """
    argv = list(command or [PARLAI]) + [str(a) for a in args]
    proc = run_command(argv, env=env, stdin=stdin, timeout=timeout, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout[-6000:]}"
        )
    return proc


@contextlib.contextmanager
def spawn(argv, *, env=None, cwd=None, stdout=None, **popen_kwargs):
    """A running ``argv`` (its own group) for the ``with`` block; the group is killed when
    the block is left, whether it ends normally, fails or times out."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    process = subprocess.Popen(
        [str(a) for a in argv],
        env=full_env,
        cwd=cwd,
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        **popen_kwargs,
    )
    try:
        yield process
    finally:
        kill_group(process)
        process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


def read_until(stream, seen: bytearray, done, deadline: float):
    """Read a process's ``stream`` into ``seen`` until ``done(seen)``; fail, showing what was
    read, at ``deadline`` (``time.time()``) or when the output ends."""
    while not done(seen):
        if time.time() > deadline:
            raise AssertionError(f"timed out:\n{seen.decode(errors='replace')}")
        chunk = os.read(stream.fileno(), 4096)
        if not chunk:
            raise AssertionError(f"output ended:\n{seen.decode(errors='replace')}")
        seen += chunk
