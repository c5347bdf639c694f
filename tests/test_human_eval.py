"""Human evaluation without a browser: items, the Potato tasks, annotation import, analysis,
crowd settings and the Conversations export (the browser and load tests are separate)."""
import json
import os
import re
import sys

import pytest
import yaml

from parlai_cli import run_command
from potato_browser import parse_logins

from parlai_empathy.human_eval.analysis import analyze, mean_ci
from parlai_empathy.human_eval.annotations import read_study
from parlai_empathy.human_eval.conversations_export import export_conversations
from parlai_empathy.human_eval.items import (
    EvalItem,
    ItemsError,
    generate_responses,
    read_items,
    sample_items,
    write_items,
)
from parlai_empathy.human_eval.logins import LoginsError, read_logins
from parlai_empathy.human_eval.potato_server import html_safe_json
from parlai_empathy.human_eval.potato_task import build_study
from parlai_empathy.human_eval.serve import ServeError, check_login, crowd_config

HE = [sys.executable, "-m", "parlai_empathy.human_eval"]


def _items(n=6, models=("moel", "base")):
    return [
        EvalItem(f"ed-test-{i:05d}", "empathetic_dialogues", "test", f"emo{i % 3}",
                 [{"speaker": "Speaker", "text": f"Speaker turn {i}"},
                  {"speaker": "Listener", "text": f"Listener turn {i}"},
                  {"speaker": "Speaker", "text": f"Last turn {i}"}],
                 f"reference {i}", {m: f"reply {i}.{n}" for n, m in enumerate(models)})
        for i in range(n)
    ]


def test_html_safe_json_cannot_close_a_script_element():
    payload = {"text": "</script><script>alert(1)</script> & <b>x</b>"}
    encoded = html_safe_json(json.dumps(payload))
    assert "<" not in encoded and ">" not in encoded and "&" not in encoded
    assert json.loads(encoded) == payload  # JSON.parse gives the same characters back


def test_items_round_trip_and_errors(tmp_path):
    path = tmp_path / "items.jsonl"
    items = _items()
    write_items(str(path), items)
    assert read_items(str(path)) == items
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n{not json\n")
    with pytest.raises(ItemsError, match=r"items.jsonl:2: not JSON"):
        read_items(str(path))
    path.write_text(lines[0] + "\n" + lines[0] + "\n")
    with pytest.raises(ItemsError, match=r":2: duplicate item_id"):
        read_items(str(path))
    record = json.loads(lines[0])
    del record["context"]
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(ItemsError, match=r":1: .*context"):
        read_items(str(path))
    with pytest.raises(ItemsError, match="no such items file"):
        read_items(str(tmp_path / "missing.jsonl"))


def test_sample_items_is_stratified_and_seeded():
    examples = [{"emotion": f"e{i % 4}", "context": [{"speaker": "Speaker", "text": str(i)}],
                 "reference": f"r{i}"} for i in range(40)]
    first = sample_items(examples, "t", "test", "emotion", 2, seed=1)
    assert len(first) == 8
    assert sorted(i.group for i in first) == sorted(["e0", "e1", "e2", "e3"] * 2)
    assert all(examples[int(i.item_id.split("-")[-1])]["emotion"] == i.group for i in first)
    assert [i.item_id for i in sample_items(examples, "t", "test", "emotion", 2, seed=1)] == \
        [i.item_id for i in first]
    assert [i.item_id for i in sample_items(examples, "t", "test", "emotion", 2, seed=2)] != \
        [i.item_id for i in first]
    with pytest.raises(ItemsError, match="fewer than --per-group 11"):
        sample_items(examples, "t", "test", "emotion", 11, seed=1)
    with pytest.raises(ItemsError, match="no 'situation' field.*--group-field"):
        sample_items(examples, "t", "test", "situation", 1, seed=1)


def test_build_study_hides_models_and_records_the_order(tmp_path):
    items = _items(n=40)
    key = build_study(items, str(tmp_path), seed=7).key
    assert set(key["tasks"]) == {"ratings", "ab-moel-vs-base"}
    ratings = key["tasks"]["ratings"]
    assert len(ratings["instances"]) == 80
    assert {(v["item_id"], v["model"]) for v in ratings["instances"].values()} == {
        (i.item_id, m) for i in items for m in ("moel", "base")}
    ab = key["tasks"]["ab-moel-vs-base"]
    orders = {(v["A"], v["B"]) for v in ab["instances"].values()}
    assert orders == {("moel", "base"), ("base", "moel")}  # both orders drawn
    for task in key["tasks"]:
        served = (tmp_path / task / "data" / "items.jsonl").read_text()
        assert "moel" not in served and "base" not in served and "ed-test" not in served
        config = yaml.safe_load((tmp_path / task / "config.yaml").read_text())
        assert config["num_annotators_per_item"] == 3
        assert config["max_annotations_per_item"] == 3
        assert config["assignment_strategy"] == "least_annotated"
        assert config["attention_checks"]["enabled"] is True
        assert config["persist_sessions"] is True and len(config["secret_key"]) == 64
        checks = [json.loads(line) for line in
                  (tmp_path / task / "data" / "attention_checks.jsonl").read_text().splitlines()]
        assert len(checks) == 3
        assert {c["id"]: c["expected_answer"] for c in checks} == key["tasks"][task]["checks"]
    # A/B data show each item's responses in the recorded order
    shown = {json.loads(line)["id"]: json.loads(line)["responses"] for line in
             (tmp_path / "ab-moel-vs-base" / "data" / "items.jsonl").read_text().splitlines()}
    by_id = {i.item_id: i for i in items}
    for iid, spec in ab["instances"].items():
        item = by_id[spec["item_id"]]
        assert shown[iid] == [item.responses[spec["A"]], item.responses[spec["B"]]]
    with pytest.raises(ItemsError, match="no model named 'mime'"):
        build_study(items, str(tmp_path / "x"), pairs=[("moel", "mime")])
    assert os.listdir(tmp_path / "x") == []  # nothing half-built
    with pytest.raises(ItemsError, match="already holds a study"):
        build_study(items, str(tmp_path))


def _user_state(task_dir, user, answers, assigned=None):
    """A Potato user_state.json as Potato 2.12.1 writes it."""
    folder = os.path.join(task_dir, "annotation_output", user)
    os.makedirs(folder, exist_ok=True)
    labels = {
        iid: [[{"schema": schema, "name": value if schema != "preference" else "selection"},
               value] for schema, value in values.items()]
        for iid, values in answers.items()
    }
    with open(os.path.join(folder, "user_state.json"), "w") as f:
        json.dump({"user_id": user, "instance_id_ordering": list(answers if assigned is None else assigned),
                   "instance_id_to_label_to_value": labels}, f)


def test_analysis_numbers(tmp_path):
    from scipy import stats

    items = _items(n=4)
    key = build_study(items, str(tmp_path), seed=3, annotators=2).key
    ratings = key["tasks"]["ratings"]
    check_id, expected = next(iter(ratings["checks"].items()))
    moel = sorted(i for i, v in ratings["instances"].items() if v["model"] == "moel")
    base = sorted(i for i, v in ratings["instances"].items() if v["model"] == "base")
    scores = {"u1": [5, 4, 4, 3], "u2": [4, 4, 2, 3]}
    for user, values in scores.items():
        answers = {iid: {"empathy": str(v), "relevance": "3", "fluency": "4"}
                   for iid, v in zip(moel, values)}
        answers.update({iid: {"empathy": "2", "relevance": "2", "fluency": "5"} for iid in base})
        answers[check_id] = expected
        _user_state(str(tmp_path / "ratings"), user, answers)
    # u3 fails the check: excluded; u4 answers an item it was never given: ignored
    bad = {check_id: {s: "5" if v != "5" else "1" for s, v in expected.items()},
           moel[0]: {"empathy": "1", "relevance": "1", "fluency": "1"}}
    _user_state(str(tmp_path / "ratings"), "u3", bad)
    _user_state(str(tmp_path / "ratings"), "u4",
                {moel[1]: {"empathy": "1", "relevance": "1", "fluency": "1"}}, assigned=[])

    ab = key["tasks"]["ab-moel-vs-base"]
    ab_ids = sorted(ab["instances"])
    # u1 always picks moel, u2 picks moel on two items and ties on two
    def pick(iid, model):
        return "A" if ab["instances"][iid]["A"] == model else "B"
    _user_state(str(tmp_path / "ab-moel-vs-base"), "u1",
                {iid: {"preference": pick(iid, "moel")} for iid in ab_ids})
    _user_state(str(tmp_path / "ab-moel-vs-base"), "u2",
                {iid: {"preference": pick(iid, "moel") if n < 2 else "tie"}
                 for n, iid in enumerate(ab_ids)})

    result = analyze(read_study(str(tmp_path)))
    cell = result["ratings"]["moel"]["empathy"]
    assert cell["mean"] == pytest.approx(sum(scores["u1"] + scores["u2"]) / 8)
    per_response = [(a + b) / 2 for a, b in zip(scores["u1"], scores["u2"])]
    half = stats.t.ppf(0.975, 3) * stats.sem(per_response)
    assert cell["ci95"] == pytest.approx(half)
    assert cell["ratings"] == 8 and cell["responses"] == 4
    assert result["ratings"]["base"]["fluency"]["mean"] == 5.0
    assert result["ratings"]["base"]["fluency"]["ci95"] == 0.0
    people = result["annotators"]["ratings"]
    assert people["excluded"] == ["u3"] and people["total"] == 4
    assert people["ignored_unassigned_answers"] == 1 and people["without_checks"] == 1
    assert result["agreement"]["ratings"]["relevance"] == 1.0  # all identical

    duel = result["ab"]["ab-moel-vs-base"]
    assert duel["counts"] == {"win": 6, "lose": 0, "tie": 2}
    assert duel["percent"]["win"] == pytest.approx(75.0)
    assert duel["items_for_first"] == 4
    assert duel["sign_test_p"] == pytest.approx(stats.binomtest(4, 4, 0.5).pvalue)

    # the command writes the three files and the papers' table header
    out = tmp_path / "results"
    proc = run_command(HE + ["analyze", str(tmp_path), "--out", str(out)], merge_stderr=False)
    assert proc.returncode == 0, proc.stderr
    assert "| moel | 3.62 ± " in proc.stdout  # 29 / 8
    assert "| moel vs base | 75.00 | 0.00 | 25.00 | 8 | 4 | 0.1250 |" in proc.stdout
    assert (tmp_path / "results.png").stat().st_size > 1000
    assert json.loads((tmp_path / "results.json").read_text())["ab"]


def test_mean_ci_small_samples():
    assert mean_ci([]) == {"mean": None, "ci95": None, "n": 0}
    assert mean_ci([3.0]) == {"mean": 3.0, "ci95": None, "n": 1}


def test_analyze_without_a_study_says_so(tmp_path):
    proc = run_command(HE + ["analyze", str(tmp_path), "--out", str(tmp_path / "r")],
                       merge_stderr=False)
    assert proc.returncode == 2
    assert "key.json: no answer key" in proc.stderr
    assert not (tmp_path / "r.md").exists()


def test_crowd_config(tmp_path):
    build_study(_items(), str(tmp_path))
    settings = crowd_config(str(tmp_path / "ratings"), "prolific", "https://eval.example.org",
                            completion_code="C0DE")
    config = yaml.safe_load(open(settings["config"]))
    assert config["login"] == {"type": "url_direct", "url_argument": "PROLIFIC_PID"}
    # the platform's ids are the login: the study's password accounts are not carried over
    assert "authentication" not in config and config["user_config"]["allow_all_users"]
    assert check_login(str(tmp_path / "ratings"), "config.prolific.yaml") == "PROLIFIC_PID"
    assert "SESSION_ID" in settings["login"] and "act as that worker" in settings["login"]
    assert config["completion_code"] == "C0DE"
    assert settings["study_url"].startswith(
        "https://eval.example.org/?PROLIFIC_PID={{%PROLIFIC_PID%}}")
    assert settings["completion_url"].endswith("cc=C0DE")
    with pytest.raises(ServeError, match="https"):
        crowd_config(str(tmp_path / "ratings"), "prolific", "http://eval.example.org")
    with pytest.raises(ServeError, match="no Potato config"):
        crowd_config(str(tmp_path / "nothing"), "mturk", "https://x.org")


def _mode(path):
    return os.stat(path).st_mode & 0o777


def test_build_makes_password_logins_and_keeps_only_hashes(tmp_path):
    from potato.authentication import _verify_password

    proc = run_command(HE + ["build", str(_write(tmp_path, _items())), "--out",
                             str(tmp_path / "study"), "--logins", "alice,bob"],
                       merge_stderr=False)
    assert proc.returncode == 0, proc.stderr
    passwords = parse_logins(proc.stdout)
    assert set(passwords) == {"alice", "bob"}
    assert all(re.fullmatch(r"([a-z2-7]{4}-){3}[a-z2-7]{4}", p) for p in passwords.values())
    for task in ("ratings", "ab-moel-vs-base"):
        folder = tmp_path / "study" / task
        stored = read_logins(str(folder))
        assert set(stored) == {"alice", "bob"}
        # Potato itself accepts each password for its own name only
        assert _verify_password(passwords["alice"], stored["alice"])
        assert not _verify_password(passwords["bob"], stored["alice"])
        for name in ("annotators.jsonl", "config.yaml"):  # the config holds the session key
            text = (folder / name).read_text()
            assert not any(p in text for p in passwords.values())
            assert _mode(folder / name) == 0o600, name
        config = yaml.safe_load((folder / "config.yaml").read_text())
        assert config["require_password"] is True
        assert config["user_config"] == {"allow_all_users": False, "users": ["alice", "bob"]}
        assert check_login(str(folder)) == "password"
    assert _mode(tmp_path / "study" / "key.json") == 0o600
    assert not any(p in (tmp_path / "study" / "key.json").read_text()
                   for p in passwords.values())
    # default: enough logins for every instance's annotators
    assert list(build_study(_items(n=4), str(tmp_path / "d"), annotators=2).passwords) == \
        ["annotator01", "annotator02"]
    built = build_study(_items(n=10), str(tmp_path / "e"), annotators=3, per_annotator=8)
    assert len(built.passwords) == 8  # 20 responses x 3 / 8, rounded up
    for bad, message in [(["al ice"], "not a valid login name"), (["a", "A"], "given twice"),
                         (0, "at least one")]:
        with pytest.raises(LoginsError, match=message):
            build_study(_items(), str(tmp_path / "x"), logins=bad)
        assert not (tmp_path / "x" / "key.json").exists()


def _write(tmp_path, items):
    path = tmp_path / "items.jsonl"
    write_items(str(path), items)
    return path


def test_serve_refuses_a_login_anyone_could_use(tmp_path):
    build_study(_items(), str(tmp_path), logins=["alice"])
    task = tmp_path / "ratings"
    config = yaml.safe_load((task / "config.yaml").read_text())
    # the open login every study had before: a name and nothing else
    for change, message in [
        ({"require_password": False}, "open login"),
        ({"user_config": {"allow_all_users": True}}, "open login"),
        ({"authentication": {"method": "in_memory"}}, "user_config_path annotators.jsonl"),
        ({"authentication": {"method": "database", "user_config_path": "annotators.jsonl"}},
         "method in_memory"),
        ({"debug": True}, "debug: true"),
        ({"login": {"type": "url_direct", "url_argument": "name"}}, "checks only"),
    ]:
        (task / "config.yaml").write_text(yaml.safe_dump({**config, **change}))
        with pytest.raises(ServeError, match=message):
            check_login(str(task))
        proc = run_command(HE + ["serve", str(task), "--port", "1"], merge_stderr=False,
                           timeout=60)
        assert proc.returncode == 2 and message in proc.stderr
    (task / "config.yaml").write_text(yaml.safe_dump(config))
    (task / "annotators.jsonl").write_text("")
    with pytest.raises(ServeError, match="no annotator logins"):
        check_login(str(task))


def test_logins_step_adds_resets_and_closes_an_open_study(tmp_path):
    from potato.authentication import _verify_password

    built = build_study(_items(), str(tmp_path), logins=["alice"])
    tasks = [tmp_path / t for t in built.key["tasks"]]
    # a study built before logins existed: open login, no accounts
    for task in tasks:
        config = yaml.safe_load((task / "config.yaml").read_text())
        config.update(require_password=False, user_config={"allow_all_users": True})
        del config["authentication"]
        (task / "config.yaml").write_text(yaml.safe_dump(config))
        (task / "annotators.jsonl").unlink()
    proc = run_command(HE + ["logins", str(tmp_path), "--add", "alice,bob"], merge_stderr=False)
    assert proc.returncode == 0, proc.stderr
    first = parse_logins(proc.stdout)
    assert set(first) == {"alice", "bob"}
    for task in tasks:
        assert check_login(str(task)) == "password"
        assert _mode(task / "annotators.jsonl") == 0o600
    proc = run_command(HE + ["logins", str(tmp_path), "--add", "1", "--reset", "bob"],
                       merge_stderr=False)
    assert proc.returncode == 0, proc.stderr
    second = parse_logins(proc.stdout)
    assert set(second) == {"annotator01", "bob"}
    for task in tasks:
        stored = read_logins(str(task))
        assert set(stored) == {"alice", "bob", "annotator01"}
        assert _verify_password(first["alice"], stored["alice"])
        assert _verify_password(second["bob"], stored["bob"])
        assert not _verify_password(first["bob"], stored["bob"])
    for args, message in [(["--add", "alice"], "already has a login"),
                          (["--reset", "carol"], "no login named 'carol'"),
                          ([], "nothing to do")]:
        proc = run_command(HE + ["logins", str(tmp_path)] + args, merge_stderr=False)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_login_guard_checks_crowd_ids_and_binds_sessions(tmp_path):
    """The server's request hook on its own (the HTTP test runs it inside Potato)."""
    from flask import Flask

    from parlai_empathy.human_eval.potato_server import CrowdBindings, login_guard

    app = Flask(__name__)
    app.secret_key = "test"
    path = str(tmp_path / "crowd_sessions.json")

    def guard(url, method="GET", platform="PROLIFIC_PID", bindings=None, **kwargs):
        config = {"login": {"type": "url_direct", "url_argument": platform}}
        with app.test_request_context(url, method=method, **kwargs):
            refused = login_guard(config, bindings or CrowdBindings(path))
            return refused and refused[1]

    pid, study, first, second = "a" * 24, "b" * 24, "c" * 24, "d" * 24
    assert guard(f"/?PROLIFIC_PID={pid}&STUDY_ID={study}&SESSION_ID={first}") is None
    assert guard(f"/?PROLIFIC_PID={pid}&STUDY_ID={study}&SESSION_ID={first}") is None
    assert guard(f"/?PROLIFIC_PID={pid}&STUDY_ID={study}&SESSION_ID={second}") == 403
    assert _mode(path) == 0o600 and first not in open(path).read()
    for url in (f"/?PROLIFIC_PID=alice&STUDY_ID={study}&SESSION_ID={first}",
                f"/?PROLIFIC_PID={pid}&SESSION_ID={first}",
                f"/?PROLIFIC_PID={pid}&STUDY_ID={study}&SESSION_ID={first[:-1]}"):
        assert guard(url) == 403, url
    assert guard("/annotate") is None  # not a login
    assert guard("/auth", method="POST", data={"email": pid}) == 403
    assert guard("/", method="POST", data={"email": pid}) == 403
    assert guard("/register", method="POST", data={"email": "x", "pass": "y"}) == 403
    worker, assignment, hit = "A1B2C3D4E5F6G7", "3" + "Z" * 29, "4" + "Y" * 29
    mturk = f"/?workerId={worker}&assignmentId={assignment}&hitId={hit}"
    assert guard(mturk, platform="workerId") is None
    assert guard(mturk.replace(assignment, "5" + "X" * 29), platform="workerId") == 403
    assert guard(mturk.replace(worker, "bob"), platform="workerId") == 403
    assert guard("/?workerId=bob&assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE",
                 platform="workerId") is None  # MTurk's preview page logs nobody in
    # local (password) tasks: self-registration refused, everything else is Potato's
    with app.test_request_context("/register", method="POST", data={"email": "x"}):
        assert login_guard({}, CrowdBindings(path))[1] == 403
    with app.test_request_context("/auth", method="POST", data={"email": "x", "pass": "y"}):
        assert login_guard({}, CrowdBindings(path)) is None


def test_conversations_export_reads_back(tmp_path):
    from parlai.utils.conversations import Conversations

    items = _items(n=3)
    paths = export_conversations(items, str(tmp_path))
    assert set(paths) == {"moel", "base"}
    conversations = list(Conversations(paths["moel"]))
    assert len(conversations) == 3
    turns = conversations[0].turns
    assert [t["id"] for t in turns] == ["Speaker", "Listener", "Speaker", "moel"]
    assert turns[-1]["text"] == "reply 0.0"
    assert turns[-2]["text"] == "Last turn 0"


CONTEXTS = [  # lengths differ, so that batches pad
    ["I failed my driving test today."],
    ["My dog died last week and the house feels empty without her.", "Oh no, I'm so sorry.",
     "Thanks. I keep expecting her at the door when I get home."],
    ["I got the job!"],
    ["My sister surprised me with concert tickets for my birthday.", "That's so sweet of her!",
     "I know, I didn't expect it at all."],
    ["Someone stole my bike from outside the library."],
    ["I am nervous about my exam tomorrow, I have studied for weeks but still feel unready."],
]


@pytest.mark.parametrize("model_file", ["zoo:empathy/tiny_generator_ed/model",
                                        "zoo:empathy/moel_ed/model"], ids=["tiny", "moel"])
def test_replies_do_not_depend_on_the_batch(model_file, tmp_path):
    """Contexts decoded together (``-bs``, ParlAI's batch_act) get the replies each gets alone,
    with the model's own decoding (MoEL: beam 5, the papers' rule)."""
    def generate(batchsize):
        items = [EvalItem(f"x-{n}", "t", "test", "g",
                          [{"speaker": ("Speaker", "Listener")[k % 2], "text": text}
                           for k, text in enumerate(turns)], "") for n, turns in enumerate(CONTEXTS)]
        generate_responses(items, "m", model_file, str(tmp_path / "data"), batchsize=batchsize)
        return [item.responses["m"] for item in items]

    alone = generate(1)
    assert all(alone) and len(set(alone)) > 1, alone
    assert generate(4) == alone  # one batch of 4, one of 2
    with pytest.raises(ItemsError, match="at least 1"):
        generate(0)


def test_sample_128_ed_items_with_a_zoo_model(ed_datapath, tmp_path):
    from parlai_cli import run_parlai

    out = tmp_path / "items.jsonl"
    proc = run_parlai([
        "empathy_human_eval_sample", "-t", "empathetic_dialogues",
        "--train-experiencer-only", "true", "--datapath", ed_datapath,
        "-mfs", "zoo:empathy/tiny_generator_ed/model", "--model-names", "tiny",
        "--inference", "greedy", "--out", out,
    ])
    assert "wrote 128 items (5257 examples in the split)" in proc.stdout
    # zoo models are fetched into the command's --datapath
    assert os.path.isfile(os.path.join(ed_datapath, "models", "empathy", "tiny_generator_ed",
                                       "model"))
    items = read_items(str(out))
    groups = {}
    for item in items:
        groups[item.group] = groups.get(item.group, 0) + 1
        assert item.context[-1]["speaker"] == "Speaker" and item.responses["tiny"]
    assert len(groups) == 32 and set(groups.values()) == {4}
    # the split is read with its dialogue history: later turns carry earlier ones
    assert any(len(item.context) >= 3 for item in items)
    bad = run_parlai(["empathy_human_eval_sample", "-t", "empathetic_dialogues",
                      "--datapath", ed_datapath, "-mfs", "zoo:empathy/tiny_generator_ed/model",
                      "--group-field", "nope", "--out", tmp_path / "x.jsonl"], check=False)
    assert bad.returncode != 0
    assert "no 'nope' field" in bad.stdout
    assert not (tmp_path / "x.jsonl").exists()
    missing = run_parlai(["empathy_human_eval_sample", "-t", "empathetic_dialogues",
                          "--datapath", ed_datapath, "-mfs", tmp_path / "nope" / "model",
                          "--out", tmp_path / "y.jsonl"], check=False)
    assert missing.returncode != 0
    assert "nope/model: no such file" in missing.stdout
    assert not (tmp_path / "y.jsonl").exists()
