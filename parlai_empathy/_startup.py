"""Arm the compatibility fixes for every process that imports ParlAI.

``parlai_empathy.pth`` (installed in site-packages) imports this module at interpreter
start. It must stay cheap and must never break an unrelated program: it only registers an
import hook, and the hook applies :mod:`parlai_empathy.compat` right after the ``parlai``
package itself has been imported, before any ParlAI module that the fixes touch.
That covers the ``parlai`` command, ``python -m parlai``, library calls and the workers that
``multiprocessing_train`` spawns (they start a fresh interpreter, which reads the .pth too).
"""
import importlib.abc
import importlib.util
import sys

_TARGET = "parlai"


class _ApplyCompatAfterParlaiImport(importlib.abc.MetaPathFinder):
    """Meta-path finder that wraps the loader of ``parlai``; it leaves once ``parlai`` runs.

    It stays armed until the package is really executed, not merely looked up: ``python -m
    parlai`` (runpy) first calls ``find_spec("parlai")``, drops that spec and imports the
    package afresh, and a finder that left at the first lookup missed that import.
    """

    _searching = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != _TARGET or self._searching:
            return None
        self._searching = True  # our own lookup below must not come back here
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._searching = False
        if spec is None or spec.loader is None:
            return spec
        original_exec = spec.loader.exec_module

        def exec_then_apply(module):
            uninstall()
            original_exec(module)
            from parlai_empathy import compat

            compat.apply()

        spec.loader.exec_module = exec_then_apply
        return spec


_HOOK = _ApplyCompatAfterParlaiImport()


def uninstall():
    if _HOOK in sys.meta_path:
        sys.meta_path.remove(_HOOK)


def install():
    """Apply the fixes now if ParlAI is already imported, else when it is."""
    if _TARGET in sys.modules:
        from parlai_empathy import compat

        compat.apply()
    elif _HOOK not in sys.meta_path:
        sys.meta_path.insert(0, _HOOK)


try:
    install()
except Exception as exc:  # never break interpreter start-up
    sys.stderr.write(f"parlai_empathy: start-up hook not installed: {exc!r}\n")
