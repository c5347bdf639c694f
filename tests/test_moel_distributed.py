"""MoEL under ParlAI's multi-process launcher: two CPU workers (gloo) train and save.

``parlai multiprocessing_train`` wraps the model in DistributedDataParallel, so every
parameter must receive a gradient on every rank at every step (MoEL's top-k listeners
included), the emotion ids must reach each rank's batches, and the saved model must load
back as a MoEL model. The run uses the EmpatheticDialogues mirror and tiny sizes.
"""
import json

import pytest

from parlai_cli import PARLAI, run_parlai
from process_group import run_group

TINY_MOEL = [
    "-m", "empathy/moel", "--embedding-size", 16, "--hidden-size", 16, "--key-depth", 8,
    "--value-depth", 8, "--filter-size", 8, "--embedding-file", "none",
]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
STEPS = 24
# the last report of a training command; after it only saving and leaving remain
FINAL_REPORT_THEN_EXIT = (r"REPORT\s+\|\s+test:", 30)


@pytest.mark.slow
def test_moel_trains_and_saves_with_two_cpu_workers(ed_datapath, tmp_path):
    model_file = tmp_path / "model"
    task = ["-t", "empathetic_dialogues", "--train-experiencer-only", "true",
            "--datapath", ed_datapath]
    # ParlAI's distributed training needs the dictionary built first
    run_parlai(["build_dict", *task, "-df", f"{model_file}.dict", "--dict-maxexs", 2000],
               env=ONE_THREAD, timeout=300)
    _, log = run_group(
        [PARLAI, "multiprocessing_train", *TINY_MOEL, *task, "-mf", model_file,
         "-df", f"{model_file}.dict", "--distributed-world-size", 2, "--batchsize", 4,
         "--max-train-steps", STEPS, "--validation-every-n-steps", STEPS,
         "--short-final-eval", "true", "--validation-max-exs", 8, "--skip-generation", "true"],
        timeout=600, exit_after=FINAL_REPORT_THEN_EXIT, env=ONE_THREAD,
    )
    assert "Distributed group initialized" in log
    stats = json.load(open(f"{model_file}.trainstats"))
    assert stats["train_steps"] == STEPS
    final_valid = stats["final_valid_report"]
    assert final_valid["exs"] == 8 and 0 <= final_valid["emotion_acc"] <= 1

    # the saved model is a MoEL model (no DDP "module." prefix) and evaluates on its own
    report_file = tmp_path / "report.json"
    run_parlai(
        ["eval_model", "-mf", model_file, "-t", "empathetic_dialogues", "-dt", "valid",
         "--num-examples", 8, "--batchsize", 8, "--skip-generation", "true",
         "--datapath", ed_datapath, "--report-filename", report_file],
        env=ONE_THREAD, timeout=300,
    )
    report = json.load(open(report_file))["report"]
    assert report["exs"] == 8 and "emotion_acc" in report and report["ppl"] > 1
