"""Load: 20 simulated annotators submit concurrently to one loopback Potato server.

Each annotator is an HTTP client speaking the annotation page's own protocol (log in with
the password ``build`` made, load the page, POST ``/updateinstance`` with the page's
payload, POST ``/annotate`` with ``next_instance``), all in threads at once. 30 instances
x 2 annotators each = 60 assignments, capped at 3 per annotator, so the 20 annotators must
share the work exactly: every instance ends with two annotations from two different
annotators, none lost, none duplicated. Bounded: loopback only, at most a few minutes.
"""
import json
import os
import re
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("potato")
requests = pytest.importorskip("requests")

from potato_browser import free_port, wait_until_up  # noqa: E402

from parlai_empathy.human_eval.items import EvalItem  # noqa: E402
from parlai_empathy.human_eval.potato_task import RATING_SCALES, build_study  # noqa: E402

ANNOTATORS = 20
INSTANCES = 30
PER_ITEM = 2
PER_ANNOTATOR = 3
INSTANCE_RE = re.compile(r'id="instance_id"[^>]*value="([^"]*)"')


def _items():
    return [
        EvalItem(f"load-{n:02d}", "load", "test", f"g{n % 3}",
                 [{"speaker": "Speaker", "text": f"I have news number {n}."}], "ok",
                 {"only": f"Reply {n}."})
        for n in range(INSTANCES)
    ]


def _annotator(url, user, password, lock, log):
    session = requests.Session()
    page = session.post(url + "/auth", data={"email": user, "pass": password}, timeout=60).text
    assert f'id="username-display">{user}<' in page, (user, "login failed", page[:300])
    done = []
    for _ in range(PER_ANNOTATOR + 10):  # bounded: checks are injected too
        page = session.get(url + "/annotate", timeout=60).text
        match = INSTANCE_RE.search(page)
        if "completed the annotation task" in page or not match:
            break
        instance = match.group(1)
        answers = {f"{s}:{n}": str(n) for n, s in zip((4, 3, 2), RATING_SCALES)}
        if "This is an attention check" in page:
            value = re.search(r"Please answer (\d)", page).group(1)
            answers = {f"{s}:{value}": value for s in RATING_SCALES}
        reply = session.post(url + "/updateinstance",
                             json={"instance_id": instance, "annotations": answers},
                             timeout=60)
        assert reply.status_code == 200, (user, reply.status_code, reply.text[:300])
        session.post(url + "/annotate", json={"action": "next_instance",
                                              "instance_id": instance},
                     headers={"X-Potato-Navigation": "1"}, timeout=60)
        done.append(instance)
    with lock:
        log[user] = done


def test_twenty_concurrent_annotators(tmp_path):
    study = tmp_path / "study"
    users = [f"worker{n:02d}" for n in range(ANNOTATORS)]
    built = build_study(_items(), str(study), annotators=PER_ITEM, check_every=2, checks=1,
                        per_annotator=PER_ANNOTATOR, pairs=[], logins=users)
    key = built.key
    task = study / "ratings"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "parlai_empathy.human_eval", "serve", str(task),
         "--port", str(port)],
        stdout=open(task / "server.log", "wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until_up(url, server)
        lock, log = threading.Lock(), {}
        with ThreadPoolExecutor(max_workers=ANNOTATORS) as pool:
            for future in [pool.submit(_annotator, url, u, built.passwords[u], lock, log)
                           for u in users]:
                future.result(timeout=300)
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=30)
    # `serve` is Potato itself (exec, no child): terminating it left nothing listening
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url, timeout=10)

    spec = key["tasks"]["ratings"]
    from parlai_empathy.human_eval.annotations import read_study

    annotations = read_study(str(study))
    per_instance = {}
    for judgement in annotations.judgements:
        per_instance.setdefault(judgement.instance_id, []).append(judgement.annotator)
    # every instance: exactly PER_ITEM annotations, by different annotators
    assert set(per_instance) == set(spec["instances"])
    assert all(len(v) == PER_ITEM and len(set(v)) == PER_ITEM for v in per_instance.values())
    assert len(annotations.judgements) == INSTANCES * PER_ITEM
    # what the clients submitted is what was stored (nothing lost)
    submitted = sum(len([i for i in v if i in spec["instances"]]) for v in log.values())
    assert submitted == INSTANCES * PER_ITEM
    assert all(j.answers == {"empathy": "4", "relevance": "3", "fluency": "2"}
               for j in annotations.judgements)
    # each annotator was served only instances assigned to them, never another's
    for user, served in log.items():
        with open(task / "annotation_output" / user / "user_state.json") as f:
            assigned = json.load(f)["instance_id_ordering"]
        assert set(served) <= set(assigned), user
        assert len([i for i in assigned if i in spec["instances"]]) <= PER_ANNOTATOR
    records = {a.annotator: a for a in annotations.annotators}
    assert set(records) == set(users)
    assert all(r.checks_failed == 0 and r.unassigned_answers == 0 for r in records.values())
    with open(os.path.join(task, "server.log"), encoding="utf-8", errors="replace") as f:
        assert "Traceback" not in f.read()

