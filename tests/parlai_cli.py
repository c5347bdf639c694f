"""Run the real ``parlai`` command (the console script of this environment) in a subprocess."""
import os
import subprocess
import sys

PARLAI = os.path.join(os.path.dirname(sys.executable), "parlai")


def run_parlai(args, *, env=None, stdin=None, timeout=600, check=True, command=None):
    """Run ``parlai ARGS`` and return the CompletedProcess (stdout and stderr merged).

    ``command`` replaces the ``parlai`` executable (e.g. ``[sys.executable, '-m', 'parlai']``).
    """
    full_env = dict(os.environ)
    full_env.update(env or {})
    argv = list(command or [PARLAI]) + [str(a) for a in args]
    proc = subprocess.run(
        argv,
        input=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=full_env,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout[-6000:]}"
        )
    return proc
