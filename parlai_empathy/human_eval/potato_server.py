"""Start a Potato annotation server with two fixes: item text cannot close a ``<script>``,
and no annotator can log in as another.

**Page embedding.** Potato 2.12.1 writes each item's data into the annotation page as
``<script type="application/json"> {json} </script>`` (``potato.flask_server``, where it
renders ``var_elems``) and its ``easy_json`` leaves ``<`` unescaped. A model response
containing ``</script><script>...`` therefore ends that element early and the rest runs in
the annotator's browser. Escaping the text in the data file does not help: Potato decodes
the file and re-embeds the decoded text. So the page embedding is fixed where Potato writes
it: ``<``, ``>`` and ``&`` become ``\\u003c``, ``\\u003e``, ``\\u0026`` inside that JSON,
which ``JSON.parse`` reads back as the same characters.

**Logins.** A local task uses Potato's password login with the accounts ``build`` made
(:mod:`.logins`); on top of it, a login with no password field is refused (Potato's
in-memory backend treats a missing password as a passwordless login) and so is
self-registration. A crowd task (``login.type: url_direct``) admits a worker only through
the study URL, with every platform id well formed (:data:`.logins.CROWD_ID_FORMATS`), and
ties each worker id to the first session (Prolific ``SESSION_ID``, MTurk ``assignmentId``)
it arrives with, recorded in ``crowd_sessions.json``; the login form is refused there.
Files the server creates (``admin_api_key.txt``, the account roster, the annotations) are
owner-only (umask 077), and an older ``admin_api_key.txt`` is made 0600 at start.

Nothing in Potato's files is edited: this module replaces functions in Potato's module
namespaces and adds a request hook to the app Potato builds, then runs Potato's own
``main``. Use it exactly like ``potato``::

    python -m parlai_empathy.human_eval.potato_server start config.yaml -p 8000 --host 127.0.0.1
"""
import hashlib
import hmac
import html
import json
import os
import stat
import sys
import threading

from parlai_empathy.atomic import atomic_write_text
from parlai_empathy.human_eval.logins import (
    CROWD_BINDING,
    CROWD_ID_FORMATS,
    CROWD_PLATFORM_NAMES,
)

_JSON_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}
CROWD_SESSIONS_FILE = "crowd_sessions.json"
# files in the task folder that hold a secret (or account data): kept 0600
SECRET_FILES = ("admin_api_key.txt", "annotators.jsonl", "user_config.json",
                CROWD_SESSIONS_FILE)
MTURK_PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"


def html_safe_json(text: str) -> str:
    """JSON text that cannot end an HTML element: the three markup characters escaped.

    Valid for any JSON document: outside strings JSON never uses these characters, and
    inside strings the ``\\uXXXX`` forms decode to the same characters.
    """
    for char, escape in _JSON_HTML_ESCAPES.items():
        text = text.replace(char, escape)
    return text


class CrowdBindings:
    """Worker id -> SHA-256 of the first session id it logged in with, kept on disk."""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._bound = None

    def _load(self):
        if self._bound is None:
            self._bound = {}
            if os.path.isfile(self.path):
                with open(self.path, encoding="utf-8") as handle:
                    self._bound = json.load(handle)

    def admit(self, worker: str, visit: str) -> bool:
        """True if ``visit`` is the worker's bound session (binding it on first use)."""
        digest = hashlib.sha256(visit.encode("utf-8")).hexdigest()
        with self._lock:
            self._load()
            if worker in self._bound:
                return hmac.compare_digest(self._bound[worker], digest)
            self._bound[worker] = digest
            atomic_write_text(self.path, json.dumps(self._bound, indent=1))
            return True


def _refuse(message: str):
    from flask import render_template

    try:
        return render_template("error.html", message=message), 403
    except Exception:  # a template that needs more context than we have
        return f"<p>{html.escape(message)}</p>", 403


def login_guard(config: dict, bindings: CrowdBindings):
    """The ``before_request`` hook that checks every way in (see the module docstring)."""
    from flask import request, session

    login = config.get("login") or {}
    if request.method == "POST" and request.path == "/register":
        return _refuse("Accounts are made by the study's researcher: log in with the name "
                       "and password you were given.")
    if login.get("type") not in ("url_direct", "prolific"):
        return None
    argument = login.get("url_argument", "PROLIFIC_PID")
    platform = CROWD_PLATFORM_NAMES.get(argument, "your crowdsourcing platform")
    if request.method == "POST" and (request.path in ("/auth", "/login")
                                     or (request.path == "/" and "email" in request.form)):
        return _refuse(f"Please open this study through its link on {platform}.")
    if request.path != "/" or "username" in session:
        return None
    formats = CROWD_ID_FORMATS.get(argument)
    if formats is None:
        return _refuse(f"This server cannot check {argument!r} ids.")
    if request.args.get("assignmentId") == MTURK_PREVIEW or argument not in request.args:
        return None  # MTurk's preview, or Potato's own "missing parameter" page: no login
    for name, (pattern, form) in formats.items():
        if not pattern.fullmatch(request.args.get(name, "")):
            return _refuse(f"This is not a valid {platform} study link: {name} must be "
                           f"{form}. Please open the study through {platform}.")
    if not bindings.admit(request.args[argument], request.args[CROWD_BINDING[argument]]):
        return _refuse(f"This {platform} id is already taking part in this study in "
                       "another session. Please contact the researcher.")
    return None


def _tighten(folder: str):
    for name in SECRET_FILES:
        path = os.path.join(folder, name)
        if os.path.isfile(path) and os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            os.chmod(path, 0o600)


def patch_potato(task_dir: str = "."):
    """Make Potato's page embedding and logins safe (see the module docstring); idempotent."""
    import potato.flask_server as flask_server
    from potato.authentication import UserAuthenticator

    original = flask_server.easy_json
    if getattr(original, "_parlai_empathy_safe", False):
        return

    def easy_json_html_safe(*args, **kwargs):
        return html_safe_json(original(*args, **kwargs))

    easy_json_html_safe._parlai_empathy_safe = True
    flask_server.easy_json = easy_json_html_safe

    authenticate = UserAuthenticator.authenticate

    def authenticate_with_password(username, password):
        if UserAuthenticator.get_instance().require_password and not password:
            return False  # the backend would take a missing password as "passwordless"
        return authenticate(username, password)

    UserAuthenticator.authenticate = staticmethod(authenticate_with_password)

    create_app = flask_server.create_app
    bindings = CrowdBindings(os.path.join(os.path.abspath(task_dir), CROWD_SESSIONS_FILE))

    def create_guarded_app(*args, **kwargs):
        app = create_app(*args, **kwargs)
        hooks = app.before_request_funcs.setdefault(None, [])
        hooks.insert(0, lambda: login_guard(flask_server.config, bindings))
        return app

    flask_server.create_app = create_guarded_app


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.umask(0o077)  # everything Potato writes (keys, accounts, answers): owner only
    task_dir = os.path.dirname(os.path.abspath(argv[1])) if argv[:1] == ["start"] and \
        len(argv) > 1 else os.getcwd()
    _tighten(task_dir)
    patch_potato(task_dir)
    import potato.flask_server as flask_server

    sys.argv = ["potato"] + argv
    return flask_server.main()


if __name__ == "__main__":
    sys.exit(main())
