"""Run a study's Potato task locally, or prepare it for a crowd platform.

:func:`serve` starts Potato (through :mod:`.potato_server`, which closes the page-embedding
script hole and checks every login) in the task folder, bound to 127.0.0.1 unless told
otherwise. It refuses a config in which anyone could log in as any annotator: a local
task must use the password logins ``build`` made, a crowd task a platform whose ids the
server can check.
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
from parlai_empathy.human_eval.logins import (
    CROWD_BINDING,
    CROWD_ID_FORMATS,
    LOGINS_FILE,
    LoginsError,
    read_logins,
)

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


def check_login(task_dir: str, config_name: str = "config.yaml") -> str:
    """How the task's annotators log in: ``"password"`` or the crowd id's URL argument.

    Raises :class:`ServeError` for a config that would let one annotator act as another.
    """
    path = task_config_path(task_dir, config_name)
    with open(path, encoding="utf-8") as handle:
        config = yaml.safe_load(handle) or {}
    if config.get("crowdsourcing"):
        raise ServeError(f"{path}: a 'crowdsourcing' block is not supported; write the crowd "
                         "config with `python -m parlai_empathy.human_eval crowd`")
    if config.get("debug"):
        raise ServeError(f"{path}: debug: true opens Potato's admin pages, every "
                         "annotator's answers included, to any local request")
    login = config.get("login") or {}
    if login.get("type") in ("url_direct", "prolific"):
        argument = login.get("url_argument", "PROLIFIC_PID")
        if argument not in CROWD_ID_FORMATS:
            raise ServeError(f"{path}: login.url_argument {argument!r}: the server checks "
                             f"only {', '.join(CROWD_ID_FORMATS)} (Prolific, MTurk)")
        return argument
    if (config.get("require_password") is not True
            or (config.get("user_config") or {}).get("allow_all_users", True) is not False):
        raise ServeError(
            f"{path}: open login (require_password false or user_config.allow_all_users "
            "true): anyone who types an annotator's name would read and change their "
            "answers. Give the study password logins: python -m parlai_empathy.human_eval "
            "logins STUDY_DIR --add N (or NAMES)")
    authentication = config.get("authentication") or {}
    if (authentication.get("method", "in_memory") != "in_memory"
            or authentication.get("user_config_path") != LOGINS_FILE):
        raise ServeError(f"{path}: authentication must be method in_memory with "
                         f"user_config_path {LOGINS_FILE} (the hashed logins `build` "
                         "wrote); rebuild, or run the `logins` step")
    try:
        if not read_logins(task_dir):
            raise ServeError(f"{os.path.join(task_dir, LOGINS_FILE)}: no annotator logins; "
                             "add some with the `logins` step")
    except LoginsError as error:
        raise ServeError(str(error)) from None
    return "password"


def server_command(task_dir: str, port: int, host: str = "127.0.0.1",
                   config_name: str = "config.yaml") -> List[str]:
    check_login(task_dir, config_name)
    return [sys.executable, "-m", "parlai_empathy.human_eval.potato_server", "start",
            config_name, "-p", str(port), "--host", host]


def serve(task_dir: str, port: int, host: str = "127.0.0.1",
          config_name: str = "config.yaml") -> NoReturn:
    """Become the server, in the foreground until interrupted.

    The process is replaced (``exec``), not forked: a signal sent to ``serve`` (Ctrl-C, a
    supervisor's SIGTERM) then reaches Potato itself instead of leaving it running orphaned.
    """
    command = server_command(task_dir, port, host, config_name)
    login = check_login(task_dir, config_name)
    how = ("annotators log in with the name and password `build` gave them"
           if login == "password" else f"workers arrive through the study URL ({login})")
    print(f"Serving {os.path.abspath(task_dir)} at http://{host}:{port}/; {how} (Ctrl-C "
          "stops it; annotations are saved as they are submitted)", flush=True)
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
    # The platform's ids are the login: the study's password accounts are not carried
    # over, and the server (potato_server) admits only well-formed ids, each worker id
    # tied to the first session id it came with.
    config.pop("authentication", None)
    config["require_password"] = False
    config["user_config"] = {"allow_all_users": True}
    config["login"] = {"type": "url_direct", "url_argument": argument}
    config["completion_code"] = code
    config["session_cookie_secure"] = True
    formats = CROWD_ID_FORMATS[argument]
    settings = {
        "platform": platform,
        "study_url": url_template.format(url=public_url.rstrip("/")),
        "completion_code": code,
        "config": os.path.join(task_dir, f"config.{platform}.yaml"),
        "serve": f"python -m parlai_empathy.human_eval serve {task_dir} "
                 f"--config config.{platform}.yaml --host 0.0.0.0 --port 8000 "
                 "(behind an https reverse proxy at the public URL)",
        "login": (
            "only through the study URL: "
            + ", ".join(f"{name} must be {form}" for name, (_, form) in formats.items())
            + f"; a worker id is tied to the first {CROWD_BINDING[argument]} it arrives "
            "with. Anyone who has a worker's study URL (their ids) can act as that worker."
        ),
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
