"""MoEL: sparse listeners (only the selected ones run) vs the dense mixture, same process.

Times, on one batch and one set of weights (the official sizes: 300-d, 1 layer, 2 heads,
key/value depth 40, filter 50, 32 listeners + shared, top-5 gating, 50-d word vectors):

* a training step (forward with teacher forcing, label-smoothed loss + emotion loss,
  backward, Adam step) on a batch of ``--batchsize`` examples;
* a beam-5 response (ParlAI's ``BeamSearch``, incremental decoding, up to ``--max-len``
  tokens) for one context (a chat reply) and for the whole batch.

Dense and sparse runs alternate, after warm-up; the median of ``--repeats`` timings is
reported, with the dense/sparse ratio. Run::

    python benchmarks/moel_sparse_vs_dense.py            # defaults, 1 CPU thread
    python benchmarks/moel_sparse_vs_dense.py --threads 4 --repeats 20 --gate initial
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from parlai.core.torch_generator_agent import BeamSearch

from parlai_empathy.modules.moel import MoelConfig, MoelModel

PAD, START, END = 0, 1, 2


class SpreadLogits(torch.nn.Module):
    """The classifier plus a fixed random offset per batch row (benchmark only)."""

    def __init__(self, classifier, batchsize, generator):
        super().__init__()
        self.classifier = classifier
        offsets = 10 * torch.randn(batchsize, classifier.out_features, generator=generator)
        self.register_buffer("offsets", offsets)

    def forward(self, summary):
        return self.classifier(summary) + self.offsets[: summary.size(0)]


def make_batch(args, generator):
    """Random token contexts/responses with ED-like lengths, right-padded."""
    def lengths(mean):
        return torch.randint(max(2, mean // 2), mean + mean // 2 + 1, (args.batchsize,),
                             generator=generator)

    def padded(lens, end=False):
        out = torch.full((args.batchsize, int(lens.max()) + int(end)), PAD)
        for row, n in enumerate(lens.tolist()):
            out[row, :n] = torch.randint(4, args.vocab_size, (n,), generator=generator)
            if end:
                out[row, n] = END
        return out

    text = padded(lengths(args.context_len))
    labels = padded(lengths(args.response_len), end=True)
    states = torch.where(text != PAD, torch.randint(1, 3, text.shape, generator=generator), 0)
    emotions = torch.randint(0, 32, (args.batchsize,), generator=generator)
    return text, states, labels, emotions


def train_step(model, optimizer, batch):
    text, states, labels, emotions = batch
    model.train()
    optimizer.zero_grad()
    scores, _, encoder_states = model(text, states, ys=labels)
    logprobs = F.log_softmax(scores, dim=-1)
    notnull = labels.ne(PAD)
    target = logprobs.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    others = logprobs.sum(-1) - target - logprobs[..., PAD]
    token_loss = -0.9 * target - 0.1 / (logprobs.size(-1) - 2) * others
    loss = (token_loss * notnull).sum() + F.cross_entropy(encoder_states.emotion_logits, emotions)
    loss = loss + model.parameter_anchor()  # as the agent: zero gradients, not none
    loss.backward()
    optimizer.step()


@torch.no_grad()
def beam_response(model, text, states, beam_size, max_len):
    """ParlAI's beam-search loop (TorchGeneratorAgent._generate), without the agent."""
    model.eval()
    bsz = text.size(0)
    encoder_states = model.encoder(text, states)
    inds = torch.arange(bsz).unsqueeze(1).repeat(1, beam_size).view(-1)
    encoder_states = model.reorder_encoder_states(encoder_states, inds)
    beams = [
        BeamSearch(beam_size, min_length=1, length_penalty=0.0, padding_token=PAD,
                   bos_token=START, eos_token=END)
        for _ in range(bsz)
    ]
    decoder_input = torch.full((bsz * beam_size, 1), START)
    incr_state = None
    for step in range(max_len):
        if all(b.is_done() for b in beams):
            break
        score, incr_state = model.decoder(decoder_input, encoder_states, incr_state)
        score = F.log_softmax(model.output(score[:, -1:, :]).view(bsz, beam_size, -1), dim=-1)
        for i, b in enumerate(beams):
            if not b.is_done():
                b.advance(score[i], step)
        incr_state_inds = torch.cat(
            [beam_size * i + b.get_backtrack_from_current_step() for i, b in enumerate(beams)]
        )
        incr_state = model.reorder_decoder_incremental_state(incr_state, incr_state_inds)
        selection = torch.cat([b.get_output_from_current_step() for b in beams]).unsqueeze(-1)
        decoder_input = torch.cat([decoder_input.index_select(0, incr_state_inds), selection], 1)
    return [b.get_rescored_finished()[0][0] for b in beams]


def timed(fn, repeats, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocab-size", type=int, default=18572,
                        help="size of MoEL's ParlAI dictionary of ED's training set "
                        "(lower-cased, 're' tokenizer)")
    parser.add_argument("--batchsize", type=int, default=16)
    parser.add_argument("--context-len", type=int, default=60, help="mean context tokens")
    parser.add_argument("--response-len", type=int, default=16, help="mean response tokens")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--max-len", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gate", choices=["diverse", "initial"], default="diverse",
                        help="diverse: a fixed random offset per example on the emotion logits, "
                        "so examples select different listeners as a trained model's do (the "
                        "harder case for sparse: more listeners, fewer examples each); "
                        "initial: the fresh model, whose top-5 barely differs between examples")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)

    config = MoelConfig(vocab_size=args.vocab_size, word_vector_size=50)
    model = MoelModel(config)
    if args.gate == "diverse":
        model.encoder.emotion_classifier = SpreadLogits(
            model.encoder.emotion_classifier, args.batchsize, generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-9, betas=(0.9, 0.98), eps=1e-9)
    batch = make_batch(args, generator)
    text, states = batch[0], batch[1]
    with torch.no_grad():
        weights = model.encoder(text, states).listener_weights
    rows_per_listener = (weights > 0).sum(0)
    selected = rows_per_listener[rows_per_listener > 0]
    print(f"torch {torch.__version__}, {args.threads} thread(s); vocab {args.vocab_size:,d}, "
          f"{sum(p.numel() for p in model.parameters()):,d} parameters")
    print(f"batch {args.batchsize}: context {text.size(1)} tokens max, response "
          f"{batch[2].size(1)} max; top-{config.topk} gating selects "
          f"{selected.numel()} of {config.num_emotions} listeners, each for "
          f"{float(selected.float().mean()):.1f} of {args.batchsize} examples on average")

    # the sparse and dense computations must agree before their speed is compared
    model.eval()
    with torch.no_grad():
        model.decoder.sparse_listeners = True
        sparse_scores = model(text, states, ys=batch[2])[0]
        model.decoder.sparse_listeners = False
        dense_scores = model(text, states, ys=batch[2])[0]
    print(f"max |sparse - dense| logit difference: "
          f"{float((sparse_scores - dense_scores).abs().max()):.2e}")

    tasks = {
        "training step": lambda: train_step(model, optimizer, batch),
        "beam-5 reply (1 context)": lambda: beam_response(
            model, text[:1], states[:1], args.beam_size, args.max_len),
        f"beam-5 batch ({args.batchsize})": lambda: beam_response(
            model, text, states, args.beam_size, args.max_len),
    }
    print(f"{'':28s}{'dense ms':>10s}{'sparse ms':>11s}{'speed-up':>10s}")
    for name, fn in tasks.items():
        results = {True: [], False: []}
        repeats = args.repeats if "batch (" not in name else max(3, args.repeats // 3)
        for sparse in (False, True):  # warm-up both
            model.decoder.sparse_listeners = sparse
            timed(fn, 0, 1)
        for _ in range(repeats):  # alternate, so load changes hit both alike
            for sparse in (False, True):
                model.decoder.sparse_listeners = sparse
                results[sparse] += timed(fn, 1, 0)
        dense = statistics.median(results[False]) * 1e3
        sparse = statistics.median(results[True]) * 1e3
        print(f"{name:28s}{dense:10.1f}{sparse:11.1f}{dense / sparse:9.2f}x")


if __name__ == "__main__":
    main()
