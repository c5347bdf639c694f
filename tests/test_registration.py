"""ParlAI finds our agents, tasks, zoo and scripts in every way it loads code.

Our ParlAI-facing modules are installed into ParlAI's own namespace
(``parlai.agents.empathy``, ``parlai.tasks.<name>``, ``parlai.zoo.empathy``,
``parlai.scripts.empathy_*``), and ``parlai_empathy.pth`` applies the compatibility fixes
whenever ``parlai`` is imported. Each test below starts fresh processes, as users do.
"""
import json
import os
import sys
from importlib import metadata

import pytest

from parlai_cli import PARLAI, run_command, run_parlai
from process_group import run_group

TINY = "empathy/tiny_generator"
# a training command's last report, then only saving and leaving: 30 s is ample
FINAL_REPORT_THEN_EXIT = (r"REPORT\s+\|\s+test:", 30)
AGENT_CLASS = "parlai.agents.empathy.tiny_generator.TinyGeneratorAgent"


def python(code, **env):
    """Run ``code`` in a fresh interpreter of this environment and return its stdout."""
    proc = run_command([sys.executable, "-c", code], env=env, timeout=300, merge_stderr=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A tiny generator trained for real through the ``parlai`` console command."""
    root = tmp_path_factory.mktemp("tiny")
    model_file = root / "model"
    out = run_parlai(
        [
            "train_model", "-m", TINY, "-t", "integration_tests",
            "-mf", model_file, "--max-train-steps", 60, "-vstep", 30,
            "--datapath", root / "data",
        ]
    ).stdout
    assert "total_train_updates" in out
    return model_file


def test_parlai_command_trains_our_agent(tiny_model):
    opt = json.loads(open(f"{tiny_model}.opt").read())
    assert opt["model"] == TINY
    assert os.path.getsize(tiny_model) > 0


def test_python_dash_m_parlai_evaluates_our_model(tiny_model):
    out = run_parlai(
        ["eval_model", "-mf", tiny_model, "-t", "integration_tests", "-dt", "valid",
         "--num-examples", 20, "--datapath", tiny_model.parent / "data"],
        command=[sys.executable, "-m", "parlai"],
    ).stdout
    assert "ppl" in out and "exs" in out


def test_library_call_creates_our_agent_in_a_fresh_process():
    out = python(
        "from parlai.core.params import ParlaiParser\n"
        "from parlai.core.agents import create_agent\n"
        f"parser = ParlaiParser(True, True)\n"
        f"opt = parser.parse_args(['-m', '{TINY}', '--dict-file', '/nonexistent/none.dict'])\n"
        "agent = create_agent(opt, requireModelExists=False)\n"
        "cls = type(agent)\n"
        "print(cls.__module__ + '.' + cls.__name__)\n"
    )
    assert out.strip().splitlines()[-1] == AGENT_CLASS


def test_saved_opt_reloads_in_a_fresh_process(tiny_model):
    out = python(
        "from parlai.core.agents import create_agent_from_model_file\n"
        f"agent = create_agent_from_model_file({str(tiny_model)!r})\n"
        "import torch\n"
        f"saved = torch.load({str(tiny_model)!r}, map_location='cpu', weights_only=False)['model']\n"
        "live = agent.model.state_dict()\n"
        "same = saved.keys() == live.keys() and all(torch.equal(saved[k], live[k]) for k in saved)\n"
        "agent.observe({'text': '1 2 3 4', 'episode_done': True})\n"
        "reply = agent.act()\n"
        "cls = type(agent)\n"
        "print(cls.__module__ + '.' + cls.__name__)\n"
        "print(same, type(reply['text']).__name__)\n"
    )
    lines = out.strip().splitlines()
    assert lines[-2] == AGENT_CLASS
    # The trained weights came back, and the agent answers. (A 60-update model may answer
    # with an empty string, so the reply's content is not what this test checks.)
    assert lines[-1] == "True str"


def test_no_module_is_loaded_twice_under_two_names(tiny_model):
    """Every installed file of ours maps to exactly one module name after real use."""
    out = python(
        "import sys, os, json\n"
        "from parlai.core.agents import create_agent_from_model_file\n"
        "import parlai_empathy, parlai.agents.empathy.tiny_generator\n"
        f"create_agent_from_model_file({str(tiny_model)!r})\n"
        "files = {}\n"
        "for name, mod in list(sys.modules.items()):\n"
        "    f = getattr(mod, '__file__', None)\n"
        "    if f and ('parlai_empathy' in f or os.sep + 'empathy' + os.sep in f):\n"
        "        files.setdefault(os.path.realpath(f), []).append(name)\n"
        "print(json.dumps(files))\n"
    )
    files = json.loads(out.strip().splitlines()[-1])
    assert any(names == ["parlai.agents.empathy.tiny_generator"] for names in files.values())
    duplicated = {f: names for f, names in files.items() if len(names) > 1}
    assert duplicated == {}


def test_install_adds_no_generic_top_level_packages():
    tops = {str(f).split("/")[0] for f in metadata.files("parlai-empathy")}
    assert not tops & {"agents", "tasks", "zoo", "scripts", "tests"}
    assert "parlai_empathy" in tops and "parlai" in tops and "parlai_empathy.pth" in tops


def test_compat_is_applied_by_importing_parlai_alone():
    """The .pth hook applies the fixes in a process that never imports our package."""
    out = python(
        "import parlai.nn.lr_scheduler as s, torch, parlai.utils.distributed as d\n"
        "print(getattr(torch.load, '_parlai_empathy_wrapped', False),"
        " getattr(d, '_parlai_empathy_patched', False),"
        " type(s.optim).__name__)\n"
    )
    assert out.split() == ["True", "True", "_ModuleView"]


def test_compat_is_applied_under_python_dash_m_parlai():
    """``python -m parlai`` looks ``parlai`` up (runpy's ``find_spec``) before importing it
    afresh; the fixes must still be applied to the package that runs (runpy's own steps,
    in-process, so the result can be read)."""
    out = python(
        "import runpy, sys\n"
        "sys.argv = ['parlai', 'help']\n"
        "try:\n"
        "    runpy.run_module('parlai', run_name='__main__', alter_sys=True)\n"
        "finally:\n"
        "    import torch\n"
        "    print('WRAPPED', getattr(torch.load, '_parlai_empathy_wrapped', False))\n"
    )
    assert out.split()[-2:] == ["WRAPPED", "True"]


def test_multiprocessing_train_two_cpu_workers_matches_single_process_format(tmp_path):
    """ParlAI's own multi-process launcher trains our agent on CPU (gloo), spawned workers
    resolving ``empathy/...`` themselves; its final metrics files (``model.valid``,
    ``model.test`` tables and ``model.trainstats`` JSON) have the single-process format.

    Both runs end within seconds of their final test report: a rank that hangs while leaving
    (see ``parlai_empathy.compat._single_worker_gloo``) fails the test with every process's
    stacks instead of blocking it for minutes."""
    data = tmp_path / "data"
    common = ["-m", TINY, "-t", "integration_tests", "--datapath", data]
    runs = {}
    for name, command, extra in (
        ("single", "train_model", []),
        ("multi", "multiprocessing_train", ["--distributed-world-size", 2]),
    ):
        model_file = tmp_path / name / "model"
        run_parlai(["build_dict", *common, "-df", f"{model_file}.dict"])
        _, out = run_group(
            [PARLAI, command, *common, "-mf", model_file, "-df", f"{model_file}.dict",
             "--max-train-steps", 40, "-vstep", 20, *extra],
            timeout=600, exit_after=FINAL_REPORT_THEN_EXIT,
        )
        runs[name] = {
            "log": out,
            "valid": open(f"{model_file}.valid").read(),
            "test": open(f"{model_file}.test").read(),
            "trainstats": json.load(open(f"{model_file}.trainstats")),
        }
    single, multi = runs["single"], runs["multi"]
    assert "Distributed group initialized" in multi["log"]
    assert "Distributed group initialized" not in single["log"]
    for split in ("valid", "test"):
        assert _table_columns(multi[split]) == _table_columns(single[split])
        assert _table_value(multi[split], "exs") == _table_value(single[split], "exs") == 100
    assert set(multi["trainstats"]) == set(single["trainstats"])
    assert set(multi["trainstats"]["train_reports"][-1]) == set(
        single["trainstats"]["train_reports"][-1]
    )


def test_cpu_distributed_group_has_a_single_gloo_worker():
    """The property that lets every rank leave a CPU run: with one gloo worker thread, the
    closing barrier runs after every earlier collective has been freed, so destroying the
    group never waits for a thread that needs the GIL (compat._single_worker_gloo). With
    torch's default two workers, about one run in 20 hung on a loaded machine."""
    out = python(
        "import os, torch, torch.distributed as dist\n"
        "import parlai.utils.distributed as d\n"
        "from parlai.utils.distributed import find_free_port\n"
        "opt = {'distributed_world_size': 1}\n"
        "with d.distributed_context(0, opt, init_method=f'tcp://127.0.0.1:{find_free_port()}'):\n"
        "    gloo = dist.group.WORLD._get_backend(torch.device('cpu'))\n"
        "    print(dist.get_backend(), type(gloo).__name__, gloo.options._threads)\n"
        "import torch.distributed.distributed_c10d as c10d\n"
        "print(c10d.ProcessGroupGloo.__name__, dist.is_initialized())\n"
    )
    assert out.strip().splitlines()[-2:] == ["gloo ProcessGroupGloo 1", "ProcessGroupGloo False"]


def _table_columns(table):
    """Column names of a ParlAI report table (every other line after the title)."""
    lines = table.strip().splitlines()[1:]
    return [word for line in lines[0::2] for word in line.split() if word != "\\"]


def _table_value(table, column):
    lines = table.strip().splitlines()[1:]
    for header, values in zip(lines[0::2], lines[1::2]):
        names = [w for w in header.split() if w != "\\"]
        if column in names:
            return float(values.split()[names.index(column)])
    raise KeyError(column)
