"""Loading a model file never runs code from it, and a broken one gets one error naming it.

Every ParlAI checkpoint we produce (zoo releases, training checkpoints with their optimizer
and scheduler states, resumed runs) loads with torch's weights-only unpickler; a pickle that
names anything else is refused unless the user opts in (PARLAI_EMPATHY_TRUST_MODEL_FILES=1).
"""
import contextlib
import json
import os
import pickle
import random
import shlex

import pytest
import torch

import parlai.utils.pickle
from parlai_cli import run_parlai
from parlai_empathy import zoo

TRUST_ENV = "PARLAI_EMPATHY_TRUST_MODEL_FILES"
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class _TouchOnLoad:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, ("touch " + shlex.quote(self.marker),))


SYSTEM_GLOBAL = f"{os.system.__module__}.system"  # how the pickle names os.system


def _parlai_load(path):
    """What ``TorchAgent.load`` runs on a model file."""
    with open(path, "rb") as f:
        return torch.load(f, map_location=lambda cpu, _: cpu, pickle_module=parlai.utils.pickle)


@pytest.fixture(autouse=True)
def untrusted(monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)


@pytest.fixture(scope="module")
def tiny_release(tmp_path_factory):
    """The bundled tiny_generator_ed release, unpacked by the zoo."""
    from parlai.zoo.empathy.tiny_generator_ed import RELEASE

    return zoo.download(RELEASE, str(tmp_path_factory.mktemp("zoo_data")))


def _model_dir_with(tmp_path, tiny_release, states):
    """A model folder: the tiny release's .opt and .dict, ``states`` as its weights file."""
    folder = tmp_path / "hostile"
    folder.mkdir()
    for name in ("model.opt", "model.dict"):
        (folder / name).write_bytes(open(os.path.join(tiny_release, name), "rb").read())
    torch.save(states, folder / "model")
    return folder / "model"


def _hostile_states(tiny_release, marker):
    states = torch.load(os.path.join(tiny_release, "model"), weights_only=True)
    states["payload"] = _TouchOnLoad(marker)
    return states


# --- hostile files ---------------------------------------------------------------------------


@pytest.mark.slow
def test_eval_model_refuses_a_model_file_that_would_run_code(tiny_release, tmp_path):
    marker = tmp_path / "MARKER"
    model_file = _model_dir_with(tmp_path, tiny_release, _hostile_states(tiny_release, marker))
    args = ["eval_model", "-mf", model_file, "-t", "integration_tests", "--num-examples", 2,
            "--datapath", tmp_path / "data"]

    refused = run_parlai(args, env=ONE_THREAD, check=False)
    assert refused.returncode != 0
    assert not marker.exists(), "the model file's pickle ran"
    last_line = refused.stdout.strip().splitlines()[-1]
    assert "UnsafeModelFileError" in last_line
    assert str(model_file) in last_line and SYSTEM_GLOBAL in last_line
    assert TRUST_ENV in last_line

    # the user's explicit opt-in restores ParlAI's full unpickler for a file they trust
    trusted = run_parlai(args, env={**ONE_THREAD, TRUST_ENV: "1"})
    assert marker.exists()
    assert "exs" in trusted.stdout


@pytest.mark.parametrize("file_format", ["torch zip", "torch legacy", "plain pickle"])
def test_loader_refuses_a_global_outside_the_allow_list(file_format, tmp_path, monkeypatch):
    from parlai_empathy.safe_load import (
        ModelFileError,
        UnsafeModelFileError,
        trusted_model_files,
    )

    marker = tmp_path / "MARKER"
    path = tmp_path / "model"
    states = {"number_training_updates": 7, "payload": _TouchOnLoad(marker)}
    if file_format == "plain pickle":
        path.write_bytes(pickle.dumps(states, protocol=2))
    else:
        torch.save(states, path, _use_new_zipfile_serialization=file_format == "torch zip")

    with pytest.raises(UnsafeModelFileError) as refused:
        _parlai_load(path)
    assert not marker.exists()
    assert str(path) in str(refused.value) and SYSTEM_GLOBAL in str(refused.value)
    assert refused.value.global_name == SYSTEM_GLOBAL

    # trusted, the file is unpickled as ParlAI 1.7.2 does (and its code runs)
    with trusted_model_files():
        if file_format == "plain pickle":  # not a torch checkpoint, caught after unpickling
            with pytest.raises(ModelFileError, match="Invalid magic number"):
                _parlai_load(path)
        else:
            assert _parlai_load(path)["number_training_updates"] == 7
    assert marker.exists()
    marker.unlink()
    monkeypatch.setenv(TRUST_ENV, "1")
    with contextlib.suppress(ModelFileError):
        _parlai_load(path)
    assert marker.exists()


def test_zoo_pack_refuses_a_model_file_that_would_run_code(tiny_release, tmp_path):
    from parlai_empathy.safe_load import UnsafeModelFileError

    marker = tmp_path / "MARKER"
    model_file = _model_dir_with(tmp_path, tiny_release, _hostile_states(tiny_release, marker))
    with pytest.raises(UnsafeModelFileError, match=SYSTEM_GLOBAL):
        zoo.pack(str(model_file), "x", "v1", str(tmp_path / "out"))
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_a_pickled_opt_file_may_hold_plain_data_only(tmp_path):
    from parlai.core.opt import Opt
    from parlai_empathy.safe_load import UnsafeModelFileError

    marker = tmp_path / "MARKER"
    hostile = tmp_path / "hostile.opt"
    hostile.write_bytes(pickle.dumps({"model": "x", "payload": _TouchOnLoad(marker)}, 2))
    with pytest.raises(UnsafeModelFileError) as refused:
        Opt.load(str(hostile))
    assert not marker.exists()
    assert str(hostile) in str(refused.value) and SYSTEM_GLOBAL in str(refused.value)
    # very old ParlAI pickled its opt dicts: those still load
    legacy = tmp_path / "legacy.opt"
    legacy.write_bytes(pickle.dumps({"model": "x", "batchsize": 2, "datapath": "/d"}, 2))
    assert Opt.load(str(legacy)) == {"model": "x", "batchsize": 2}


def test_trust_setting_accepts_only_yes_or_no(monkeypatch):
    from parlai_empathy import safe_load

    for value, expected in (("1", True), ("true", True), ("0", False), ("", False)):
        monkeypatch.setenv(TRUST_ENV, value)
        assert safe_load.trusted() is expected
    monkeypatch.setenv(TRUST_ENV, "maybe")
    with pytest.raises(ValueError, match=f"{TRUST_ENV}='maybe'"):
        safe_load.trusted()


# --- every checkpoint we produce loads weights-only -------------------------------------------


class _FullUnpicklerUsed(AssertionError):
    pass


@pytest.fixture
def weights_only_loads(monkeypatch):
    """Fails any load through ParlAI's full unpickler; yields the files ParlAI loaded."""

    class Forbidden:
        def __init__(self, *args, **kwargs):
            raise _FullUnpicklerUsed("a model file was loaded with ParlAI's full unpickler")

    monkeypatch.setattr(parlai.utils.pickle, "Unpickler", Forbidden)
    loaded = []
    installed_load = torch.load

    def spy(f, *args, **kwargs):
        if kwargs.get("pickle_module") is parlai.utils.pickle:
            loaded.append(os.path.basename(getattr(f, "name", str(f))))
        return installed_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    return loaded


def _assert_same(safe, full, where="states"):
    assert type(safe) is type(full), where
    if isinstance(full, dict):
        assert list(safe) == list(full), where
        for key in full:
            _assert_same(safe[key], full[key], f"{where}[{key!r}]")
    elif isinstance(full, (list, tuple)):
        assert len(safe) == len(full), where
        for i, (a, b) in enumerate(zip(safe, full)):
            _assert_same(a, b, f"{where}[{i}]")
    elif isinstance(full, torch.Tensor):
        assert safe.dtype == full.dtype and torch.equal(safe, full), where
    else:
        assert safe == full, where


def _assert_loads_weights_only(path):
    safe = _parlai_load(path)
    full = torch.load(path, map_location="cpu", weights_only=False)
    _assert_same(safe, full)
    return safe


@pytest.mark.parametrize("zoo_module", ["tiny_generator_ed", "moel_ed"])
def test_zoo_releases_load_weights_only(zoo_module, datapath, weights_only_loads):
    import importlib

    release = importlib.import_module(f"parlai.zoo.empathy.{zoo_module}").RELEASE
    folder = zoo.download(release, datapath)
    states = _assert_loads_weights_only(os.path.join(folder, "model"))
    assert states["model"], "no weights"
    assert weights_only_loads == ["model"]


_HANDFUL = [
    ("I finally got the job I wanted!", "Congratulations, you earned it.", "proud"),
    ("My dog died last week.", "I am so sorry for your loss.", "sad"),
    ("I heard a noise downstairs at night.", "That sounds scary, were you alone?", "afraid"),
    ("We are going to the beach tomorrow.", "How fun, enjoy the sun!", "excited"),
]

_TRAINING = {
    # ParlAI's own lr schedule and adam states (the generator's defaults)
    "tiny_generator": dict(model="empathy/tiny_generator", task="integration_tests",
                           embedding_size=16, ffn_size=16),
    # MoEL's invsqrt schedule: numpy float64 scalars in the scheduler state
    "moel": dict(model="empathy/moel", task="fromfile:parlaiformat", embedding_size=16,
                 hidden_size=16, key_depth=8, value_depth=8, filter_size=16,
                 embedding_file="none"),
}


@pytest.mark.parametrize("model", sorted(_TRAINING))
def test_training_checkpoints_and_resumed_runs_load_weights_only(model, tmp_path,
                                                                weights_only_loads):
    from parlai.scripts.train_model import TrainModel

    data = tmp_path / "handful.txt"
    data.write_text("".join(
        f"text:{text}\tlabels:{label}\temotion:{emotion}\tepisode_done:True\n"
        for text, label, emotion in _HANDFUL
    ))
    model_file = str(tmp_path / "model")
    options = dict(_TRAINING[model])
    if options["task"].startswith("fromfile"):
        options["fromfile_datapath"] = str(data)
    options.update(
        model_file=model_file, datapath=str(tmp_path / "data"), batchsize=2,
        validation_every_n_steps=2, validation_max_exs=4, validation_metric="ppl", validation_metric_mode="min",
        save_every_n_secs=0.01, skip_generation=True, short_final_eval=True,
    )
    TrainModel.main(**options, max_train_steps=4)
    assert os.path.isfile(model_file + ".checkpoint")
    first = {name: _assert_loads_weights_only(model_file + name) for name in ("", ".checkpoint")}
    for states in first.values():
        assert states["optimizer"]["state"], "no optimizer state saved"
        assert 0 < states["number_training_updates"] <= 4
    if model == "moel":  # the allow-list at work
        assert type(first[".checkpoint"]["lr_scheduler"]["_last_lr"][0]).__module__ == "numpy"

    del weights_only_loads[:]
    TrainModel.main(**options, max_train_steps=6)  # resumes from model.checkpoint
    assert "model.checkpoint" in weights_only_loads
    assert json.load(open(model_file + ".trainstats"))["train_steps"] == 6
    resumed = {name: _assert_loads_weights_only(model_file + name) for name in ("", ".checkpoint")}
    for states in resumed.values():
        assert states["optimizer"]["state"]
    assert (resumed[".checkpoint"]["number_training_updates"]
            > first[".checkpoint"]["number_training_updates"])


def test_allow_list_applies_to_parlai_loads_only(tmp_path, weights_only_loads):
    """The numpy scalars ParlAI's invsqrt schedule saves are allowed (weights-only) for
    ParlAI's loads only, and the process's own torch allow-list is left as it was."""
    import numpy

    path = tmp_path / "ckpt"
    torch.save({"lr_scheduler": {"_last_lr": [numpy.sqrt(2.0)]}}, path)
    before = set(torch.serialization.get_safe_globals())
    assert _parlai_load(path)["lr_scheduler"]["_last_lr"] == [numpy.sqrt(2.0)]
    assert weights_only_loads == ["ckpt"]
    assert set(torch.serialization.get_safe_globals()) == before
    with pytest.raises(pickle.UnpicklingError, match="numpy"):
        torch.load(path)
    # a global the user allowed themselves stays allowed after a ParlAI load
    with torch.serialization.safe_globals([numpy.dtype]):
        _parlai_load(path)
        assert numpy.dtype in torch.serialization.get_safe_globals()


# --- unreadable files -----------------------------------------------------------------------


def _truncated(release_model):
    data = open(release_model, "rb").read()
    return data[: len(data) // 2]


@pytest.mark.parametrize("damage", ["truncated", "random bytes", "empty"])
def test_an_unreadable_model_file_gets_one_error_naming_it(damage, tiny_release, tmp_path):
    from parlai_empathy.safe_load import ModelFileError

    path = tmp_path / "model"
    path.write_bytes({
        "truncated": lambda: _truncated(os.path.join(tiny_release, "model")),
        "random bytes": lambda: random.Random(0).randbytes(4096),
        "empty": lambda: b"",
    }[damage]())
    with pytest.raises(Exception) as caught:
        _parlai_load(path)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, ModelFileError)
    assert caught.value.__suppress_context__  # one error, not a chain of tracebacks


def test_an_opt_file_with_invalid_json_gets_an_error_naming_it(tmp_path):
    from parlai.core.opt import Opt
    from parlai_empathy.safe_load import ModelFileError

    path = tmp_path / "model.opt"
    path.write_text('{\n    "model": "empathy/moel",\n    "batchsize": \n}\n')
    with pytest.raises(Exception) as caught:
        Opt.load(str(path))
    assert str(path) in str(caught.value) and "line 4, column 1" in str(caught.value)
    assert isinstance(caught.value, ModelFileError)
    path.write_text("[1, 2]\n")
    with pytest.raises(ModelFileError, match="holds a list, not an object of options"):
        Opt.load(str(path))


@pytest.mark.parametrize("damage", ["truncated model", "invalid .opt"])
def test_loading_a_broken_model_names_the_file(damage, tiny_release, tmp_path):
    """What ``parlai eval_model -mf`` does first: parse the model's .opt, build the agent."""
    from parlai.core.agents import create_agent
    from parlai.core.params import ParlaiParser
    from parlai_empathy.safe_load import ModelFileError

    folder = tmp_path / "broken"
    folder.mkdir()
    for name in ("model", "model.opt", "model.dict"):
        (folder / name).write_bytes(open(os.path.join(tiny_release, name), "rb").read())
    if damage == "truncated model":
        broken = folder / "model"
        broken.write_bytes(_truncated(os.path.join(tiny_release, "model")))
    else:
        broken = folder / "model.opt"
        broken.write_text(broken.read_text()[:-40])
    with pytest.raises(Exception) as caught:
        opt = ParlaiParser(True, True).parse_args(
            ["-mf", str(folder / "model"), "--datapath", str(tmp_path / "data")]
        )
        create_agent(opt)
    assert str(caught.value).startswith(f"{broken}: ")
    assert isinstance(caught.value, ModelFileError)
    assert caught.value.__suppress_context__


@pytest.mark.parametrize("writer_module", ["numpy.core", "numpy._core"])
def test_scheduler_scalars_load_whichever_numpy_wrote_them(writer_module, tmp_path):
    """numpy 1 pickles a float64 as numpy.core.multiarray.scalar, numpy 2 as
    numpy._core.multiarray.scalar: a checkpoint written by either generation (a resume point
    made here and continued on the GPU machine's numpy 2, or the way back) loads weights-only."""
    import numpy

    path = tmp_path / "model"
    states = {"lr_scheduler": {"last_lr": numpy.float64(0.00125)}, "number_training_updates": 3}
    torch.save(states, path, _use_new_zipfile_serialization=False)  # names stay plain bytes
    data = path.read_bytes()
    written = [m for m in (b"numpy._core", b"numpy.core") if m + b".multiarray\nscalar" in data]
    assert len(written) == 1, "the pickle names the scalar function once, by one module"
    data = data.replace(written[0] + b".multiarray\nscalar",
                        writer_module.encode() + b".multiarray\nscalar")
    path.write_bytes(data)

    loaded = _parlai_load(path)
    assert loaded["lr_scheduler"]["last_lr"] == 0.00125
    assert isinstance(loaded["lr_scheduler"]["last_lr"], numpy.float64)
