"""Latency of one chat reply, the way ``parlai interactive`` produces it.

Loads a model file (``zoo:`` too) with ParlAI's ``create_agent_from_model_file`` in
interactive mode and times ``observe`` + ``act`` for each of ``--n`` real ED test contexts
(the speaker's first turn of each conversation, as a user would type it), after
``--warmup`` untimed replies. Prints the median and the 90th percentile, the settings and
the machine's thread count; nothing else runs in the process. ``--chat`` times the agent as
the terminal chat runs it (``start_chat``: the chat-only n-gram blocking of
:mod:`parlai_empathy.chat`); without it, the model's own decoding. Run::

    python benchmarks/interactive_latency.py -mf zoo:empathy/moel_ed/model --threads 2 [--chat]
"""
import argparse
import os
import statistics
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-mf", "--model-file", required=True)
    parser.add_argument("--n", type=int, default=50, help="timed replies")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--datapath", default=None)
    parser.add_argument("--chat", action="store_true",
                        help="decode as `parlai interactive` does for agents with start_chat")
    args = parser.parse_args()

    import torch
    from parlai.core.agents import create_agent_from_model_file
    from parlai.core.params import ParlaiParser

    from parlai_empathy.report.evaluate import resolve_model_file

    torch.set_num_threads(args.threads)
    datapath = args.datapath or ParlaiParser().parse_args([])["datapath"]
    model_file = resolve_model_file(args.model_file, datapath)
    agent = create_agent_from_model_file(
        model_file, {"interactive_mode": True, "skip_generation": False, "datapath": datapath}
    )
    if args.chat and callable(getattr(agent, "start_chat", None)):
        agent.start_chat()
    elif args.chat:
        parser.error(f"{agent.__class__.__name__} has no start_chat: its chat decodes as it does")
    contexts = _contexts(datapath, args.n + args.warmup)
    timings, lengths = [], []
    for n, text in enumerate(contexts):
        agent.reset()
        start = time.perf_counter()
        agent.observe({"id": "user", "text": text, "episode_done": False})
        reply = agent.act()
        elapsed = time.perf_counter() - start
        if n >= args.warmup:
            timings.append(1000 * elapsed)
            lengths.append(len(reply.get("text", "").split()))
    timings.sort()
    print(f"model: {args.model_file} ({agent.__class__.__name__}, inference "
          f"{agent.opt.get('inference')}, beam {agent.opt.get('beam_size')}, "
          f"block n-grams {getattr(agent, 'beam_block_ngram', -1)})")
    print(f"threads: {torch.get_num_threads()} of {os.cpu_count()} CPUs; replies timed: "
          f"{len(timings)}; mean reply length {statistics.mean(lengths):.1f} words")
    print(f"median {statistics.median(timings):.1f} ms, p90 "
          f"{timings[int(0.9 * (len(timings) - 1))]:.1f} ms, max {timings[-1]:.1f} ms")


def _contexts(datapath, count):
    """The first speaker turn of the first ``count`` ED test conversations."""
    from parlai.agents.repeat_label.repeat_label import RepeatLabelAgent
    from parlai.core.params import ParlaiParser
    from parlai.core.worlds import create_task

    opt = ParlaiParser(True, False).parse_args(
        ["-t", "empathetic_dialogues", "-dt", "test", "--datapath", datapath,
         "--train-experiencer-only", "true"]
    )
    world = create_task(opt, RepeatLabelAgent(opt))
    texts, new_episode = [], True
    while len(texts) < count and not world.epoch_done():
        world.parley()
        message = world.get_acts()[0]
        if new_episode and message.get("text"):
            texts.append(message["text"])
        new_episode = bool(message.get("episode_done"))
    return texts


if __name__ == "__main__":
    main()
