"""CoBERT with fixed candidates: one context against ``--candidates`` responses, with the
cached candidate encodings versus re-encoding the candidates, in the same process.

The candidates are the first distinct ED training responses (MoEL's view), the contexts the
speaker's first turn of ED test conversations. The agent is loaded as ``parlai interactive``
loads it (``-ecands fixed``; the cache is built once, beside the model file or, without
``-mf``, in a temporary folder removed at the end). Timed: ``observe`` + ``act`` (scoring
and sorting every candidate) with the cache, ``--n`` times after ``--warmup``; then the same
with the candidates re-encoded at each reply (``--n-uncached`` times; always exact, no re-ranking).
Prints the medians, their ratio, the 90th percentile with the cache, the settings and the
thread count. With ``--rerank-top-k K`` and ``--agreement N``, also how often re-ranking
answers what exact scoring answers: for N more test contexts (after the timed ones) the
top reply of both, and the rank of the exact top reply in the pooled dot-product shortlist.
Run::

    python benchmarks/cobert_candidates.py -mf zoo:empathy/cobert_ed/model --threads 2 \
        --candidates 10000 [--rerank-top-k 100 [--agreement 200]]
    python benchmarks/cobert_candidates.py --threads 2 --candidates 10000   # untrained MiniLM
"""
import argparse
import math
import os
import statistics
import tempfile
import time


def _ed_rows(datapath, split):
    from parlai_empathy.data import empathetic_dialogues_build

    empathetic_dialogues_build.build({"datapath": datapath})
    path = os.path.join(datapath, "empatheticdialogues", "empatheticdialogues", f"{split}.csv")
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split(",") for line in f][1:]


def _responses(datapath, count):
    """The first ``count`` distinct listener responses of ED train."""
    seen = {}
    for row in _ed_rows(datapath, "train"):
        if len(row) > 5 and row[1].isdigit() and int(row[1]) % 2 == 0:
            text = row[5].replace("_comma_", ",").strip()
            if text:
                seen.setdefault(text, None)
                if len(seen) == count:
                    return list(seen)
    raise SystemExit(f"ED train has only {len(seen)} distinct responses (< {count})")


def _contexts(datapath, count):
    out = []
    for row in _ed_rows(datapath, "test"):
        if len(row) > 5 and row[1] == "1":
            out.append(row[5].replace("_comma_", ","))
            if len(out) == count:
                break
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-mf", "--model-file", default=None,
                        help="a trained CoBERT (zoo: too); default an untrained one")
    parser.add_argument("--encoder-path", default=None, help="without -mf (default MiniLM)")
    parser.add_argument("--candidates", type=int, default=10000)
    parser.add_argument("--n", type=int, default=30, help="timed replies with the cache")
    parser.add_argument("--n-uncached", type=int, default=3, help="timed re-encodings")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rerank-top-k", type=int, default=0,
                        help="match only the K nearest candidates (0: all, exact)")
    parser.add_argument("--agreement", type=int, default=0,
                        help="with --rerank-top-k: compare its top reply with exact scoring's "
                             "on this many more contexts")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--datapath", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cobert_bench_") as work:
        _benchmark(args, work)


def _benchmark(args, work):
    import torch
    from parlai.core.agents import create_agent, create_agent_from_model_file
    from parlai.core.params import ParlaiParser

    torch.set_num_threads(args.threads)
    datapath = args.datapath or ParlaiParser().parse_args([])["datapath"]
    cands_path = os.path.join(work, f"ed_train_{args.candidates}.txt")
    with open(cands_path, "w", encoding="utf-8") as f:
        f.writelines(r + "\n" for r in _responses(datapath, args.candidates))
    overrides = {"interactive_mode": True, "eval_candidates": "fixed",
                 "fixed_candidates_path": cands_path, "rerank_top_k": args.rerank_top_k,
                 "datapath": datapath}
    start = time.perf_counter()
    if args.model_file:
        from parlai_empathy.report.evaluate import resolve_model_file

        agent = create_agent_from_model_file(resolve_model_file(args.model_file, datapath),
                                             overrides)
    else:
        argv = ["-m", "empathy/cobert", "-mf", os.path.join(work, "model")]
        if args.encoder_path:
            argv += ["--encoder-path", args.encoder_path]
        opt = ParlaiParser(True, True).parse_args(argv)
        opt.update(overrides)
        agent = create_agent(opt)
    load_s = time.perf_counter() - start
    timed = args.warmup + max(args.n, args.n_uncached)
    contexts = _contexts(datapath, timed + (args.agreement if args.rerank_top_k else 0))

    cached = []
    for n, text in enumerate(contexts[: args.warmup + args.n]):
        agent.reset()
        start = time.perf_counter()
        agent.observe({"id": "user", "text": text, "episode_done": False})
        agent.act()
        if n >= args.warmup:
            cached.append(1000 * (time.perf_counter() - start))

    uncached = []
    agent.encode_candidate_vecs = False  # eval_step then scores from the token ids
    for text in contexts[args.warmup: args.warmup + args.n_uncached]:
        agent.reset()
        start = time.perf_counter()
        agent.observe({"id": "user", "text": text, "episode_done": False})
        agent.act()
        uncached.append(1000 * (time.perf_counter() - start))

    agreement = _agreement(agent, contexts[timed:], args.rerank_top_k) if (
        args.rerank_top_k and args.agreement) else None

    cached.sort()
    with_cache, without = statistics.median(cached), statistics.median(uncached)
    print(f"model: {args.model_file or 'untrained CoBERT'} (encoder "
          f"{agent._model().encoder.config.hidden_size} dims, "
          f"{agent._model().encoder.config.num_hidden_layers} layers), "
          f"{agent.num_fixed_candidates} fixed candidates, rerank top-k "
          f"{args.rerank_top_k or 'off (exact)'}")
    print(f"threads: {torch.get_num_threads()} (machine: {os.cpu_count()} CPUs); "
          f"load with cache build: {load_s:.1f} s")
    print(f"with cached encodings: median {with_cache:.1f} ms, "
          f"p90 {cached[math.ceil(0.9 * len(cached)) - 1]:.1f} ms over {len(cached)} replies")
    print(f"re-encoding the candidates: median {without:.1f} ms over {len(uncached)} replies")
    print(f"ratio (re-encoding / cached): {without / with_cache:.1f}x")
    if agreement:
        same, ranks = agreement
        inside = sum(r < args.rerank_top_k for r in ranks)
        print(f"re-ranking vs exact over {len(ranks)} more contexts: same top reply "
              f"{same}/{len(ranks)} ({same / len(ranks):.1%}); exact top reply inside the "
              f"{args.rerank_top_k}-candidate shortlist {inside}/{len(ranks)}; its shortlist "
              f"rank: median {statistics.median(ranks):.0f}, max {max(ranks)}")


def _agreement(agent, contexts, top_k):
    """For each context: whether ``--rerank-top-k top_k`` and exact scoring give the same top
    reply, and the rank (0-based) of exact scoring's top reply by pooled dot product (the
    order the shortlist is cut from)."""
    import torch
    from parlai_empathy.modules.cobert import masked_mean

    agent.encode_candidate_vecs = True
    model = agent._model()
    cands = agent.fixed_candidate_encs
    mask = agent.fixed_candidate_vecs != agent.NULL_IDX
    pooled = masked_mean(cands.float(), mask[..., None], dim=1)
    index = {text: i for i, text in enumerate(agent.fixed_candidates)}
    same, ranks = 0, []
    for text in contexts:
        replies = []
        for k in (top_k, 0):
            agent.opt["rerank_top_k"] = k
            agent.reset()
            agent.observe({"id": "user", "text": text, "episode_done": False})
            replies.append(agent.act()["text"])
        same += replies[0] == replies[1]
        vec = torch.as_tensor(agent.observation["text_vec"])[None]  # as the agent truncated it
        with torch.no_grad():
            ctx = model.encode(vec, vec != agent.NULL_IDX).float()
        query = masked_mean(ctx, (vec != agent.NULL_IDX)[..., None], dim=1)[0]
        dots = pooled @ query
        ranks.append(int((dots > dots[index[replies[1]]]).sum()))
    agent.opt["rerank_top_k"] = top_k
    return same, ranks


if __name__ == "__main__":
    main()
