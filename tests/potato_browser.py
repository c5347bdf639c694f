"""Drive Potato annotation pages in headless Debian Chromium with Playwright (tests only).

The browser is the system's ``/usr/bin/chromium`` (never a Playwright download), started
with the flags that keep it off the closed network.
"""
import os
import re
import shutil
import socket
import time
import urllib.request

CHROMIUM = os.environ.get("PARLAI_EMPATHY_CHROMIUM") or shutil.which("chromium") or ""
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
DONE_TEXT = "completed the annotation task"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, process, timeout: float = 90.0):
    """Wait for the server at ``url`` to answer; fail early if its process died."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"Potato server exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"Potato server at {url} did not answer within {timeout} s")


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                      headless=True)


def login(page, base_url: str, user: str, password: str) -> bool:
    """Log ``user`` in with the password ``build`` printed; False when the browser's session
    cookie already did (Potato keeps sessions across server restarts)."""
    page.goto(base_url + "/")
    page.wait_for_selector("#login-email, #instance_id", state="attached", timeout=30000)
    if page.locator("#instance_id").count():
        return False
    page.fill("#login-email", user)
    page.fill("#login-pass", password)
    page.click("#login-content button.potato-form-submit")
    page.wait_for_selector("#instance_id", state="attached", timeout=30000)
    return True


def parse_logins(build_output: str) -> dict:
    """{name: password} from the listing ``build`` prints."""
    listing = build_output.split("Annotator logins", 1)[1].splitlines()[1:]
    return dict(line.split() for line in listing if line.startswith("  "))


def _current_instance(page) -> str:
    return page.evaluate("() => { const e = document.getElementById('instance_id');"
                         " return e ? e.value : null; }")


def _wait_for_page(page, previous):
    page.wait_for_function(
        """([previous, done]) => {
            if (document.body && document.body.innerText.includes(done)) return true;
            const e = document.getElementById('instance_id');
            if (!e || !e.value || e.value === previous) return false;
            return !!document.querySelector('.annotation-form');
        }""",
        arg=[previous, DONE_TEXT],
        timeout=30000,
    )


def is_done(page) -> bool:
    return DONE_TEXT in page.inner_text("body")


def shown_texts(page, kind: str):
    """The response text(s) on the page, as the annotator sees them."""
    if kind == "ratings":
        return [page.inner_text(".text-display-content").strip()]
    return [t.strip() for t in page.locator(".pairwise-item-box").all_inner_texts()]


def answer_page(page, kind: str, answers: dict):
    if kind == "ratings":
        for scale, value in answers.items():
            page.click(f"#{scale}_{value}_radio", force=True)
    else:
        value = answers["preference"]
        if value == "tie":
            page.click(".pairwise-tie-btn")
        else:
            page.click(f".pairwise-tile[data-value='{value}']")


def annotate_all(page, kind: str, choose, on_page=None, stop_after=None):
    """Answer every page until Potato says the task is complete.

    :param choose: ``choose(instance_id, texts) -> answers`` ({scale: "1".."5"} or
        {"preference": "A" | "B" | "tie"}).
    :param on_page: called with (page, instance_id, texts) before answering.
    :param stop_after: stop (without finishing) after this many answered pages.
    :returns: {instance_id: answers} as submitted.
    """
    submitted = {}
    _wait_for_page(page, None)
    while not is_done(page):
        instance = _current_instance(page)
        texts = shown_texts(page, kind)
        if on_page:
            on_page(page, instance, texts)
        answers = choose(instance, texts)
        answer_page(page, kind, answers)
        page.wait_for_timeout(150)
        page.click("#next-btn")
        submitted[instance] = answers
        if stop_after is not None and len(submitted) >= stop_after:
            _wait_for_page(page, instance)
            return submitted
        _wait_for_page(page, instance)
    return submitted


def check_answer(texts, kind: str):
    """The answer an attention check asks for, or None for a real item."""
    joined = " ".join(texts)
    if "This is an attention check" not in joined:
        return None
    if kind == "ratings":
        value = re.search(r"Please answer (\d)", joined).group(1)
        return {"empathy": value, "relevance": value, "fluency": value}
    return {"preference": re.search(r"Please choose reply ([AB])", joined).group(1)}
