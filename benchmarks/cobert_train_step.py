"""A CoBERT training step with ``--train-bf16`` (bfloat16 autocast of the forward passes) vs
float32, same process, real ED batches.

One step = the agent's ``train_step`` (encode the 16 contexts and their 16 responses, in-batch
co-attention scores, cross-entropy, backward, AdamW step) at learning rate 0, so every timed
step sees the same weights, on batches of ED training examples as ``train_model`` builds them
(``-t empathy_ranking:ed``, MoEL's view, random order, ``-cands batch``). The two variants
alternate batch by batch after a warm-up; medians and their ratio are printed. Run::

    python benchmarks/cobert_train_step.py --threads 2
    python benchmarks/cobert_train_step.py --threads 2 -mf zoo:empathy/cobert_ed/model

It needs ED (``PARLAI_EMPATHY_MIRROR`` or ParlAI's download). Without ``-mf`` the model is
the untrained CoBERT on the packaged all-MiniLM-L6-v2 (the speed does not depend on the
weights). bfloat16 pays off on CPUs with avx512_bf16 (or AMX) and on GPUs.
"""
import argparse

import torch

from generator_train_step import add_timing_args, collect_batches, median_step_ms


def step(agent, batch, bf16):
    agent.opt["train_bf16"] = bf16
    agent._local_metrics.clear()  # (batch_act clears them between batches)
    agent.train_step(batch)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-mf", "--model-file", default=None)
    parser.add_argument("--encoder-path", default=None, help="a local transformers folder")
    add_timing_args(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    agent_args = ["-m", "empathy/cobert", "-t", "empathy_ranking:ed", "--train-experiencer-only",
                  "true", "-dt", "train", "-bs", "16", "-cands", "batch"]
    if args.model_file:
        agent_args += ["-mf", args.model_file]
    if args.encoder_path:
        agent_args += ["--encoder-path", args.encoder_path]
    if args.datapath:
        agent_args += ["--datapath", args.datapath]
    agent, batches = collect_batches(agent_args, args.warmup + args.batches)
    tokens = sum(int(b.text_vec.ne(agent.NULL_IDX).sum() + b.label_vec.ne(agent.NULL_IDX).sum())
                 for b in batches)
    print(f"torch {torch.__version__}, {args.threads} thread(s); CoBERT on "
          f"{agent.opt.get('encoder_path') or 'the packaged all-MiniLM-L6-v2'}, "
          f"{sum(p.numel() for p in agent.model.parameters()):,d} parameters; "
          f"{len(batches)} batches of 16 contexts and responses, {tokens / len(batches):.0f} "
          f"tokens a batch")
    fp32, bf16 = median_step_ms(agent, batches, args.warmup, step)
    print(f"training step, median ms: float32 {fp32:.1f}, --train-bf16 {bf16:.1f}: "
          f"{fp32 / bf16:.2f}x")


if __name__ == "__main__":
    main()
