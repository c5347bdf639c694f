"""A training step of an emotion generator (MoEL, MIME) with the vocabulary layer on the label
positions only vs on every padded position, same process, real ED batches.

The agent's training loss projects only the real label tokens to the vocabulary
(``EmotionGeneratorModel.scoring_positions``); evaluation still computes the full
(B, T, V) scores. Both give the same loss and gradients (``tests/test_moel.py``); this
measures what skipping the padding saves. One step = the agent's ``compute_loss``, backward
and Adam step (learning rate 0, so every timed step sees the same weights), on batches of
ED training examples as ``train_model`` builds them (MoEL's view, random order).
The two variants alternate batch by batch after a warm-up; medians and their ratio are
printed. Run::

    python benchmarks/generator_train_step.py --dict-file RUN/model.dict
    python benchmarks/generator_train_step.py --dict-file RUN/model.dict -m empathy/mime

It needs ED (``PARLAI_EMPATHY_MIRROR`` or ParlAI's download) and a dictionary built by
``parlai build_dict -m empathy/moel`` (``recipes/moel_ed.sh``).
"""
import argparse
import statistics
import time

import torch


def collect_batches(agent_args, count):
    """``count`` training batches, as ParlAI's batch world hands them to ``train_step``."""
    import parlai_empathy.compat  # noqa: F401
    from parlai.core.agents import create_agent
    from parlai.core.params import ParlaiParser
    from parlai.core.worlds import create_task

    opt = ParlaiParser(True, True).parse_args(agent_args)
    agent = create_agent(opt)
    world = create_task(opt, agent)
    batches = []
    agent.train_step = batches.append  # capture instead of training
    while len(batches) < count:
        world.parley()
    del agent.train_step
    return agent, batches


def step(agent, batch, flat):
    agent.model.train()
    agent._local_metrics.clear()  # (batch_act clears them between batches)
    agent.zero_grad()
    if flat:
        loss = agent.compute_loss(batch)
    else:  # return_output: the full (B, T, V) scores, as evaluation computes them
        loss = agent.compute_loss(batch, return_output=True)[0]
    agent.backward(loss)
    agent.update_params()


def add_timing_args(parser):
    """The options every training-step benchmark takes."""
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--datapath", default=None)


def median_step_ms(agent, batches, warmup, step):
    """Median milliseconds of ``step(agent, batch, False)`` and of ``step(agent, batch,
    True)`` at learning rate 0 (every timed step sees the same weights): both variants on
    each of the first ``warmup`` batches untimed, then alternating batch by batch (so load
    changes hit both alike)."""
    for group in agent.optimizer.param_groups:
        group["lr"] = 0.0
    agent.scheduler = None  # (ParlAI's update_params steps it; the rate stays 0)
    for batch in batches[:warmup]:
        for variant in (False, True):
            step(agent, batch, variant)
    times = {False: [], True: []}
    for batch in batches[warmup:]:
        for variant in (False, True):
            start = time.perf_counter()
            step(agent, batch, variant)
            times[variant].append(time.perf_counter() - start)
    return tuple(statistics.median(times[variant]) * 1e3 for variant in (False, True))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dict-file", required=True)
    parser.add_argument("-m", "--model", default="empathy/moel")
    add_timing_args(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    agent_args = ["-m", args.model, "-t", "empathetic_dialogues", "--train-experiencer-only",
                  "true", "-df", args.dict_file, "-dt", "train", "-bs", "16",
                  "--skip-generation", "true"]
    if args.datapath:
        agent_args += ["--datapath", args.datapath]
    agent, batches = collect_batches(agent_args, args.warmup + args.batches)
    padded = sum(b.label_vec.numel() for b in batches)
    real = sum(int(b.label_vec.ne(agent.NULL_IDX).sum()) for b in batches)
    print(f"torch {torch.__version__}, {args.threads} thread(s); {args.model}, vocabulary "
          f"{len(agent.dict):,d}, {sum(p.numel() for p in agent.model.parameters()):,d} "
          f"parameters; {len(batches)} batches of 16: {real:,d} label tokens in "
          f"{padded:,d} padded positions ({real / padded:.1%})")
    full, flat = median_step_ms(agent, batches, args.warmup, step)
    print(f"training step, median ms: every position {full:.1f}, label positions only "
          f"{flat:.1f}: {full / flat:.2f}x")


if __name__ == "__main__":
    main()
