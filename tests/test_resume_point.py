"""Resume points (parlai_empathy.resume_point): a run packed, unpacked elsewhere, continued."""
import json
import os
import subprocess
import sys
import tarfile

import pytest
import torch

from generator_helpers import make_agent
from parlai_cli import run_parlai
from parlai_empathy import resume_point
from parlai_empathy.safe_load import load_checkpoint

TINY_MOEL = [
    "-m", "empathy/moel", "--embedding-size", 16, "--hidden-size", 16, "--key-depth", 8,
    "--value-depth", 8, "--filter-size", 16, "--embedding-file", "none",
    "-t", "empathetic_dialogues", "--train-experiencer-only", "true", "-bs", 4,
    "--warmup-updates", 4, "--skip-generation", "true", "--label-truncate", 12,
    "--text-truncate", 32,
]
TRAINING = [
    "--seed", 1234, "-vstep", 3, "-vp", 3, "-vmt", "ppl", "-vmm", "min",
    "--validation-max-exs", 8, "--short-final-eval", "true", "--save-after-valid", "true",
]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _train(model_file, datapath, steps, dict_file, *extra):
    return run_parlai(
        ["train_model", *TINY_MOEL, *TRAINING, "-mf", model_file, "-df", dict_file, "--datapath",
         datapath, "--max-train-steps", steps, *extra],
        env=ONE_THREAD,
    ).stdout


@pytest.fixture(scope="module")
def packed(ed_datapath, tmp_path_factory):
    """A tiny MoEL run stopped after 7 updates (validated at 3 and 6), and its resume point."""
    run = tmp_path_factory.mktemp("run")
    dict_file = str(run / "model.dict")  # built by the first run, from 200 examples
    _train(str(run / "model"), ed_datapath, 7, dict_file, "--dict-maxexs", 200)
    archive = str(run / "tiny.resume.tar.gz")
    manifest = resume_point.pack(str(run / "model"), archive)
    return run, archive, manifest, dict_file


def test_resume_point_continues_the_schedule_and_the_early_stopping_state(
        packed, ed_datapath, tmp_path):
    run, archive, manifest, dict_file = packed
    assert manifest["train_steps"] == 6 and manifest["dropped"] == ["optimizer state"]
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "resume.json" in names and "model.trainstats" in names
    # weights only: no optimizer state travels, floats are float16
    member = manifest["continue_from"]  # "model" or "model.checkpoint"
    with tarfile.open(archive) as tar:
        tar.extract(member, tmp_path / "peek", filter="data")
    slim = load_checkpoint(str(tmp_path / "peek" / member))
    assert "lr_scheduler" in slim and slim["optimizer"]["state"] == {}
    saved = load_checkpoint(str(run / member))
    # the current learning rate travels (the first update after the resume uses it)
    assert slim["optimizer"]["param_groups"] == saved["optimizer"]["param_groups"]
    assert {v.dtype for v in slim["model"].values() if v.is_floating_point()} == {torch.float16}

    resumed = tmp_path / "resumed" / "model"
    restored = resume_point.unpack_into(archive, str(resumed))
    assert restored["sha256"] == manifest["sha256"]
    # no path of the packed run's machine travels (ParlAI would load an init_model that exists)
    for opt_file in (f"{resumed}.opt", f"{resumed}.checkpoint.opt"):
        if os.path.exists(opt_file):
            assert not {"init_model", "model_file", "dict_file"} & set(json.load(open(opt_file)))
    log = _train(str(resumed), ed_datapath, 10, dict_file)
    assert "Loading existing model params" in log, log
    stats = json.load(open(f"{resumed}.checkpoint.trainstats"))  # after the validation at 9
    before = json.load(open(run / "model.checkpoint.trainstats"))  # after the one at 6
    assert (before["train_steps"], stats["train_steps"]) == (6, 9)
    # the validations before the pause are kept; the one at 9 was added after it
    assert [r["train_steps"] for r in stats["valid_reports"]] == [3, 6, 9]
    assert stats["valid_reports"][:2] == before["valid_reports"]
    # MODEL is still the best validated state (compat: ParlAI would have overwritten it with
    # the last state when no validation after the pause beat the best)
    best = min(stats["valid_reports"], key=lambda r: r["ppl"])
    assert load_checkpoint(str(resumed))["number_training_updates"] == best["train_steps"]

    # the schedule went on from update 6: after update 9, the state of a schedule that was
    # stepped 9 times without a pause (ParlAI steps it after each update)
    end = load_checkpoint(f"{resumed}.checkpoint")
    assert end["number_training_updates"] == 9
    straight = make_agent(*TINY_MOEL, "-df", dict_file, "--datapath", ed_datapath,
                          "-dt", "train")
    for update in range(1, 10):
        straight.optimizer.step()  # (no gradients: nothing moves; keeps torch's order)
        straight.scheduler.step(update)
    assert end["lr_scheduler"] == straight.scheduler.get_state_dict()
    assert end["optimizer"]["param_groups"][0]["lr"] == pytest.approx(
        straight.optimizer.param_groups[0]["lr"], rel=1e-9)
    # Adam's moments restarted at update 6: 3 steps of them, not 9
    step_counts = {float(s["step"]) for s in end["optimizer"]["state"].values()}
    assert step_counts == {3.0}, step_counts


def test_unpack_refuses_a_folder_with_a_run_and_a_damaged_archive(packed, tmp_path):
    run, archive, _, _ = packed
    with pytest.raises(resume_point.ResumePointError, match="already holds a run"):
        resume_point.unpack_into(archive, str(run / "model"))

    # a member changed after packing: refused by its sha256, nothing left in the target
    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(damaged, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()
            if member.name == "model.trainstats":
                data = data.replace(b'"train_steps": 6', b'"train_steps": 60')
                member.size = len(data)
            import io
            dst.addfile(member, io.BytesIO(data))
    target = tmp_path / "target"
    with pytest.raises(resume_point.ResumePointError,
                       match=r"damaged.tar.gz: member model.trainstats does not match"):
        resume_point.unpack_into(str(damaged), str(target / "model"))
    assert os.listdir(target) == []

    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(open(archive, "rb").read()[:5000])
    with pytest.raises(resume_point.ResumePointError, match="truncated.tar.gz"):
        resume_point.unpack_into(str(truncated), str(target / "model"))
    assert os.listdir(target) == []


def test_pack_refuses_a_run_that_never_validated(tmp_path):
    (tmp_path / "model").write_bytes(b"")
    with pytest.raises(resume_point.ResumePointError, match="has validated at least once"):
        resume_point.pack(str(tmp_path / "model"), str(tmp_path / "out.tar.gz"))
    assert not os.path.exists(tmp_path / "out.tar.gz")


def test_a_run_with_no_compared_validation_packs_from_its_checkpoint(ed_datapath, tmp_path):
    """--best-after-updates: until a validation is compared there is no MODEL, only the
    checkpoint of each validation; a run killed then (no end-of-run save) still packs, and the
    recipes' restore step (recipes/_resume.sh) unpacks it once and leaves a resumed run alone."""
    run = tmp_path / "run"
    dict_file = str(run / "model.dict")
    _train(str(run / "model"), ed_datapath, 4, dict_file, "--dict-maxexs", 200,
           "--best-after-updates", 100)
    # what a kill after the validation at 3 leaves: ParlAI's end-of-run save of MODEL undone
    for suffix in ("", ".opt", ".trainstats"):
        os.remove(f"{run}/model{suffix}")
    archive = str(tmp_path / "early.tar.gz")
    manifest = resume_point.pack(str(run / "model"), archive)
    assert manifest["continue_from"] == "model.checkpoint"
    assert (manifest["train_steps"], manifest["best_train_steps"]) == (3, None)
    with tarfile.open(archive) as tar:
        assert not {"model", "model.opt", "model.trainstats"} & set(tar.getnames())

    resumed = tmp_path / "resumed"
    restore = ["bash", "-c", '. recipes/_resume.sh && restore_resume_point "$0"', str(resumed)]
    env = {**os.environ, "RESUME_FROM": archive, "PYTHON": sys.executable}
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    first = subprocess.run(restore, cwd=repo, env=env, capture_output=True, text=True)
    assert first.returncode == 0 and "restored" in first.stdout, first.stderr
    assert os.path.isfile(resumed / "model.checkpoint.trainstats")
    assert not os.path.exists(resumed / "model")
    log = _train(str(resumed / "model"), ed_datapath, 7, dict_file, "--best-after-updates", 100)
    assert "Loading existing model params" in log, log
    stats = json.load(open(resumed / "model.checkpoint.trainstats"))
    assert [r["train_steps"] for r in stats["valid_reports"]] == [3, 6]
    # a folder that holds a run is resumed from its own files: the restore step does nothing
    again = subprocess.run(restore, cwd=repo, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and again.stdout == "", (again.stdout, again.stderr)
