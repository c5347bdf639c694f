"""Run a Python module (``parlai``, ``parlai_empathy.zoo`` ...), script or ``-`` (a program on
standard input) with the device's package folder as a site directory.

``pip install --target DIR`` plus ``PYTHONPATH=DIR`` puts the packages on the path, but
Python reads ``.pth`` files only in site directories, so ``parlai_empathy.pth`` (which arms
ParlAI's compatibility fixes at start-up) would be skipped. ``site.addsitedir`` reads it.

    DEVICE_SITE=/tmp/site PYTHONPATH=/tmp/site python3 scripts/device/site_run.py parlai train_model ...
"""
import os
import runpy
import site
import sys

site_dir = os.environ.get("DEVICE_SITE", "/tmp/site")
if not os.path.isfile(os.path.join(site_dir, "parlai_empathy.pth")):
    sys.exit(f"site_run: {site_dir}/parlai_empathy.pth is missing: install the bundle's "
             "wheels there first (pip install --no-index --no-deps --target ...)")
site.addsitedir(site_dir)
if len(sys.argv) < 2:
    sys.exit("usage: site_run.py MODULE [ARGS...]")
module = sys.argv[1]
sys.argv = [module] + sys.argv[2:]
if module == "-":  # a program on standard input, as `python - ARGS <<EOF`
    exec(compile(sys.stdin.read(), "<stdin>", "exec"), {"__name__": "__main__"})
elif module.endswith(".py"):
    runpy.run_path(module, run_name="__main__")
else:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
