"""Every ``parlai ...`` / ``python -m ...`` command in README.md's code blocks still runs.

The commands run in README order, in one scratch folder (so a later command finds what an
earlier one wrote, as for a reader), with ``/tmp/...`` paths moved into that folder and
``PARLAI_DATAPATH`` on a datapath built from ``PARLAI_EMPATHY_MIRROR`` (skipped, saying so,
without it). To stay within minutes, the test adds limits to ParlAI's long-running scripts:

* training (``train_model``, ``multiprocessing_train``, ...): 4 updates, final evaluations
  on 8 examples;
* evaluation (``eval_model``, ``empathy_report``): 8 examples;
* ``interactive``: one message on stdin, then end of input; a reply must come back.

Markers before a code block (``tests/readme_commands.py``) skip commands with a reason, add
arguments (after the limits above, so they win), replace placeholders or raise the timeout.
Identical commands run once. Each command must exit 0 without a traceback.
"""
import os
import re
import sys

import pytest

from parlai_cli import run_command
from readme_commands import (
    DEFAULT_TIMEOUT,
    Command,
    ReadmeMarkerError,
    parse_readme,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "README.md")

TRAIN_SCRIPTS = {"train_model", "tm", "train", "multiprocessing_train", "mp_train",
                 "distributed_train"}
EVAL_SCRIPTS = {"eval_model", "em", "eval", "multiprocessing_eval", "mp_eval",
                "empathy_report"}
CHAT_SCRIPTS = {"interactive", "i"}
TRAIN_LIMITS = ["--max-train-steps", "4", "--validation-max-exs", "8",
                "--short-final-eval", "true"]
EVAL_LIMITS = ["--num-examples", "8"]
CHAT_INPUT = "I lost my dog today.\n"
REPLY = re.compile(r"\[[^\]\s]+\]: \S")  # "[Moel]: oh no ..."


def _readme_commands():
    with open(README, encoding="utf-8") as f:
        commands = parse_readme(f.read())
    runnable, seen = [], set()
    for command in commands:
        key = (tuple(command.argv + command.extra_args), tuple(sorted(command.env.items())))
        if command.kind == "other" or key in seen:
            continue
        seen.add(key)
        runnable.append(command)
    return runnable


COMMANDS = _readme_commands()


def _limits(command: Command):
    script = command.subcommand if command.kind == "parlai" else ""
    if script in TRAIN_SCRIPTS:
        return TRAIN_LIMITS
    if script in EVAL_SCRIPTS or command.subcommand.endswith("empathy_report"):
        return EVAL_LIMITS
    return []


def _in_sandbox(arg: str, sandbox: str) -> str:
    return re.sub(r"(^|[,=])/tmp/", lambda m: f"{m.group(1)}{sandbox}/tmp/", arg)


@pytest.fixture(scope="module")
def sandbox(ed_datapath, tmp_path_factory):
    folder = tmp_path_factory.mktemp("readme")
    (folder / "tmp").mkdir()
    return {"cwd": str(folder), "datapath": ed_datapath}


def test_readme_has_commands():
    """The README still shows commands in code blocks the parser understands."""
    scripts = {c.subcommand for c in COMMANDS if c.kind == "parlai"}
    assert {"train_model", "interactive"} <= scripts, scripts


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS, ids=[f"line{c.line}" for c in COMMANDS])
def test_readme_command_runs(command: Command, sandbox):
    if command.skip:
        pytest.skip(f"{command.label}: {command.skip}")
    argv = [_in_sandbox(a, sandbox["cwd"]) for a in command.argv]
    argv += _limits(command) + [_in_sandbox(a, sandbox["cwd"]) for a in command.extra_args]
    if command.kind == "parlai":
        argv[0] = os.path.join(os.path.dirname(sys.executable), "parlai")
    else:
        argv[0] = sys.executable
    chat = command.kind == "parlai" and command.subcommand in CHAT_SCRIPTS
    env = {"PARLAI_DATAPATH": sandbox["datapath"], **command.env}
    proc = run_command(argv, env=env, cwd=sandbox["cwd"], timeout=command.timeout,
                       stdin=CHAT_INPUT if chat else None)
    shown = f"{command.label}\nran: {' '.join(argv)}\n{proc.stdout[-5000:]}"
    assert proc.returncode == 0, shown
    assert "Traceback (most recent call last)" not in proc.stdout, shown
    if chat:
        assert REPLY.search(proc.stdout.split("Enter Your Message:", 1)[-1]), shown


# --- the parser, on a README of its own -------------------------------------------------------

SAMPLE = """\
# Title

```bash
parlai display_data -t empathetic_dialogues -n 3
bash scripts/setup_env.sh && .venv/bin/parlai interactive -mf zoo:x/y \\
    --beam-size 1   # a comment
```

Prose with `parlai inline --not-run`.

<!-- readme-test: skip "serve" (runs until stopped) -->
<!-- readme-test: args "sample" --per-group 1 -->
<!-- readme-test: replace "runs/other/model" "zoo:other/model" -->
<!-- readme-test: timeout 30 -->
```bash
# 1. a step
python -m parlai_empathy.human_eval sample -mfs zoo:a/model,runs/other/model --out s.jsonl
python -m parlai_empathy.human_eval serve study/ratings --port 8000
OMP_NUM_THREADS=1 parlai train_model -m empathy/tiny_generator -mf /tmp/m/model 2>&1 | tee log
```

```python
import parlai  # not shell
```

<!-- readme-test: skip (needs a GPU) -->
```
parlai multiprocessing_train -m x
```
"""


def test_parser_finds_commands_and_applies_markers():
    commands = parse_readme(SAMPLE)
    shown = [(c.line, c.kind, c.argv[:3], c.extra_args, c.skip) for c in commands]
    assert shown == [
        (4, "parlai", ["parlai", "display_data", "-t"], [], None),
        (5, "other", ["bash", "scripts/setup_env.sh"], [], None),
        (5, "parlai", ["parlai", "interactive", "-mf"], [], None),
        (17, "python -m", ["python", "-m", "parlai_empathy.human_eval"],
         ["--per-group", "1"], None),
        (18, "python -m", ["python", "-m", "parlai_empathy.human_eval"], [],
         "runs until stopped"),
        (19, "parlai", ["parlai", "train_model", "-m"], [], None),
        (19, "other", ["tee", "log"], [], None),
        (28, "parlai", ["parlai", "multiprocessing_train", "-m"], [], "needs a GPU"),
    ]
    interactive = commands[2]
    assert interactive.argv == ["parlai", "interactive", "-mf", "zoo:x/y", "--beam-size", "1"]
    assert interactive.timeout == DEFAULT_TIMEOUT
    sample, serve, train = commands[3], commands[4], commands[5]
    assert "zoo:a/model,zoo:other/model" in sample.argv and sample.timeout == 30
    assert sample.subcommand == "parlai_empathy.human_eval sample"
    assert serve.subcommand == "parlai_empathy.human_eval serve"
    assert train.env == {"OMP_NUM_THREADS": "1"}
    assert train.argv[-2:] == ["-mf", "/tmp/m/model"]  # the redirection and pipe are gone
    assert _in_sandbox("/tmp/m/model", "/s") == "/s/tmp/m/model"
    assert _in_sandbox("zoo:a,/tmp/b", "/s") == "zoo:a,/s/tmp/b"


@pytest.mark.parametrize(
    "marker, message",
    [
        ("<!-- readme-test: skip -->", "needs a reason"),
        ("<!-- readme-test: sikp (x) -->", "unknown readme-test directive 'sikp'"),
        ('<!-- readme-test: replace "a" -->', 'takes "OLD" "NEW"'),
        ("<!-- readme-test: timeout soon -->", "takes seconds"),
        ("<!-- readme-test: args -->", "names no arguments"),
    ],
)
def test_parser_rejects_bad_markers_naming_the_line(marker, message):
    with pytest.raises(ReadmeMarkerError, match=f"README.md:3: .*{re.escape(message)}"):
        parse_readme(f"text\n\n{marker}\n```bash\nparlai x\n```\n")


def test_parser_rejects_a_marker_without_a_block():
    with pytest.raises(ReadmeMarkerError, match="README.md:4: readme-test marker with no"):
        parse_readme("```bash\nparlai x\n```\n<!-- readme-test: skip (x) -->\n")
