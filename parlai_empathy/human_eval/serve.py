"""Run a study's Potato task locally, or prepare it for a crowd platform.

:func:`serve` starts Potato (through :mod:`.potato_server`, which closes the page-embedding
script hole) in the task folder, bound to 127.0.0.1 unless told otherwise.
:func:`crowd_config` writes ``config.<platform>.yaml`` beside the task's config: the same
task with Potato's crowd login (the worker id arrives in the URL), a completion code and,
for Prolific, the redirect back to Prolific when a worker finishes; it returns the
settings to enter on the platform.
"""
import os
import secrets
import sys
from typing import Dict, List, NoReturn, Optional

import yaml

from parlai_empathy.atomic import atomic_write_text

PLATFORMS = {
    # platform: the URL argument carrying the worker id, the URL to enter on the platform
    "prolific": ("PROLIFIC_PID",
                 "{url}/?PROLIFIC_PID={{{{%PROLIFIC_PID%}}}}&STUDY_ID={{{{%STUDY_ID%}}}}"
                 "&SESSION_ID={{{{%SESSION_ID%}}}}"),
    "mturk": ("workerId", "{url}/?workerId=${{workerId}}&assignmentId=${{assignmentId}}"
                          "&hitId=${{hitId}}"),
}


class ServeError(ValueError):
    """A task folder or option that cannot be served; the message names it."""


def task_config_path(task_dir: str, config_name: str = "config.yaml") -> str:
    path = os.path.join(task_dir, config_name)
    if not os.path.isfile(path):
        raise ServeError(f"{path}: no Potato config (build the study first)")
    return path


def server_command(task_dir: str, port: int, host: str = "127.0.0.1",
                   config_name: str = "config.yaml") -> List[str]:
    task_config_path(task_dir, config_name)
    return [sys.executable, "-m", "parlai_empathy.human_eval.potato_server", "start",
            config_name, "-p", str(port), "--host", host]


def serve(task_dir: str, port: int, host: str = "127.0.0.1",
          config_name: str = "config.yaml") -> NoReturn:
    """Become the server, in the foreground until interrupted.

    The process is replaced (``exec``), not forked: a signal sent to ``serve`` (Ctrl-C, a
    supervisor's SIGTERM) then reaches Potato itself instead of leaving it running orphaned.
    """
    command = server_command(task_dir, port, host, config_name)
    print(f"Serving {os.path.abspath(task_dir)} at http://{host}:{port}/ (Ctrl-C stops it; "
          "annotations are saved as they are submitted)", flush=True)
    os.chdir(task_dir)
    os.execv(command[0], command)


def crowd_config(task_dir: str, platform: str, public_url: str,
                 completion_code: Optional[str] = None) -> Dict[str, str]:
    """Write ``config.<platform>.yaml``; returns what to enter on the platform."""
    if platform not in PLATFORMS:
        raise ServeError(f"unknown platform {platform!r}: choose {', '.join(PLATFORMS)}")
    if not public_url.startswith("https://"):
        raise ServeError(f"--public-url {public_url!r}: crowd workers need an https:// URL")
    with open(task_config_path(task_dir), encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    argument, url_template = PLATFORMS[platform]
    code = completion_code or secrets.token_hex(4).upper()
    config["login"] = {"type": "url_direct", "url_argument": argument}
    config["completion_code"] = code
    config["session_cookie_secure"] = True
    settings = {
        "platform": platform,
        "study_url": url_template.format(url=public_url.rstrip("/")),
        "completion_code": code,
        "config": os.path.join(task_dir, f"config.{platform}.yaml"),
        "serve": f"python -m parlai_empathy.human_eval serve {task_dir} "
                 f"--config config.{platform}.yaml --host 0.0.0.0 --port 8000 "
                 "(behind an https reverse proxy at the public URL)",
    }
    if platform == "prolific":
        config["auto_redirect_on_completion"] = True
        config["prolific"] = {"completion_code": code}
        settings["completion_url"] = (
            f"https://app.prolific.com/submissions/complete?cc={code}"
        )
    else:
        settings["note"] = (
            "MTurk closed to new requesters in July 2026 (Potato's loader says so); existing "
            "requesters use an ExternalQuestion HIT with the study URL."
        )
    atomic_write_text(settings["config"], yaml.safe_dump(config, sort_keys=False, width=100))
    return settings
