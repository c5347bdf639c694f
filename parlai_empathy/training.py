"""Ctrl-C during ``parlai train_model`` leaves a checkpoint that resumes, and a model to chat with.

::

    parlai train_model -m empathy/tiny_generator -t empathetic_dialogues -mf /tmp/tiny/model ...
    ^C   # -> /tmp/tiny/model.checkpoint (and /tmp/tiny/model if no validation saved one)
    parlai train_model ... the same command ...     # resumes from the checkpoint
    parlai interactive -mf /tmp/tiny/model

ParlAI 1.7.2's ``TrainLoop`` lets the ``KeyboardInterrupt`` escape with a traceback; what is
on disk is whatever the last ``--save-every-n-secs`` save or validation wrote, often nothing.
For agents with ``checkpoint_on_interrupt`` (:class:`InterruptCheckpointMixin`), in a
single-process run, :func:`install` (applied by :mod:`parlai_empathy.compat`) makes it:

* finish the update in progress on the first Ctrl-C (never saving a half-applied optimizer
  step), and stop at once when Ctrl-C comes outside an update (loading data, validating,
  saving) or a second time;
* save ``MODEL.checkpoint`` with its ``.opt``, ``.dict`` and ``.trainstats`` through
  ParlAI's own ``TrainLoop.save_model`` under temporary names, then rename them into place,
  weights and training statistics last, with Ctrl-C ignored meanwhile: an interruption while
  saving leaves the previous checkpoint whole;
* save ``MODEL`` the same way when no validation has saved one yet (what ParlAI does at the
  end of a run without validation), so the model can be chatted with or evaluated;
* say what was saved and how to resume (rerun the same command: ``--load-from-checkpoint``
  is on by default), and exit with status 130 without a traceback.

Distributed runs (``multiprocessing_train``) and other agents keep ParlAI's behaviour: every
rank receives the signal and they would have to agree on one update to save.
"""
import glob
import os
import signal

# (ParlAI is imported inside the functions: parlai_empathy.compat imports this module while
# ``import parlai`` is still running)
EXIT_INTERRUPTED = 130  # the shell's status for a command ended by SIGINT


class InterruptCheckpointMixin:
    """Marks a ``TorchAgent`` whose training saves a resumable checkpoint on Ctrl-C::

        class TinyGeneratorAgent(InterruptCheckpointMixin, TransformerGeneratorAgent):
            ...

    The behaviour lives in the train loop (see this module); the agent only opts in.
    """

    checkpoint_on_interrupt = True


def install(loop_class):
    """Wrap ``loop_class.train_steps`` and ``train`` (ParlAI's ``TrainLoop``) once."""
    if getattr(loop_class.train_steps, "_parlai_empathy_interrupt", False):
        return
    original_train_steps = loop_class.train_steps
    original_train = loop_class.train

    def train_steps(self):
        if not _wanted(self):
            return (yield from original_train_steps(self))
        guard = _UpdateGuard(self)
        try:
            with guard:
                return (yield from original_train_steps(self))
        except KeyboardInterrupt:
            pass
        _save_and_exit(self)

    def train(self):
        try:
            return original_train(self)
        except KeyboardInterrupt:
            if not _wanted(self):
                raise
            from parlai.utils import logging

            logging.warning(
                "Interrupted during the final evaluation; training had ended and "
                f"{self.opt['model_file']} is saved."
            )
            raise SystemExit(EXIT_INTERRUPTED) from None

    train_steps._parlai_empathy_interrupt = True
    train_steps.__doc__ = original_train_steps.__doc__
    train.__doc__ = original_train.__doc__
    loop_class.train_steps = train_steps
    loop_class.train = train


def _wanted(loop) -> bool:
    from parlai.utils.distributed import is_distributed

    agent = getattr(loop, "agent", None)
    return bool(
        getattr(agent, "checkpoint_on_interrupt", False)
        and loop.opt.get("model_file")
        and not is_distributed()
    )


class _UpdateGuard:
    """SIGINT handling for the train loop: a Ctrl-C during ``world.parley()`` (one update)
    takes effect when the update is done; anywhere else, or the second time, at once."""

    def __init__(self, loop):
        self.loop = loop
        self.in_update = False
        self.pending = False
        self._previous_handler = None

    def __enter__(self):
        world = self.loop.world
        update, validate = world.parley, self.loop.validate

        def parley():
            self._raise_if_pending()
            self.in_update = True
            try:
                return update()
            finally:
                self.in_update = False

        def validate_unless_pending():
            self._raise_if_pending()
            return validate()

        world.parley = parley
        self.loop.validate = validate_unless_pending
        self._previous_handler = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._previous_handler or signal.default_int_handler)
        self.loop.__dict__.pop("validate", None)
        world = getattr(self.loop, "world", None)
        if world is not None:
            world.__dict__.pop("parley", None)
        return False

    def _raise_if_pending(self):
        if self.pending:
            raise KeyboardInterrupt

    def _on_sigint(self, signum, frame):
        first = not self.pending
        self.pending = True
        if self.in_update and first:
            from parlai.utils import logging

            logging.warning(
                "Ctrl-C: saving a checkpoint after this update (Ctrl-C again to stop at once)"
            )
            return
        raise KeyboardInterrupt


def _save_and_exit(loop):
    """Save the interrupted run (Ctrl-C ignored meanwhile), say how to go on, exit 130."""
    from parlai.utils import logging

    model_file = loop.opt["model_file"]
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        saved = [model_file + ".checkpoint"]
        save_atomically(loop, ".checkpoint")
        if not os.path.exists(model_file):
            save_atomically(loop, "")
            saved.append(model_file)
    finally:
        signal.signal(signal.SIGINT, previous)
    steps = getattr(loop, "_train_steps", None)
    logging.warning(
        f"Interrupted after {steps} updates: saved {' and '.join(saved)}. "
        "Run the same command again to resume from the checkpoint"
        + (
            "."
            if loop.opt.get("load_from_checkpoint", True)
            else " (without --load-from-checkpoint false)."
        )
        + f" Chat with it: parlai interactive -mf {model_file}"
    )
    raise SystemExit(EXIT_INTERRUPTED)


def save_atomically(loop, suffix: str):
    """``loop.save_model(suffix)`` written whole or not at all.

    ParlAI's ``save_model`` writes the weights (atomically), then ``.opt``, ``.dict`` and
    ``.trainstats`` in place. Here it writes them all under a temporary suffix, and each is
    renamed over its final name, the weights and ``.trainstats`` last (the two files a
    resumed run reads together). Nothing temporary is left behind on failure.
    """
    model_file = loop.opt["model_file"]
    final = model_file + suffix
    partial = f"{final}.partial-{os.getpid()}"
    try:
        loop.save_model(partial[len(model_file):])
        written = glob.glob(glob.escape(partial) + "*")
        if partial not in written:
            raise RuntimeError(f"saving {final} wrote no weights (agent.save saved nothing)")
        last = (partial, partial + ".trainstats")
        for path in sorted(written, key=lambda p: (p in last, p == last[1])):
            os.replace(path, final + path[len(partial):])
    finally:
        for path in glob.glob(glob.escape(partial) + "*"):
            os.unlink(path)
