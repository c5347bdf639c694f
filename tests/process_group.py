"""Run a command that starts worker processes, and fail fast with every process's stack.

``parlai multiprocessing_train`` spawns its other ranks; if a rank hangs, a plain
``subprocess.run(timeout=...)`` kills only the launcher and then waits for the workers to
close the output pipe, so a hang used to last as long as pytest's own timeout. Here the
command runs in its own session with its output in a file; on timeout every process of the
session is dumped (``py-spy dump --native`` when py-spy is installed, and always Python's
``faulthandler``: the command runs with ``PYTHONFAULTHANDLER=1`` and gets SIGABRT, so each
Python process prints all its threads' tracebacks), then the whole group is killed.
"""
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

PY_SPY = shutil.which("py-spy", path=os.path.dirname(sys.executable) + os.pathsep
                      + os.environ.get("PATH", ""))


def group_members(pgid):
    """Process ids whose process group is ``pgid`` (from /proc)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses
        fields = stat.rsplit(")", 1)[-1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":  # zombies have no stack left
            members.append(int(entry))
    return sorted(members)


def _command_line(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:300]
    except OSError:
        return "?"


def _py_spy(pid):
    if not PY_SPY:
        return "(py-spy not installed: `pip install py-spy` adds native frames here)"
    try:
        proc = subprocess.run([PY_SPY, "dump", "--native", "--pid", str(pid)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=30)
        return proc.stdout.strip()
    except subprocess.TimeoutExpired:
        return "(py-spy dump timed out)"


def _no_core_files():
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_group(argv, *, timeout, exit_after=None, env=None, check=True):
    """Run ``argv`` (stdout and stderr merged) in its own process group; return
    ``(returncode, output)``.

    It fails (AssertionError with the output's tail and, when it hung, every process's
    stacks) when it runs past ``timeout`` seconds, when ``exit_after = (regex, seconds)`` and
    it is still running that long after its output first matched ``regex`` (e.g. a final
    report: a hang while shutting down is caught in seconds, not at ``timeout``), or, with
    ``check``, when it exits non-zero. The group is always killed before returning, so no
    worker outlives the call."""
    full_env = {**os.environ, **(env or {}), "PYTHONFAULTHANDLER": "1"}
    argv = [str(a) for a in argv]
    pattern, grace = (re.compile(exit_after[0]), exit_after[1]) if exit_after else (None, None)
    with tempfile.NamedTemporaryFile(mode="w+", encoding="utf-8", errors="replace") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=full_env,
                                start_new_session=True, preexec_fn=_no_core_files)
        stacks, why = None, None
        try:
            deadline = time.monotonic() + timeout
            exit_deadline = None
            with open(log.name, encoding="utf-8", errors="replace") as reader:
                seen = ""
                while proc.poll() is None:
                    if pattern is not None and exit_deadline is None:
                        seen = (seen + reader.read())[-100_000:]
                        if pattern.search(seen):
                            exit_deadline = time.monotonic() + grace
                    now = time.monotonic()
                    if now > deadline or (exit_deadline is not None and now > exit_deadline):
                        why = (f"did not finish in {timeout} s" if now > deadline else
                               f"was still running {grace} s after printing {pattern.pattern!r}")
                        stacks = _dump_and_abort(proc.pid)
                        break
                    time.sleep(0.2)
        finally:
            _kill_group(proc)
        log.seek(0)
        output = log.read()
    if stacks is not None:
        tail = "\n".join(line for line in output.splitlines()
                         if not line.startswith("Extension modules:"))[-12000:]
        raise AssertionError(
            f"{' '.join(argv)} {why}; its processes' stacks:\n{stacks}\n"
            f"--- output tail (faulthandler tracebacks last) ---\n{tail}"
        )
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}:\n{output[-6000:]}")
    return proc.returncode, output


def _dump_and_abort(pgid):
    members = group_members(pgid)
    report = []
    for pid in members:
        # native frames of C++ templates can be thousands of characters long
        dump = "\n".join(line[:240] for line in _py_spy(pid).splitlines())
        report.append(f"=== pid {pid}: {_command_line(pid)}\n{dump[:8000]}")
    for pid in members:  # faulthandler prints each one's Python threads into the output
        try:
            os.kill(pid, signal.SIGABRT)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and group_members(pgid):
        time.sleep(0.2)
    return "\n".join(report) or "(no process left in the group)"


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
