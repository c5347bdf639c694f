"""End to end: a Potato study from two trained models, annotated in headless Chromium.

Two small generators trained on EmpatheticDialogues (the bundled demo zoo model and one
trained here for 30 steps) answer real ED test contexts; the study's ratings and A/B tasks
are served on 127.0.0.1 and two annotators work through them in a real browser. The
analysis must give back exactly the numbers implied by what the browser submitted. Set
PARLAI_EMPATHY_SCREENSHOTS=DIR to keep a screenshot of each page type there (docs/ holds
the committed ones). The MIME issue's study, MIME against MoEL from their zoo releases on the
128 items of the papers' protocol, is built, served and answered in its own test.
"""
import hashlib
import json
import os
import subprocess
import sys

import pytest

from parlai_cli import kill_group, run_command, run_parlai

REQUIRE_BROWSER = bool(os.environ.get("PARLAI_EMPATHY_REQUIRE_BROWSER"))  # set by .ci/run
if not REQUIRE_BROWSER:  # in CI a missing module is an error, not a skip
    pytest.importorskip("playwright")
    pytest.importorskip("potato")

from potato_browser import (  # noqa: E402
    CHROMIUM,
    annotate_all,
    check_answer,
    free_port,
    launch,
    login,
    parse_logins,
    wait_until_up,
)

if not CHROMIUM or not os.path.exists(CHROMIUM):
    if REQUIRE_BROWSER:  # never skip in CI
        raise RuntimeError("no Chromium, but PARLAI_EMPATHY_REQUIRE_BROWSER is set")
    pytest.skip("no Chromium browser: install Debian's chromium (sudo bash "
                "scripts/install_chromium.sh; scripts/test.sh does it when run as root) or "
                "set PARLAI_EMPATHY_CHROMIUM to a Chromium binary", allow_module_level=True)

HE = [sys.executable, "-m", "parlai_empathy.human_eval"]
SCRIPT = "</script><script>window.__pwned = 1</script><b>not bold</b> & done"
SCALES = ("empathy", "relevance", "fluency")


def _he(*args, cwd=None):
    proc = run_command(HE + list(args), cwd=cwd, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:]
    return proc.stdout


@pytest.fixture(scope="module")
def study(ed_datapath, tmp_path_factory):
    root = tmp_path_factory.mktemp("human_eval")
    short = root / "short_ed" / "model"
    run_parlai([
        "train_model", "-m", "empathy/tiny_generator", "-t", "empathetic_dialogues",
        "--train-experiencer-only", "true", "-mf", short, "--datapath", ed_datapath,
        "--dict-maxtokens", 2000, "--dict-tokenizer", "re", "--dict-lower", "true",
        "--max-train-steps", 120, "--batchsize", 16, "-lr", 3e-3, "--skip-generation", "true",
        "-vmt", "ppl", "-vme", 32, "--short-final-eval", "true",
    ])
    items = root / "items.jsonl"
    run_parlai([
        "empathy_human_eval_sample", "-t", "empathetic_dialogues",
        "--train-experiencer-only", "true", "-dt", "test", "--datapath", ed_datapath,
        "-mfs", f"zoo:empathy/tiny_generator_ed/model,{short}",
        "--model-names", "tiny_ed,short_ed", "--per-group", 1, "--out", items,
    ])
    records = [json.loads(line) for line in items.read_text().splitlines()]
    assert len(records) == 32  # one per ED emotion
    assert len({r["group"] for r in records}) == 32
    assert all(r["responses"]["tiny_ed"] and r["responses"]["short_ed"] for r in records)
    # Keep three items so that two annotators finish in the browser in a few seconds.
    # No model here writes markup, so one response stands for a hostile model output.
    small = records[:3]
    small[1]["responses"]["short_ed"] = SCRIPT
    small_items = root / "items_small.jsonl"
    small_items.write_text("".join(json.dumps(r) + "\n" for r in small))
    study_dir = root / "study"
    built = _he("build", small_items, "--out", study_dir, "--annotators", 2, "--check-every",
                2, "--checks", 1, "--logins", "alice,bob")
    key = json.loads((study_dir / "key.json").read_text())
    return {"dir": study_dir, "key": key, "items": small, "passwords": parse_logins(built)}


class Server:
    def __init__(self, task_dir):
        self.task_dir, self.port = str(task_dir), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            HE + ["serve", self.task_dir, "--port", str(self.port)],
            stdout=open(os.path.join(self.task_dir, "server.log"), "ab"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_until_up(self.url, self.process)

    def kill(self):
        """SIGKILL the whole server group: no chance to flush anything at exit."""
        if self.process:
            kill_group(self.process)  # even when Potato itself has exited: its children
            self.process.wait(timeout=30)


def _rating_chooser(user):
    """Answers that differ between annotators and instances (checks answered right)."""

    def choose(instance, texts):
        check = check_answer(texts, "ratings")
        if check:
            return check
        digest = hashlib.sha256((user + instance).encode()).digest()
        return {s: str(1 + digest[n] % 5) for n, s in enumerate(SCALES)}

    return choose


def _ab_chooser(fail_checks=False):
    """A, B, tie in turn on the real items; checks answered right or (to fail) wrong."""
    turn = []

    def choose(instance, texts):
        check = check_answer(texts, "ab")
        if check:
            if fail_checks:
                return {"preference": "B" if check["preference"] == "A" else "A"}
            return check
        turn.append(instance)
        return {"preference": ("A", "B", "tie")[(len(turn) - 1) % 3]}

    return choose


def _screenshot(page, name):
    folder = os.environ.get("PARLAI_EMPATHY_SCREENSHOTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        page.screenshot(path=os.path.join(folder, name), full_page=True)


def _script_guard(seen):
    """An on_page check: no item text ran as script; the markup item shows literally."""

    def check(page, instance, texts):
        assert page.evaluate("() => window.__pwned") is None, "item text ran as script"
        if any("window.__pwned" in t for t in texts):
            assert SCRIPT in texts, texts  # every character shown as written
            seen.append(instance)

    return check


def test_two_annotators_in_chromium(study):
    from playwright.sync_api import sync_playwright

    key, passwords = study["key"], study["passwords"]
    ratings_spec = key["tasks"]["ratings"]
    ab_name = "ab-tiny_ed-vs-short_ed"
    ab_spec = key["tasks"][ab_name]
    # the data files Potato serves carry no model names
    for task in ("ratings", ab_name):
        served = (study["dir"] / task / "data" / "items.jsonl").read_text()
        assert "tiny_ed" not in served and "short_ed" not in served

    ratings = Server(study["dir"] / "ratings")
    ab = Server(study["dir"] / ab_name)
    submitted = {"ratings": {}, "ab": {}}
    seen_markup = []
    _no_script_ran = _script_guard(seen_markup)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            ratings.start()
            # alice rates everything
            context = browser.new_context()
            page = context.new_page()
            login(page, ratings.url, "alice", passwords["alice"])
            _screenshot(page, "potato_ratings_page.png")
            submitted["ratings"]["alice"] = annotate_all(
                page, "ratings", _rating_chooser("alice"), on_page=_no_script_ran)
            assert seen_markup, "the markup item was never shown"
            context.close()
            # bob rates two pages, the server is killed, restarted, and bob finishes
            context = browser.new_context()
            page = context.new_page()
            login(page, ratings.url, "bob", passwords["bob"])
            first = annotate_all(page, "ratings", _rating_chooser("bob"), on_page=_no_script_ran,
                                 stop_after=2)
            ratings.kill()
            ratings.start()
            page = context.new_page()
            assert not login(page, ratings.url, "bob", passwords["bob"]), \
                "session lost in the restart"
            rest = annotate_all(page, "ratings", _rating_chooser("bob"), on_page=_no_script_ran)
            submitted["ratings"]["bob"] = {**first, **rest}
            context.close()

            ab.start()
            context = browser.new_context()
            page = context.new_page()
            login(page, ab.url, "alice", passwords["alice"])
            _screenshot(page, "potato_ab_page.png")
            submitted["ab"]["alice"] = annotate_all(page, "ab", _ab_chooser(),
                                                    on_page=_no_script_ran)
            context.close()
            context = browser.new_context()
            page = context.new_page()
            login(page, ab.url, "bob", passwords["bob"])
            submitted["ab"]["bob"] = annotate_all(
                page, "ab", _ab_chooser(fail_checks=True),
                on_page=_no_script_ran)
            context.close()
        finally:
            ratings.kill()
            ab.kill()
            browser.close()

    # every real instance was annotated by both annotators, and each met a check
    for task, spec in (("ratings", ratings_spec), ("ab", ab_spec)):
        for user, answers in submitted[task].items():
            real = {i for i in answers if i in spec["instances"]}
            assert real == set(spec["instances"]), (task, user)
            assert any(i in spec["checks"] for i in answers), (task, user, "no check")

    out = study["dir"] / "results"
    _he("analyze", study["dir"], "--out", out)
    result = json.loads((study["dir"] / "results.json").read_text())
    assert (study["dir"] / "results.png").stat().st_size > 0
    assert "| Model | Empathy | Relevance | Fluency |" in (study["dir"] / "results.md").read_text()

    # ratings: both annotators kept (bob's pre-crash answers included)
    expected = {}
    for user, answers in submitted["ratings"].items():
        for instance, values in answers.items():
            if instance in ratings_spec["instances"]:
                model = ratings_spec["instances"][instance]["model"]
                for scale in SCALES:
                    expected.setdefault((model, scale), []).append(int(values[scale]))
    for (model, scale), values in expected.items():
        cell = result["ratings"][model][scale]
        assert cell["ratings"] == len(values) == 6
        assert cell["mean"] == pytest.approx(sum(values) / len(values))
    assert result["annotators"]["ratings"]["excluded_failed_checks"] == 0
    # agreement: the same alpha as the krippendorff package on the submitted matrix
    import krippendorff
    import numpy

    real = sorted(ratings_spec["instances"])
    for scale in SCALES:
        matrix = numpy.array([[float(submitted["ratings"][u][i][scale]) for i in real]
                              for u in ("alice", "bob")])
        assert result["agreement"]["ratings"][scale] == pytest.approx(
            krippendorff.alpha(reliability_data=matrix, level_of_measurement="ordinal"))

    # A/B: bob failed his checks, so only alice counts
    people = result["annotators"][ab_name]
    assert people["excluded"] == ["bob"] and people["total"] == 2
    counts = {"win": 0, "lose": 0, "tie": 0}
    for instance, values in submitted["ab"]["alice"].items():
        if instance not in ab_spec["instances"]:
            continue
        choice = values["preference"]
        if choice == "tie":
            counts["tie"] += 1
        else:
            winner = ab_spec["instances"][instance][choice]
            counts["win" if winner == "tiny_ed" else "lose"] += 1
    ab_result = result["ab"][ab_name]
    assert ab_result["counts"] == counts
    assert counts["win"] + counts["lose"] == 2 and counts["tie"] == 1
    assert ab_result["percent"]["win"] == pytest.approx(100 * counts["win"] / 3)
    assert ab_result["percent"]["tie"] == pytest.approx(100 / 3)


def test_mime_vs_moel_study_from_the_zoo_models(ed_datapath, tmp_path):
    """The MIME issue's study: 128 ED test items (4 per emotion, seed 1234) answered by the
    two zoo releases with their own decoding (beam 5, the papers' rule), built into Potato
    tasks, served locally and answered in Chromium; the analysis counts what was submitted."""
    from playwright.sync_api import sync_playwright

    items = tmp_path / "items.jsonl"
    sampled = run_parlai([
        "empathy_human_eval_sample", "-t", "empathetic_dialogues",
        "--train-experiencer-only", "true", "-dt", "test", "--datapath", ed_datapath,
        "-mfs", "zoo:empathy/mime_ed/model,zoo:empathy/moel_ed/model",
        "--model-names", "mime,moel", "--out", items,
    ])
    assert "wrote 128 items" in sampled.stdout
    records = [json.loads(line) for line in items.read_text().splitlines()]
    groups = {}
    for record in records:
        groups[record["group"]] = groups.get(record["group"], 0) + 1
        assert record["responses"]["mime"].strip() and record["responses"]["moel"].strip()
    assert len(groups) == 32 and set(groups.values()) == {4}
    differ = sum(r["responses"]["mime"] != r["responses"]["moel"] for r in records)
    assert differ > 64, f"the two models answered alike on {128 - differ} of 128 items"

    study_dir = tmp_path / "study"
    built = _he("build", items, "--out", study_dir)
    key = json.loads((study_dir / "key.json").read_text())
    ab_name = "ab-mime-vs-moel"
    assert sorted(key["tasks"]) == [ab_name, "ratings"]
    ratings_spec, ab_spec = key["tasks"]["ratings"], key["tasks"][ab_name]
    rated = [spec["model"] for spec in ratings_spec["instances"].values()]
    assert sorted(rated) == ["mime"] * 128 + ["moel"] * 128
    assert len(ab_spec["instances"]) == 128
    annotator, password = sorted(parse_logins(built).items())[0]

    ratings = Server(study_dir / "ratings")
    ab = Server(study_dir / ab_name)
    replies = {r["responses"][m] for r in records for m in ("mime", "moel")}
    submitted = {}
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            for task, kind, server, choose in (("ratings", "ratings", ratings,
                                                _rating_chooser(annotator)),
                                               (ab_name, "ab", ab, _ab_chooser())):
                server.start()
                page = browser.new_context().new_page()
                login(page, server.url, annotator, password)

                def shown(page, instance, texts):  # the models' replies, as written
                    if instance in key["tasks"][task]["instances"]:
                        assert set(texts) <= replies, texts

                submitted[task] = annotate_all(page, kind, choose, on_page=shown, stop_after=4)
                server.kill()
        finally:
            ratings.kill()
            ab.kill()
            browser.close()

    _he("analyze", study_dir, "--out", study_dir / "results")
    result = json.loads((study_dir / "results.json").read_text())
    real = {task: [i for i in answers if i in key["tasks"][task]["instances"]]
            for task, answers in submitted.items()}
    assert real["ratings"] and real[ab_name]
    counted = sum(result["ratings"][model]["empathy"]["ratings"]
                  for model in result["ratings"])
    assert counted == len(real["ratings"])
    assert sum(result["ab"][ab_name]["counts"].values()) == len(real[ab_name])
