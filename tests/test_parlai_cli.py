"""tests/parlai_cli.py: a command's whole process group dies with it (no orphaned workers)."""
import os
import subprocess
import sys
import time

import pytest

from parlai_cli import run_command, run_parlai, spawn

# a command that starts a worker in its own group, writes the worker's pid, then waits
PARENT = (
    "import subprocess, sys, time\n"
    "worker = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
    "open(sys.argv[1], 'w').write(str(worker.pid))\n"
    "time.sleep(float(sys.argv[2]))\n"
    "sys.exit(int(sys.argv[3]))\n"
)


def _alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by init, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _worker(pid_file) -> int:
    deadline = time.time() + 60
    while not (os.path.exists(pid_file) and open(pid_file).read()):
        assert time.time() < deadline, "the command never started its worker"
        time.sleep(0.05)
    return int(open(pid_file).read())


def _gone(pid: int) -> bool:
    deadline = time.time() + 10
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def test_a_timed_out_command_takes_its_workers_along(tmp_path):
    pid_file = str(tmp_path / "worker.pid")
    with pytest.raises(subprocess.TimeoutExpired):
        run_parlai([PARENT, pid_file, 120, 0], command=[sys.executable, "-c"], timeout=5)
    assert _gone(_worker(pid_file))


def test_a_failed_command_leaves_no_worker_behind(tmp_path):
    pid_file = str(tmp_path / "worker.pid")
    with pytest.raises(AssertionError, match="exited 3"):
        run_parlai([PARENT, pid_file, 0, 3], command=[sys.executable, "-c"], timeout=60)
    assert _gone(_worker(pid_file))


def test_run_command_returns_like_subprocess_run(tmp_path):
    proc = run_command([sys.executable, "-c", "import sys; print('out'); "
                        "print('err', file=sys.stderr); sys.exit(2)"], merge_stderr=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "out\n", "err\n")


def test_spawn_kills_the_group_when_the_block_fails(tmp_path):
    pid_file = str(tmp_path / "worker.pid")
    with pytest.raises(RuntimeError, match="test failed"):
        with spawn([sys.executable, "-c", PARENT, pid_file, 120, 0]):
            _worker(pid_file)
            raise RuntimeError("test failed")
    assert _gone(_worker(pid_file))
