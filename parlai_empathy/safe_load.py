"""Load ParlAI model files without running code from them.

ParlAI reads its checkpoints back with ``torch.load(f, pickle_module=parlai.utils.pickle)``,
a full unpickler: a model file whose pickle names ``os.system`` (or any other callable) runs
it on load. Here a ParlAI checkpoint is read with torch's weights-only unpickler instead,
which rebuilds tensors and plain containers only, plus the exact extra globals that ParlAI
checkpoints hold (:func:`checkpoint_globals`). A file that names anything else is refused
with :class:`UnsafeModelFileError`, naming the file and the global. The ``.opt`` beside it is
JSON; ParlAI falls back to ``pickle.load`` for a binary one, which here may hold plain data
only (no global at all).

Files you trust (an old model holding other classes) load as before, with the full
unpickler, under ``PARLAI_EMPATHY_TRUST_MODEL_FILES=1`` or inside
:func:`trusted_model_files`.

A file that is not a readable checkpoint (truncated, empty, random bytes) or an ``.opt`` that
is not JSON raises :class:`ModelFileError`, naming the file, instead of torch's or json's
bare error.

The loaders here are installed over ``torch.load`` (ParlAI's calls only) and ``Opt.load`` by
:func:`parlai_empathy.compat.apply`; :func:`load_checkpoint` and :func:`read_opt_file` are the
same loaders for our own tools (``python -m parlai_empathy.zoo pack``).
"""
import contextlib
import json
import os
import pickle
import re
import struct

TRUST_ENV = "PARLAI_EMPATHY_TRUST_MODEL_FILES"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}
_trust_depth = 0
_warned_trusted = set()


class ModelFileError(ValueError):
    """A model file (a checkpoint or its ``.opt``) that cannot be loaded; names the file."""

    def __init__(self, path, message):
        super().__init__(f"{path}: {message}")
        self.path = path


class UnsafeModelFileError(ModelFileError):
    """A model file whose pickle names a global outside the allow-list: loading it could run
    code. ``global_name`` is the first one found."""

    def __init__(self, path, global_name):
        super().__init__(
            path,
            f"refused to load: its pickle names {global_name}, which a ParlAI model file never "
            "holds, and loading it could run code from the file. If you trust this file, "
            f"load it with {TRUST_ENV}=1 (the full unpickler of ParlAI 1.7.2).",
        )
        self.global_name = global_name


def trusted():
    """Whether model files are trusted: loaded with the full unpickler, as ParlAI does."""
    if _trust_depth:
        return True
    raw = os.environ.get(TRUST_ENV, "")
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"{TRUST_ENV}={raw!r}: expected 1 (trust the model files loaded: they may run code) "
        "or 0"
    )


@contextlib.contextmanager
def trusted_model_files():
    """Within this block, model files load with the full unpickler (only for files you trust)."""
    global _trust_depth
    _trust_depth += 1
    try:
        yield
    finally:
        _trust_depth -= 1


SCALAR_MODULES = ("numpy.core", "numpy._core")  # numpy 1's name, numpy 2's


def checkpoint_globals():
    """The globals, beyond torch's weights-only defaults, that ParlAI checkpoints hold.

    ParlAI's ``invsqrt`` learning-rate schedule computes with ``np.sqrt``, so the scheduler
    state of a trained model (MoEL's, for one) holds numpy float64 scalars: pickled as
    ``numpy.core.multiarray.scalar`` of a ``numpy.dtype``, whose state is set on an instance
    of the float64 dtype class. Model weights, optimizer and other scheduler states are
    tensors and plain containers, which torch accepts by default.

    numpy 2 renamed ``numpy.core`` to ``numpy._core``, and a pickle names the module of the
    numpy that wrote it: the scalar function is allowed under both names (torch looks the name
    up without importing it), so a checkpoint written under numpy 1 loads under numpy 2 (a
    resume point carried to a GPU machine) and one written under numpy 2 loads here.
    """
    import numpy

    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy 1
        from numpy.core.multiarray import scalar

    return [(scalar, f"{module}.multiarray.scalar") for module in SCALAR_MODULES] + [
        numpy.dtype, type(numpy.dtype(numpy.float64))]


def load_checkpoint(path, map_location="cpu"):
    """Read a ParlAI checkpoint as ParlAI does (``TorchAgent.load``), without running code."""
    import torch
    import parlai.utils.pickle

    with open(path, "rb") as f:
        return load_parlai_checkpoint(
            torch.load, f, map_location=map_location, pickle_module=parlai.utils.pickle
        )


def load_parlai_checkpoint(torch_load, f, *args, **kwargs):
    """``torch_load(f, *args, **kwargs)`` for a call made with ParlAI's ``pickle_module``.

    Untrusted (the default): weights-only, with :func:`checkpoint_globals` allowed for this
    call only. Trusted: ParlAI's own call, with ``weights_only=False``.
    """
    import torch

    path = _file_name(f)
    if trusted():
        if path not in _warned_trusted:
            _warned_trusted.add(path)
            from parlai.utils import logging

            logging.warning(f"{TRUST_ENV}: loading {path} with the full unpickler")
        try:
            return torch_load(f, *args, **dict(kwargs, weights_only=False))
        except Exception as exc:
            _raise_if_unreadable(path, exc)
            raise
    kwargs = {k: v for k, v in kwargs.items() if k != "pickle_module"}
    kwargs["weights_only"] = True
    try:
        with _allowing(torch, checkpoint_globals()):
            return torch_load(f, *args, **kwargs)
    except pickle.UnpicklingError as exc:
        refused = _refused_global(str(exc))
        if refused:
            raise UnsafeModelFileError(path, refused) from None
        _raise_if_unreadable(path, exc)
        raise
    except Exception as exc:
        _raise_if_unreadable(path, exc)
        raise


def read_opt_file(path):
    """The options dict of a ParlAI ``.opt`` file (JSON; very old ParlAI pickled a dict).

    Invalid JSON raises :class:`ModelFileError` with the line and column. A binary (pickled)
    file may hold plain data only, unless model files are trusted.
    """
    from parlai.utils.io import PathManager

    try:
        with PathManager.open(path, "r", encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError:
        options = _read_pickled_opt(path)
    else:
        try:
            options = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelFileError(
                path,
                f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); a "
                "ParlAI .opt file is the JSON object of options that ParlAI writes",
            ) from None
    if not isinstance(options, dict):
        raise ModelFileError(
            path, f"holds a {type(options).__name__}, not an object of options"
        )
    return options


def _read_pickled_opt(path):
    from parlai.utils.io import PathManager

    with PathManager.open(path, "rb") as f:
        try:
            if trusted():
                return pickle.load(f)
            return _PlainDataUnpickler(f, path).load()
        except UnsafeModelFileError:
            raise
        except Exception as exc:
            raise ModelFileError(
                path, f"neither JSON nor a pickled dict of options ({_one_line(exc)})"
            ) from None


class _PlainDataUnpickler(pickle.Unpickler):
    """Rebuilds str/number/list/dict only: every global (hence every call) is refused."""

    def __init__(self, f, path):
        super().__init__(f)
        self._path = path

    def find_class(self, module, name):
        raise UnsafeModelFileError(self._path, f"{module}.{name}")


@contextlib.contextmanager
def _allowing(torch, safe_globals):
    """Allow ``safe_globals`` for the weights-only unpickler in this block, leaving any the
    user allowed before in place afterwards."""
    already = set(torch.serialization.get_safe_globals())
    added = [g for g in safe_globals if g not in already]
    torch.serialization.add_safe_globals(added)
    try:
        yield
    finally:
        remaining = [g for g in torch.serialization.get_safe_globals() if g not in added]
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(remaining)


def _refused_global(message):
    """The global (or class) torch's weights-only unpickler refused, from its message."""
    found = re.search(r"GLOBAL (\S+?)\.?(?:\s|$)", message)
    if found:
        return found.group(1)
    found = re.search(r"but got <class '([^']+)'>", message)
    if found:
        return found.group(1)
    return None


def _raise_if_unreadable(path, exc):
    """Raise :class:`ModelFileError` for the errors of a file that is not a readable
    checkpoint: torch's zip reader failing, or an unpickler meeting bytes that are no pickle
    (on damaged files torch was seen raising, besides UnpicklingError and EOFError,
    IndexError, KeyError, UnicodeDecodeError, TypeError, struct.error and OSError)."""
    if isinstance(exc, RuntimeError) and (
        "PytorchStreamReader" in str(exc) or "Invalid magic number" in str(exc)
    ):
        reason = str(exc).split(". ")[0]
    elif isinstance(exc, EOFError):
        reason = "it ended before the checkpoint did"
        if isinstance(path, str) and os.path.isfile(path) and os.path.getsize(path) == 0:
            reason = "the file is empty"
    elif isinstance(exc, pickle.UnpicklingError):
        detail = re.search(r"WeightsUnpickler error:\s*(.*?)\s*(?:Check the documentation|$)",
                           str(exc), re.S)
        reason = "unpickling failed: " + _one_line(detail.group(1) if detail else exc)
    elif isinstance(exc, (IndexError, KeyError, ValueError, TypeError, struct.error)):
        reason = f"unpickling failed: {type(exc).__name__}: {_one_line(exc)}"
    elif isinstance(exc, OSError) and exc.filename is None:
        # torch's zip reader on some truncated files: "[Errno 22] Invalid argument"
        reason = f"reading failed: {_one_line(exc)}"
    else:
        return
    raise ModelFileError(
        path,
        f"not a readable model file ({reason}). It may be truncated or corrupt (copy or "
        "download it again), or not a ParlAI checkpoint at all.",
    ) from None


def _file_name(f):
    name = f if isinstance(f, (str, bytes, os.PathLike)) else getattr(f, "name", None)
    if isinstance(name, (str, bytes, os.PathLike)):
        return os.fsdecode(name)
    return "<checkpoint from a file object>"


def _one_line(exc):
    return " ".join(str(exc).split()) or type(exc).__name__
