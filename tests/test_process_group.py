"""The test helper that runs multi-process commands: a hang fails fast, with every stack."""
import sys
import time

import pytest

from process_group import run_group

# a parent that reports it is done, then waits for ever on a child that never ends
HANGS_AFTER_REPORT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time\\ndef stuck_child():\\n    time.sleep(600)\\nstuck_child()"])
print("REPORT | test:", flush=True)
def waiting_parent():
    child.wait()
waiting_parent()
"""


def test_a_hang_after_the_final_report_fails_in_seconds_with_every_stack():
    started = time.monotonic()
    with pytest.raises(AssertionError) as failure:
        run_group([sys.executable, "-c", HANGS_AFTER_REPORT], timeout=300,
                  exit_after=(r"REPORT \| test:", 2))
    assert time.monotonic() - started < 60
    message = str(failure.value)
    assert "was still running 2 s after printing" in message
    # both processes' Python stacks (faulthandler, and py-spy where installed)
    assert "waiting_parent" in message and "stuck_child" in message
    assert "Extension modules:" not in message


def test_the_whole_group_is_killed_when_the_leader_exits():
    code = ("import subprocess, sys\n"
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
            "print(p.pid, flush=True)\n")
    returncode, output = run_group([sys.executable, "-c", code], timeout=60)
    assert returncode == 0
    child = int(output.split()[-1])
    deadline = time.monotonic() + 10
    while running(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(child)


def running(pid):
    """Whether ``pid`` is a live process (not gone, not a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def test_a_failing_command_reports_its_output():
    with pytest.raises(AssertionError, match="exited 3:\n.*boom"):
        run_group([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], timeout=60)
