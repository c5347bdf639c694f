"""Helpers shared by the emotion generators' tests (MoEL, MIME)."""
import pytest
import torch
from parlai.core.agents import create_agent
from parlai.core.params import ParlaiParser
from parlai.utils.misc import msg_to_str


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Each test module on one CPU thread (the machine is shared; two threads contend)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def random_batch(seed=0, batch=4, src=9, tgt=6, vocab=40):
    """Ragged contexts (right-padded with 0), their dialogue states, and labels."""
    generator = torch.Generator().manual_seed(seed)
    text = torch.randint(4, vocab, (batch, src), generator=generator)
    for row in range(1, batch):  # ragged contexts
        text[row, src - row:] = 0
    states = torch.where(text != 0, torch.randint(1, 3, text.shape, generator=generator), 0)
    labels = torch.randint(4, vocab, (batch, tgt), generator=generator)
    return text, states, labels


def make_agent(*args):
    """An agent from command-line arguments, as ``parlai`` would build it."""
    return create_agent(ParlaiParser(True, True).parse_args([str(a) for a in args]))


def eval_agent(model_file, *args):
    """A trained generator loaded for evaluation with generation on (``-dt valid``)."""
    return make_agent("-mf", model_file, "-dt", "valid", "--skip-generation", "false", *args)


def file_observations(agent, path, n=4):
    """The agent's observations of the first ``n`` examples of a ParlAI-format file, their
    labels as eval labels, each example its own episode."""
    from parlai.core.message import Message
    from parlai.utils.misc import str_to_msg

    observations = []
    for line in open(path).read().splitlines()[:n]:
        msg = str_to_msg(line)
        msg.force_set("eval_labels", msg.pop("labels"))
        agent.reset()
        observations.append(agent.observe(Message(msg)))
    return observations


@pytest.fixture(scope="module")
def ed_handful(ed_datapath, tmp_path_factory):
    """The first 8 experiencer-side ED training examples, in ParlAI's text format."""
    from parlai.tasks.empathetic_dialogues.agents import EmpatheticDialoguesTeacher

    opt = ParlaiParser(True, False).parse_args(
        ["-t", "empathetic_dialogues", "--datapath", ed_datapath, "-dt", "train:ordered",
         "--train-experiencer-only", "true"]
    )
    teacher = EmpatheticDialoguesTeacher(opt)
    lines = []
    for i in range(8):
        msg = teacher.act()
        fields = {k: msg[k] for k in ("text", "labels", "emotion")}
        fields["episode_done"] = msg["episode_done"] or i == 7
        lines.append(msg_to_str(fields))
    path = tmp_path_factory.mktemp("ed_handful") / "ed8.txt"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def assert_incremental_decoding_equals_full(model, enc, batch=3, beam=2, steps=5, vocab=40):
    """Decode ``steps`` random tokens incrementally, each step continuing a random hypothesis
    of the row's own example (beam search's reordering of the incremental state), and check
    the last step's output equals a full decode of the same prefixes. ``enc`` holds
    ``batch * beam`` rows (already expanded by ``reorder_encoder_states``)."""
    generator = torch.Generator().manual_seed(0)
    prefix = torch.ones(batch * beam, 1, dtype=torch.long)
    state = None
    with torch.no_grad():
        for _ in range(steps):
            _, state = model.decoder(prefix, enc, state)
            picks = torch.randint(0, beam, (batch, beam), generator=generator)
            inds = (torch.arange(batch)[:, None] * beam + picks).view(-1)
            state = model.reorder_decoder_incremental_state(state, inds)
            tokens = torch.randint(4, vocab, (batch * beam, 1), generator=generator)
            prefix = torch.cat([prefix.index_select(0, inds), tokens], dim=1)
        last, _ = model.decoder(prefix, enc, state)
        full, _ = model.decoder(prefix, enc)
    assert last.shape[:2] == (batch * beam, 1)
    assert torch.allclose(last[:, 0], full[:, -1], atol=1e-5)
