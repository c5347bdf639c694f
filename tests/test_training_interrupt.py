"""Ctrl-C during ``parlai train_model`` of our agents (parlai_empathy.training)."""
import glob
import json
import os
import signal
import time

import pytest
import torch

from parlai_cli import PARLAI, read_until, run_parlai, spawn
from parlai_empathy import training


def _train_args(model_file, datapath):
    # ParlAI's synthetic integration_tests task: no data files needed
    return ["train_model", "-m", "empathy/tiny_generator", "-t", "integration_tests",
            "-mf", model_file, "--datapath", datapath, "-bs", 4, "--skip-generation", "true",
            "--log-every-n-steps", 2, "-vme", 8, "--short-final-eval", "true"]


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_that_resumes(tmp_path, datapath):
    model = str(tmp_path / "run" / "model")
    args = _train_args(model, datapath)
    with spawn([PARLAI, *args, "--max-train-steps", 100000]) as run:
        seen = bytearray()
        # two progress reports (every 2 updates): it is training
        read_until(run.stdout, seen, lambda s: s.count(b"total_train_updates") >= 2,
                    time.time() + 300)
        os.killpg(run.pid, signal.SIGINT)  # what the terminal sends on Ctrl-C
        rest, _ = run.communicate(timeout=300)
        out = (bytes(seen) + rest).decode(errors="replace")
    assert run.returncode == training.EXIT_INTERRUPTED, out
    assert "Traceback" not in out, out
    assert f"saved {model}.checkpoint and {model}. Run the same command again" in out, out
    stats = json.load(open(f"{model}.checkpoint.trainstats"))
    steps = stats["train_steps"]
    assert steps >= 4, stats
    assert f"Interrupted after {steps} updates" in out
    assert not glob.glob(f"{model}*partial*"), os.listdir(os.path.dirname(model))
    # MODEL (no validation had saved one) loads, with the checkpoint's weights
    from parlai.core.agents import create_agent_from_model_file

    weights = [
        create_agent_from_model_file(path, {"datapath": datapath}).model.state_dict()
        for path in (model, f"{model}.checkpoint")
    ]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])

    resumed = run_parlai([*args, "--max-train-steps", steps + 3]).stdout
    assert f"Loading existing model params from {model}.checkpoint" in resumed, resumed
    assert json.load(open(f"{model}.trainstats"))["train_steps"] == steps + 3


class _World:
    """One 'update' per parley; the test's Ctrl-C arrives in the middle of the first."""

    def __init__(self):
        self.started = self.finished = 0

    def parley(self):
        self.started += 1
        if self.started == 1:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs while the update is still going
        self.finished += 1


class _Loop:
    def __init__(self):
        self.world = _World()
        self.validations = 0

    def validate(self):
        self.validations += 1


def test_ctrl_c_during_an_update_takes_effect_after_it():
    loop, before = _Loop(), signal.getsignal(signal.SIGINT)
    with training._UpdateGuard(loop):
        loop.world.parley()  # interrupted inside, but completes
        assert (loop.world.started, loop.world.finished) == (1, 1)
        with pytest.raises(KeyboardInterrupt):
            loop.world.parley()  # the next update does not start
        with pytest.raises(KeyboardInterrupt):
            loop.validate()  # nor a validation
        assert (loop.world.started, loop.validations) == (1, 0)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C: at once
            time.sleep(1)
    assert "parley" not in vars(loop.world) and "validate" not in vars(loop)
    assert signal.getsignal(signal.SIGINT) is before


def test_ctrl_c_outside_an_update_stops_at_once():
    loop = _Loop()
    with training._UpdateGuard(loop):
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # e.g. while loading data or validating
            time.sleep(1)


class _SavingLoop:
    """``TrainLoop.save_model``'s files: weights, .opt, .dict and .trainstats."""

    def __init__(self, model_file, fail_after=None):
        self.opt = {"model_file": model_file}
        self.fail_after = fail_after

    def save_model(self, suffix):
        path = self.opt["model_file"] + suffix
        for n, extension in enumerate(("", ".opt", ".dict", ".trainstats")):
            if n == self.fail_after:
                raise OSError("disk full")
            with open(path + extension, "w") as f:
                f.write("new")


def test_checkpoint_files_are_replaced_whole_or_not_at_all(tmp_path):
    model = str(tmp_path / "model")
    files = [model + ".checkpoint" + e for e in ("", ".opt", ".dict", ".trainstats")]
    for path in files:
        with open(path, "w") as f:
            f.write("old")
    with pytest.raises(OSError, match="disk full"):
        training.save_atomically(_SavingLoop(model, fail_after=2), ".checkpoint")
    assert [open(p).read() for p in files] == ["old"] * 4
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in files)

    training.save_atomically(_SavingLoop(model), ".checkpoint")
    assert [open(p).read() for p in files] == ["new"] * 4
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in files)
