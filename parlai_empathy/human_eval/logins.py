"""Who may log in to a study's Potato tasks: annotator passwords and crowd-platform ids.

Local studies: ``build`` gives each annotator an account name and a random password
(80 bits, shown once); each task folder keeps only salted PBKDF2 hashes in
``annotators.jsonl`` (mode 0600), in the ``salt$hash`` form Potato 2.12.1 reads from
``authentication.user_config_path`` (``potato.authentication._hash_password_with_salt``:
PBKDF2-HMAC-SHA256, 100 000 iterations, a 32-hex-character salt). The task config turns
Potato's password login on and closes registration (``user_config.allow_all_users:
false``), so an account exists only if ``build`` (or the ``logins`` step) made it.

Crowd studies: the study link can carry only the platform's own ids, so those are the
credential. :data:`CROWD_ID_FORMATS` gives the exact form of each id a platform sends; the
server (:mod:`.potato_server`) refuses any other, and ties each worker id to the first
session id it arrives with (:data:`CROWD_BINDING`).
"""
import base64
import hashlib
import json
import os
import re
import secrets
from typing import Dict, List, Mapping, Sequence, Union

from parlai_empathy.atomic import atomic_write_text

LOGINS_FILE = "annotators.jsonl"
# Potato's stored-password format (potato/authentication.py)
PBKDF2_ITERATIONS = 100_000
_SALT_HEX_CHARS = 32
LOGIN_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

_HEX24 = re.compile(r"[0-9a-f]{24}")
_MTURK_WORKER = re.compile(r"A[A-Z0-9]{11,20}")
_MTURK_ID30 = re.compile(r"[A-Z0-9]{30}")

# login.url_argument -> {URL argument: (pattern, what it must look like)}. Prolific's ids
# are 24 lower-case hex characters (MongoDB ObjectIds); MTurk's worker ids are "A" and
# 11-20 upper-case letters or digits, its assignment and HIT ids 30 of them.
CROWD_ID_FORMATS = {
    "PROLIFIC_PID": {
        "PROLIFIC_PID": (_HEX24, "24 hexadecimal characters"),
        "STUDY_ID": (_HEX24, "24 hexadecimal characters"),
        "SESSION_ID": (_HEX24, "24 hexadecimal characters"),
    },
    "workerId": {
        "workerId": (_MTURK_WORKER, "'A' and 11-20 upper-case letters or digits"),
        "assignmentId": (_MTURK_ID30, "30 upper-case letters or digits"),
        "hitId": (_MTURK_ID30, "30 upper-case letters or digits"),
    },
}
# the per-visit id a worker id is bound to on its first arrival
CROWD_BINDING = {"PROLIFIC_PID": "SESSION_ID", "workerId": "assignmentId"}
CROWD_PLATFORM_NAMES = {"PROLIFIC_PID": "Prolific", "workerId": "MTurk"}


class LoginsError(ValueError):
    """Bad login names or a study without usable logins; the message names the cause."""


def new_password() -> str:
    """80 random bits as four groups of four base32 letters/digits: ``k3f9-qz2a-...``."""
    text = base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()
    return "-".join(text[i:i + 4] for i in range(0, 16, 4))


def hash_password(password: str, salt: str = None) -> str:
    """``salt$hash`` exactly as Potato 2.12.1 stores and verifies it."""
    salt = salt or secrets.token_hex(_SALT_HEX_CHARS // 2)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode("utf-8"),
                                 PBKDF2_ITERATIONS).hex()
    return f"{salt}${digest}"


def login_names(logins: Union[int, Sequence[str]]) -> List[str]:
    """``annotator01``.. for a count, or the given names, checked."""
    if isinstance(logins, int):
        if logins < 1:
            raise LoginsError(f"--logins {logins}: at least one annotator login is needed")
        width = max(2, len(str(logins)))
        return [f"annotator{n:0{width}d}" for n in range(1, logins + 1)]
    names = list(logins)
    if not names:
        raise LoginsError("--logins: no names given")
    for name in names:
        if not LOGIN_NAME_RE.fullmatch(name):
            raise LoginsError(f"--logins: {name!r} is not a valid login name (letters, "
                              "digits, '_', '.', '-'; up to 64 characters)")
    lowered = [n.lower() for n in names]
    for name in names:
        if lowered.count(name.lower()) > 1:
            raise LoginsError(f"--logins: {name!r} is given twice (names are compared "
                              "without case: they name folders)")
    return names


def parse_logins_option(text: str) -> Union[int, List[str]]:
    """``--logins``: a count (``24``) or names (``alice,bob``)."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    return [part.strip() for part in text.split(",") if part.strip()]


def read_logins(task_dir: str) -> Dict[str, str]:
    """{name: stored hash} of a task folder ({} when it has no logins file)."""
    path = os.path.join(task_dir, LOGINS_FILE)
    if not os.path.isfile(path):
        return {}
    stored = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                stored[record["username"]] = record["password"]
            except (ValueError, KeyError, TypeError):
                raise LoginsError(f"{path}:{number}: not a {{\"username\", \"password\"}} "
                                  "JSON line") from None
    return stored


def write_logins(task_dir: str, stored: Mapping[str, str]):
    """The task's logins file, whole, mode 0600 (atomic_write_text creates it so)."""
    atomic_write_text(
        os.path.join(task_dir, LOGINS_FILE),
        "".join(json.dumps({"username": name, "password": hashed}) + "\n"
                for name, hashed in stored.items()),
    )


def password_login_config(config: dict, names: Sequence[str]) -> dict:
    """Potato config keys for password login with the build-made accounts only."""
    config = dict(config)
    config["require_password"] = True
    config["user_config"] = {"allow_all_users": False, "users": list(names)}
    config["authentication"] = {"method": "in_memory", "user_config_path": LOGINS_FILE}
    return config


def format_logins(passwords: Mapping[str, str]) -> str:
    """The once-only listing ``build`` and ``logins`` print."""
    width = max(len(n) for n in passwords)
    lines = ["Annotator logins (shown only now: the study stores only their hashes; give "
             "each annotator theirs):"]
    lines += [f"  {name:<{width}}  {password}" for name, password in passwords.items()]
    return "\n".join(lines)


def update_logins(study_dir: str, add: Union[None, int, Sequence[str]] = None,
                  reset: Sequence[str] = ()) -> Dict[str, str]:
    """Add annotator logins to every task of a study, or give some a new password.

    Also turns an older study's open login (any name accepted) into password login.
    Returns the new passwords (shown once); a running server sees them after a restart.
    """
    import yaml

    from parlai_empathy.human_eval.annotations import load_key

    tasks = [os.path.join(study_dir, task) for task in load_key(study_dir)["tasks"]]
    stored = read_logins(tasks[0])
    for task in tasks[1:]:
        if read_logins(task).keys() != stored.keys():
            raise LoginsError(f"{task}/{LOGINS_FILE}: other annotators than "
                              f"{tasks[0]}/{LOGINS_FILE}; make them agree first")
    if isinstance(add, int):
        taken = {name.lower() for name in stored}
        names, number = [], 1
        while len(names) < add:
            candidate = f"annotator{number:02d}"
            if candidate not in taken:
                names.append(candidate)
            number += 1
        add = names
    new = login_names(add) if add else []
    for name in new:
        if name.lower() in {n.lower() for n in stored}:
            raise LoginsError(f"--add: {name!r} already has a login (use --reset)")
    for name in reset:
        if name not in stored:
            raise LoginsError(f"--reset: no login named {name!r} in {study_dir}")
    if not new and not reset:
        raise LoginsError("nothing to do: give --add or --reset")
    passwords = {name: new_password() for name in list(new) + list(reset)}
    stored.update({name: hash_password(password) for name, password in passwords.items()})
    for task in tasks:
        config_path = os.path.join(task, "config.yaml")
        with open(config_path, encoding="utf-8") as handle:
            config = yaml.safe_load(handle)
        write_logins(task, stored)
        atomic_write_text(config_path, yaml.safe_dump(password_login_config(config, stored),
                                                      sort_keys=False, width=100))
    return passwords
