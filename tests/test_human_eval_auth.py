"""Annotators cannot act as each other: two logged-in HTTP clients against a loopback server.

Local study: alice and bob log in with the passwords ``build`` made. bob, knowing alice's
name, tries every way to read or change her answers (her name with his password, with no
password, her name in the URL as a Prolific id, API calls naming her, the admin API) and
each fails while alice's answers stay as she left them. Crowd study (Prolific): only
well-formed ids get in, and a worker id is tied to the session it first came with, across
a restart. Servers are bound to 127.0.0.1 on a free port; each runs in its own process
group, killed at the end.
"""
import json
import os
import re
import signal
import stat
import subprocess
import sys
from contextlib import contextmanager

import pytest

pytest.importorskip("potato")
requests = pytest.importorskip("requests")

from potato_browser import free_port, wait_until_up  # noqa: E402

from parlai_empathy.human_eval.items import EvalItem  # noqa: E402
from parlai_empathy.human_eval.potato_task import build_study  # noqa: E402
from parlai_empathy.human_eval.serve import crowd_config  # noqa: E402

INSTANCE_RE = re.compile(r'id="instance_id"[^>]*value="([^"]*)"')
USER_RE = re.compile(r'id="username-display">([^<]*)<')
ALICE_ANSWERS = {"empathy:5": "5", "relevance:1": "1", "fluency:4": "4"}
BOB_ANSWERS = {"empathy:1": "1", "relevance:5": "5", "fluency:2": "2"}
PID_A, PID_B = "5f0c6a1e9b3d4c2a1f8e7d60", "60a1b2c3d4e5f60718293a4b"
STUDY = "64b8f0e2a1c3d5e7f9a0b1c2"
SESSION_A, SESSION_B = "65aa00bb11cc22dd33ee44ff", "65ab01bc12cd23de34ef4501"


def _items(n=4):
    return [EvalItem(f"auth-{i}", "auth", "test", "g", [{"speaker": "Speaker",
                                                         "text": f"My news {i}."}],
                     "ok", {"only": f"Reply {i}."}) for i in range(n)]


@contextmanager
def _server(task_dir, config="config.yaml"):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "parlai_empathy.human_eval", "serve", str(task_dir),
         "--config", config, "--port", str(port)],
        stdout=open(os.path.join(task_dir, "server.log"), "ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until_up(url, process)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def _whoami(session, url):
    """The annotator this HTTP session is logged in as, or None."""
    page = session.get(url + "/annotate", timeout=30).text
    match = USER_RE.search(page)
    return match.group(1) if match else None


def _login(url, user, password=None, **extra):
    session = requests.Session()
    form = {"email": user, **extra}
    if password is not None:
        form["pass"] = password
    session.post(url + "/auth", data=form, timeout=30)
    return session


def _answers(session, url, instance):
    return session.get(url + "/get_annotations", params={"instance_id": instance},
                       timeout=30).json()["label_annotations"]


def _stored(task, user):
    with open(task / "annotation_output" / user / "user_state.json") as handle:
        return json.load(handle)["instance_id_to_label_to_value"]


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_local_annotators_cannot_act_as_each_other(tmp_path):
    study = build_study(_items(), str(tmp_path), annotators=2, pairs=[],
                        logins=["alice", "bob"])
    task = tmp_path / "ratings"
    password = study.passwords
    with _server(task) as url:
        alice = _login(url, "alice", password["alice"])
        assert _whoami(alice, url) == "alice"
        instance = INSTANCE_RE.search(alice.get(url + "/annotate").text).group(1)
        reply = alice.post(url + "/updateinstance", timeout=30,
                           json={"instance_id": instance, "annotations": ALICE_ANSWERS})
        assert reply.status_code == 200, reply.text[:300]
        hers = _answers(alice, url, instance)
        assert hers == {"empathy": ["5"], "relevance": ["1"], "fluency": ["4"]}
        stored = _stored(task, "alice")

        # no way in as alice without her password
        attempts = {
            "no password field": _login(url, "alice"),
            "empty password": _login(url, "alice", ""),
            "bob's password": _login(url, "alice", password["bob"]),
            "a guess": _login(url, "alice", "alice"),
            "a name build never made": _login(url, "carol", password["bob"]),
        }
        register = requests.Session()
        reply = register.post(url + "/register", data={"email": "carol", "pass": "x"},
                              timeout=30)
        attempts["self-registration"] = register
        assert reply.status_code == 403
        prolific = requests.Session()
        prolific.get(url + "/", params={"PROLIFIC_PID": "alice"}, timeout=30)
        attempts["alice as a Prolific id"] = prolific
        for how, session in attempts.items():
            assert _whoami(session, url) is None, how
            assert session.get(url + "/api/current_instance", timeout=30).status_code == 401

        # bob, logged in, names alice everywhere
        bob = _login(url, "bob", password["bob"])
        assert _whoami(bob, url) == "bob"
        bob.post(url + "/auth", data={"email": "alice", "pass": password["bob"]}, timeout=30)
        bob.post(url + "/auth", data={"email": "alice"}, timeout=30)
        bob.post(url + "/", data={"email": "alice"}, timeout=30)
        bob.get(url + "/", params={"PROLIFIC_PID": "alice"}, timeout=30)
        assert _whoami(bob, url) == "bob"
        assert _answers(bob, url, instance) == {}  # he does not see hers
        seen = bob.get(url + "/get_annotations", timeout=30,
                       params={"instance_id": instance, "user_id": "alice",
                               "username": "alice"}).json()["label_annotations"]
        assert seen == {}
        reply = bob.post(url + "/updateinstance", timeout=30,
                         json={"instance_id": instance, "annotations": BOB_ANSWERS,
                               "user_id": "alice", "username": "alice"})
        assert reply.status_code == 200  # stored, but as bob's
        assert _answers(bob, url, instance) == {"empathy": ["1"], "relevance": ["5"],
                                                "fluency": ["2"]}
        for path in ("/admin/user_state/alice", "/admin/api/annotation_history?user_id=alice",
                     "/admin/api/annotators", "/admin/all_instances",
                     f"/admin/item_state/{instance}"):
            reply = bob.get(url + path, allow_redirects=False, timeout=30)
            assert reply.status_code in (401, 403), path
            assert "empathy" not in reply.text, path
        reply = bob.post(url + "/admin/api/user/alice/set_instances", timeout=30,
                         json={"instance_ids": [instance]}, allow_redirects=False)
        assert reply.status_code in (401, 403)
        # the admin key Potato generated on that first admin request is owner-only
        assert _mode(task / "admin_api_key.txt") == 0o600

        # alice's answers are as she left them, on the server and on disk
        assert _answers(alice, url, instance) == hers
        assert _whoami(alice, url) == "alice"
    assert _stored(task, "alice") == stored
    assert instance in _stored(task, "bob")
    for secret in ("config.yaml", "annotators.jsonl", "admin_api_key.txt"):
        assert _mode(task / secret) == 0o600, secret
    assert _mode(tmp_path / "key.json") == 0o600


def test_crowd_login_takes_only_platform_ids_bound_to_their_session(tmp_path):
    build_study(_items(), str(tmp_path), annotators=2, pairs=[], logins=["alice"])
    task = tmp_path / "ratings"
    settings = crowd_config(str(task), "prolific", "https://eval.example.org",
                            completion_code="C0DE")
    assert "PROLIFIC_PID must be 24 hexadecimal characters" in settings["login"]
    assert _mode(task / "config.prolific.yaml") == 0o600
    # the crowd config sends the session cookie over https only; this test speaks plain
    # http on loopback, so it turns that off in its copy
    config = (task / "config.prolific.yaml").read_text()
    assert "session_cookie_secure: true" in config and "annotators.jsonl" not in config
    (task / "config.prolific.yaml").write_text(
        config.replace("session_cookie_secure: true", "session_cookie_secure: false"))

    def arrive(url, pid, session_id=SESSION_A, study=STUDY, client=None):
        client = client or requests.Session()
        params = {"PROLIFIC_PID": pid, "STUDY_ID": study, "SESSION_ID": session_id}
        reply = client.get(url + "/", params={k: v for k, v in params.items() if v},
                           timeout=30)
        return client, reply

    with _server(task, "config.prolific.yaml") as url:
        for pid, session_id, study in [
            ("worker42", SESSION_A, STUDY),  # a guessable name
            (PID_A.upper(), SESSION_A, STUDY),  # not Prolific's form
            (PID_A[:-1], SESSION_A, STUDY),
            (PID_A, None, STUDY),
            (PID_A, SESSION_A, None),
            (PID_A, "x" * 24, STUDY),
        ]:
            client, reply = arrive(url, pid, session_id, study)
            assert reply.status_code == 403, (pid, session_id, study)
            assert "not a valid Prolific study link" in reply.text
            assert _whoami(client, url) is None
        # the build's local accounts do not exist here, nor does a typed name
        client = _login(url, "alice", "")
        assert _whoami(client, url) is None
        client = _login(url, PID_A)
        assert _whoami(client, url) is None

        alice, reply = arrive(url, PID_A, SESSION_A)
        assert reply.status_code == 200 and _whoami(alice, url) == PID_A
        instance = INSTANCE_RE.search(alice.get(url + "/annotate").text).group(1)
        alice.post(url + "/updateinstance", timeout=30,
                   json={"instance_id": instance, "annotations": ALICE_ANSWERS})
        hers = _answers(alice, url, instance)
        assert hers == {"empathy": ["5"], "relevance": ["1"], "fluency": ["4"]}

        bob, reply = arrive(url, PID_B, SESSION_B)
        assert _whoami(bob, url) == PID_B
        # bob knows alice's Prolific id, not her session
        thief, reply = arrive(url, PID_A, SESSION_B)
        assert reply.status_code == 403 and "another session" in reply.text
        assert _whoami(thief, url) is None
        reply = bob.post(url + "/auth", data={"email": PID_A}, timeout=30)
        assert reply.status_code == 403
        arrive(url, PID_A, SESSION_B, client=bob)
        assert _whoami(bob, url) == PID_B
        assert _answers(bob, url, instance) == {}
        # alice comes back through her own link
        again, _ = arrive(url, PID_A, SESSION_A)
        assert _whoami(again, url) == PID_A
        assert _answers(again, url, instance) == hers
    assert _mode(task / "crowd_sessions.json") == 0o600
    stored = _stored(task, PID_A)

    with _server(task, "config.prolific.yaml") as url:  # the binding survives a restart
        thief, reply = arrive(url, PID_A, SESSION_B)
        assert reply.status_code == 403 and _whoami(thief, url) is None
        alice, _ = arrive(url, PID_A, SESSION_A)
        assert _answers(alice, url, instance) == hers
    assert _stored(task, PID_A) == stored
