"""Each compatibility fix does its job, and only its job."""
import os
import pickle
import sys

import pytest
import torch

import parlai.nn.lr_scheduler as parlai_schedulers
import parlai.utils.pickle
from parlai_empathy import compat


def test_pkg_resources_stand_in_answers_like_pkg_resources():
    import pkg_resources

    stand_in = compat._pkg_resources_stand_in()
    for name in ("opt_presets/README.md", "opt_presets/none.opt", "core/opt.py"):
        assert stand_in.resource_exists("parlai", name) == pkg_resources.resource_exists(
            "parlai", name
        )
    path = stand_in.resource_filename("parlai", "opt_presets/README.md")
    assert os.path.samefile(path, pkg_resources.resource_filename("parlai", "opt_presets/README.md"))
    with pytest.raises(ModuleNotFoundError):
        stand_in.resource_exists("parlai_no_such_package", "x.opt")


class _Custom:
    pass


def test_torch_load_of_parlai_checkpoints_stays_weights_only(tmp_path):
    path = tmp_path / "ckpt"
    torch.save({"opt": {"model": "x"}, "model": {"w": torch.ones(1)}}, path)
    # ParlAI's own way of loading its checkpoints works (torch refuses its pickle_module) ...
    with open(path, "rb") as f:
        states = torch.load(f, map_location="cpu", pickle_module=parlai.utils.pickle)
    assert states["opt"] == {"model": "x"}
    # ... with torch's safe unpickler, as any other torch.load (tests/test_safe_loading.py)
    torch.save({"obj": _Custom()}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
    with pytest.raises(ValueError, match="refused to load"), open(path, "rb") as f:
        torch.load(f, map_location="cpu", pickle_module=parlai.utils.pickle)


def test_reduce_lr_on_plateau_accepts_verbose_for_parlai_only():
    params = [torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.SGD(params, lr=0.1)
    scheduler = parlai_schedulers.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, "min", factor=0.5, patience=0, verbose=True
    )
    scheduler.step(1.0)
    scheduler.step(2.0)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05)
    assert isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    # torch's own class is untouched
    assert torch.optim.lr_scheduler.ReduceLROnPlateau is not type(scheduler)


def _datapath_parsed_in_fresh_process(env):
    from parlai_cli import run_command

    proc = run_command(
        [sys.executable, "-c",
         "from parlai.core.params import ParlaiParser\n"
         "print(ParlaiParser(True, True).parse_args([])['datapath'])"],
        env=env, merge_stderr=False, replace_env=True,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    return out.strip().splitlines()[-1]


def test_default_datapath_moves_out_of_site_packages(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PARLAI_DATAPATH", "PARLAI_DOWNPATH")}
    env["HOME"] = str(tmp_path)
    assert _datapath_parsed_in_fresh_process(env) == str(tmp_path / ".parlai" / "data")


def test_explicit_datapath_wins(tmp_path):
    env = dict(os.environ, PARLAI_DATAPATH=str(tmp_path / "mine"))
    assert _datapath_parsed_in_fresh_process(env) == str(tmp_path / "mine")


def test_all_gather_list_falls_back_without_a_process_group():
    import parlai.utils.distributed as d

    assert d.all_gather_list({"a": 1}) == [{"a": 1}]
    assert d.sync_object(5) == 5


def test_resumed_training_validates_on_schedule(tmp_path):
    """A resumed run validates every -vstep updates counted from its last validation, not
    right after its first update (which would also spend one unit of patience)."""
    import json

    from parlai_cli import run_parlai

    model_file = tmp_path / "model"
    common = ["train_model", "-m", "empathy/tiny_generator", "-t", "integration_tests",
              "-mf", model_file, "--datapath", tmp_path / "data", "-vstep", 20, "-vp", 10,
              "-vme", 16, "--short-final-eval", "true", "--skip-generation", "true",
              "-vmt", "ppl", "-vmm", "min"]
    run_parlai([*common, "--max-train-steps", 30])
    first = json.loads(open(f"{model_file}.trainstats").read())
    assert [r["train_steps"] for r in first["valid_reports"]] == [20]
    run_parlai([*common, "--max-train-steps", 50])
    resumed = json.loads(open(f"{model_file}.trainstats").read())
    assert resumed["train_steps"] == 50
    assert [r["train_steps"] for r in resumed["valid_reports"]] == [20, 40]


def test_rerunning_a_finished_training_leaves_its_trainstats_whole(tmp_path):
    """train_model again on a run whose linear schedule has ended (CoBERT's recipes) trains
    nothing, exits cleanly and keeps MODEL.trainstats (ParlAI crashed while writing it,
    leaving it empty)."""
    import json

    from parlai_cli import run_parlai

    model_file = tmp_path / "model"
    command = ["train_model", "-m", "empathy/tiny_generator", "-t", "integration_tests",
               "-mf", model_file, "--datapath", tmp_path / "data", "-vme", 16,
               "--short-final-eval", "true", "--skip-generation", "true",
               "--max-train-steps", 20, "--lr-scheduler", "linear"]
    run_parlai(command)
    first = json.loads(open(f"{model_file}.trainstats").read())
    run_parlai(command)
    again = json.loads(open(f"{model_file}.trainstats").read())
    assert first["train_steps"] == again["train_steps"] >= 19
    assert again["total_epochs"] == pytest.approx(first["total_epochs"])


def test_final_evaluation_of_a_resumed_run_uses_the_best_model(tmp_path):
    """After resuming from MODEL.checkpoint, train_model's closing valid evaluation scores
    the best validation model (MODEL), not the last checkpoint."""
    import json

    from parlai_cli import run_parlai

    model_file = tmp_path / "model"
    common = ["train_model", "-m", "empathy/tiny_generator", "-t", "integration_tests",
              "-mf", model_file, "--datapath", tmp_path / "data", "-vstep", 20, "-vp", 10,
              "-vme", 16, "--short-final-eval", "true", "--skip-generation", "true",
              "-vmt", "ppl", "-vmm", "min", "--save-every-n-secs", 0.01]
    run_parlai([*common, "--max-train-steps", 30])
    out = run_parlai([*common, "--max-train-steps", 70]).stdout
    assert f"Loading existing model params from {model_file}.checkpoint" in out
    stats = json.loads(open(f"{model_file}.trainstats").read())
    checkpoint_stats = json.loads(open(f"{model_file}.checkpoint.trainstats").read())
    assert checkpoint_stats["train_steps"] > stats["valid_reports"][-1]["train_steps"]
    best = min(r["ppl"] for r in stats["valid_reports"])
    # the closing evaluation sees the same 16 examples as each validation did
    assert stats["final_valid_report"]["ppl"] == pytest.approx(best, rel=1e-6)


def test_init_model_with_a_saved_list_option_that_this_run_leaves_unset(tmp_path):
    """A classifier saves ``classes`` (a list); a run from it as --init-model has None there."""
    import parlai.core.agents as agents
    from parlai.core.opt import Opt

    init = tmp_path / "model"
    Opt({"classes": ["a", "b"], "betas": [0.9, 0.999], "lr": 1.0}).save(str(init) + ".opt")
    opt = {"init_model": str(init), "datapath": str(tmp_path), "classes": None,
           "betas": [0.9, 0.999], "lr": 2.0}
    before = dict(opt)
    agents.compare_init_model_opts(opt, opt)  # ParlAI's own: TypeError on list(None)
    assert opt == before  # options untouched (the differences are only logged)
    assert getattr(agents.compare_init_model_opts, "_parlai_empathy_wrapped", False)
