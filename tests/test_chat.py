"""Chatting in the terminal (``parlai interactive``) with our agents: parlai_empathy.chat.

The zoo models are bundled with the package, so nothing here needs the data mirror.
"""
import json
import os
import signal
import time

import pytest

from parlai_cli import PARLAI, read_until, run_parlai, spawn
from parlai_empathy.metrics.distinct import ngrams

TINY_ZOO = "zoo:empathy/tiny_generator_ed/model"
MOEL_ZOO = "zoo:empathy/moel_ed/model"
PROMPT = b"Enter Your Message:"
# the newcomer's long message: MoEL's beam ran into ". . . ." up to its 50-token cap
LONG = ("My grandmother passed away last week, and I keep thinking about all the summers "
        "I spent at her house. ") * 30
SAD = "sad " * 200


def _agent(model_file, datapath, **overrides):
    """The agent as programs build it for generation (human-eval sampling, benchmarks)."""
    from parlai.core.agents import create_agent_from_model_file

    from parlai_empathy.report.evaluate import resolve_model_file

    resolved = resolve_model_file(model_file, datapath)
    settings = {"interactive_mode": True, "skip_generation": False, "datapath": datapath}
    return create_agent_from_model_file(resolved, {**settings, **overrides})


def _reply(agent, text):
    agent.observe({"id": "user", "text": text, "episode_done": False})
    return agent.act()["text"]


@pytest.mark.slow
def test_chat_shows_a_banner_instead_of_the_options(datapath):
    out = run_parlai(["interactive", "-mf", TINY_ZOO, "--datapath", datapath],
                     stdin="I lost my dog today.\n", timeout=300).stdout
    before_prompt = out.split("Enter Your Message:", 1)[0]
    assert "Chatting with empathy/tiny_generator" in before_prompt, out
    assert "[DONE] starts a new conversation; [EXIT], Ctrl-D or Ctrl-C ends the chat." in out
    assert "no repeated 3-grams" in before_prompt
    assert "Opt:" not in out and "    beam_block_ngram:" not in out, out
    assert len(before_prompt.splitlines()) < 15, before_prompt
    assert "[TinyGenerator]: " in out


@pytest.mark.slow
def test_verbose_chat_still_prints_every_option(datapath):
    out = run_parlai(["interactive", "-mf", TINY_ZOO, "--datapath", datapath, "-v"],
                     stdin="hello\n", timeout=300).stdout
    assert "Opt:" in out and "    chat_beam_block_ngram: 3" in out
    assert "Chatting with empathy/tiny_generator" in out


@pytest.mark.slow
def test_stock_agents_keep_parlai_interactive_as_it_was(datapath):
    out = run_parlai(["interactive", "-m", "repeat_query", "--datapath", datapath],
                     stdin="hello there\n", timeout=300).stdout
    assert "Opt:" in out and "    interactive_mode: True" in out
    assert "Chatting with" not in out
    assert "[RepeatQueryAgent]: hello there" in out


def _prompt_after_reply(seen: bytearray) -> bool:
    reply = seen.find(b"[TinyGenerator]: ")
    return reply >= 0 and PROMPT in seen[reply:]


@pytest.mark.slow
def test_ctrl_c_ends_the_chat_like_exit(datapath, tmp_path):
    """Ctrl-C at the prompt: no traceback, status 0, ParlAI's goodbye, the log written."""
    outfile = tmp_path / "chat.jsonl"
    argv = [PARLAI, "interactive", "-mf", TINY_ZOO, "--datapath", datapath,
            "--outfile", outfile]
    with spawn(argv, stdin=-1) as chat:  # -1: subprocess.PIPE
        seen = bytearray()
        deadline = time.time() + 300
        chat.stdin.write(b"I lost my dog today.\n")
        chat.stdin.flush()
        # the reply, then the next prompt: the chat waits in input()
        read_until(chat.stdout, seen, _prompt_after_reply, deadline)
        os.killpg(chat.pid, signal.SIGINT)  # what the terminal sends on Ctrl-C
        rest, _ = chat.communicate(timeout=120)
        out = (bytes(seen) + rest).decode(errors="replace")
    assert chat.returncode == 0, out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
    assert "CHAT DONE" in out
    dialog = json.loads(outfile.read_text().splitlines()[0])["dialog"]
    assert dialog[0][0]["text"] == "I lost my dog today."
    assert dialog[0][1]["id"] == "TinyGenerator" and dialog[0][1]["text"]


@pytest.mark.slow
def test_a_truncated_message_is_announced(datapath):
    out = run_parlai(["interactive", "-mf", TINY_ZOO, "--datapath", datapath],
                     stdin=f"I lost my dog today.\n{LONG}\n", timeout=300).stdout
    first, second = out.split("[TinyGenerator]: ")[:2]
    assert "[note]" not in first  # a short message: nothing to say
    assert "[note] Your message is " in second, out
    assert "this model reads at most 128 (--text-truncate 128)" in second


def test_earlier_messages_dropping_out_is_said_once_per_conversation(datapath, capsys):
    agent = _agent(TINY_ZOO, datapath)
    agent.start_chat()
    capsys.readouterr()
    message = "i went to the beach with my family and we had a great time there " * 3
    notes = []
    for _ in range(4):  # 3 x 48 tokens and the replies: over the 128 the model reads
        _reply(agent, message)
        notes.append(capsys.readouterr().out)
    assert [n.count("no longer sees the earliest messages") for n in notes] == [0, 0, 1, 0]
    agent.reset()  # [DONE]
    for _ in range(4):
        _reply(agent, message)
    assert capsys.readouterr().out.count("no longer sees the earliest messages") == 1


def test_repetition_guard_is_for_the_chat_only(datapath):
    """Programs that generate with interactive_mode (human-eval sampling, benchmarks) and
    evaluation keep the model's decoding; the chat loop's start_chat adds 3-gram blocking
    unless the user chose --beam-block-ngram (or turned the guard off)."""
    agent = _agent(TINY_ZOO, datapath)
    assert agent.beam_block_ngram == -1
    banner = agent.start_chat()
    assert agent.beam_block_ngram == 3 and "no repeated 3-grams" in banner
    chosen = _agent(TINY_ZOO, datapath, beam_block_ngram=-1)
    chosen.start_chat()
    assert chosen.beam_block_ngram == -1
    off = _agent(TINY_ZOO, datapath, chat_beam_block_ngram=-1)
    off.start_chat()
    assert off.beam_block_ngram == -1


@pytest.mark.slow
def test_trigram_blocking_ends_moels_repeating_reply(datapath):
    """Why the chat blocks 3-grams: the zoo MoEL's beam answers a message of one word said
    over and over by saying its sentence twice ("i am sorry to hear that . i am sorry to hear
    that ."; MoEL v2 answered the long message above with ". . . ." up to its 50-token cap);
    with blocking, no 3-gram of the reply repeats."""
    def repeated_trigrams(agent, text):
        trigrams = list(ngrams(agent.dict.tokenize(_reply(agent, text).lower()), 3))
        return len(trigrams) - len(set(trigrams))

    plain = _agent(MOEL_ZOO, datapath)
    assert repeated_trigrams(plain, SAD) > 0
    blocked = _agent(MOEL_ZOO, datapath, beam_block_ngram=3)
    assert repeated_trigrams(blocked, SAD) == 0
