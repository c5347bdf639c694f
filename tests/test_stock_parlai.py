"""ParlAI's own stock agents run on this stack through our install (the compat fixes).

A tiny stock ``transformer/generator`` on ``integration_tests``: training with ParlAI's
default ``reduceonplateau`` scheduler (``ReduceLROnPlateau(verbose=...)``), a kill in the
middle of training, resume from the checkpoint (``torch.load`` of ParlAI's pickles),
evaluation, and a chat through ``parlai interactive`` fed from a pipe.
"""
import json
import os
import signal
import subprocess
import time

import pytest
import torch

from parlai_cli import PARLAI, run_parlai

TINY_STOCK = [
    "-m", "transformer/generator", "-t", "integration_tests",
    "--n-layers", 1, "--embedding-size", 16, "--ffn-size", 32, "--n-heads", 2,
    "--batchsize", 8, "--lr-scheduler", "reduceonplateau",
]


@pytest.fixture(scope="module")
def resumed_model(tmp_path_factory):
    """Train, SIGKILL once a checkpoint exists, then resume to a fixed step count.

    The resumed run does not validate, so ``MODEL`` is saved once, at its end: the evaluation
    and the chat get all ``steps_at_kill + 100`` updates, however fast the machine is. (It
    used to validate every 50 steps; ParlAI's default validation metric, ``accuracy``, stays
    at ~0 on this task, so ``MODEL`` kept the first validation's weights, ``max(50,
    steps_at_kill + 1)`` updates: 50 on a loaded machine, where so few-trained a model can
    end a reply at once (greedy search has no minimum length) and ``parlai interactive``
    prints nothing for an empty reply.)
    """
    root = tmp_path_factory.mktemp("stock")
    model_file = root / "model"
    common = [*TINY_STOCK, "-mf", model_file, "--datapath", root / "data"]
    first = subprocess.Popen(
        [PARLAI, "train_model", *map(str, common), "--max-train-steps", "1000000",
         "-vstep", "1000000", "--save-every-n-secs", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    checkpoint_stats = f"{model_file}.checkpoint.trainstats"
    try:
        deadline = time.time() + 240
        while not os.path.exists(checkpoint_stats):
            assert first.poll() is None, "training exited before writing a checkpoint"
            assert time.time() < deadline, "no checkpoint within 240 s"
            time.sleep(0.5)
        time.sleep(1.5)  # let it train on past the checkpoint, then crash it hard
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    steps_at_kill = json.load(open(checkpoint_stats))["train_steps"]
    assert steps_at_kill > 0
    target = steps_at_kill + 100
    log = run_parlai(
        ["train_model", *common, "--max-train-steps", target, "-vstep", "1000000",
         "--save-every-n-secs", 1]
    ).stdout
    return {"model_file": model_file, "log": log, "steps_at_kill": steps_at_kill,
            "target": target, "data": root / "data"}


def test_training_resumes_from_the_checkpoint_after_a_kill(resumed_model):
    model_file = resumed_model["model_file"]
    assert f"Loading existing model params from {model_file}.checkpoint" in resumed_model["log"]
    stats = json.load(open(f"{model_file}.trainstats"))
    # resumed: the step counter continued from the killed run instead of restarting at 0
    assert stats["train_steps"] == resumed_model["target"]
    assert stats["train_steps"] - resumed_model["steps_at_kill"] == 100


def test_the_model_file_holds_every_update_of_the_resumed_run(resumed_model):
    # what the evaluation and the chat below load: the trained model, not an early snapshot
    state = torch.load(resumed_model["model_file"], map_location="cpu", weights_only=False)
    assert state["number_training_updates"] == resumed_model["target"]


def test_resumed_model_evaluates(resumed_model, tmp_path):
    report_file = tmp_path / "report.json"
    run_parlai(
        ["eval_model", "-mf", resumed_model["model_file"], "-t", "integration_tests",
         "-dt", "valid", "--datapath", resumed_model["data"],
         "--report-filename", report_file]
    )
    report = json.load(open(report_file))["report"]
    assert report["exs"] == 100
    # integration_tests is learnable: after 100+ updates ppl is far below chance (~20)
    assert report["ppl"] < 10


def test_interactive_chat_from_a_pipe(resumed_model):
    out = run_parlai(
        ["interactive", "-mf", resumed_model["model_file"], "--datapath", resumed_model["data"]],
        stdin="1 2 3 4\n4 3 2 1\n",
        timeout=120,
    ).stdout
    start = out.rfind("creating task(s)")  # the transcript follows the option dump
    chat = out[start:] if start >= 0 else out[-3000:]
    replies = [line for line in out.splitlines() if "[TransformerGenerator]:" in line]
    assert len(replies) == 2, chat
    assert all(r.split("[TransformerGenerator]:", 1)[1].strip() for r in replies), chat
    assert "CHAT DONE" in out, chat
