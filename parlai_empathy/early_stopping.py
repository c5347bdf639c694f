"""``--best-after-updates N``: the originals' model selection, which ignores early validations.

MoEL's and MIME's official training loops validate on a fixed schedule from the start but
compare nothing before a set number of updates: a validation after at most 13,000 updates
(MoEL; MIME: 10,000) is computed and logged, and is neither kept as the best model nor
counted toward the patience. Their best model is therefore always one trained past that point,
however good an early validation looked (the learning rate only starts to decay after the
8,000 warm-up updates of the Noam schedule). ParlAI's ``TrainLoop`` compares every validation,
so a run that is briefly worse right after warm-up runs out of patience where the original
would still be training.

With ``--best-after-updates N`` (an option of the emotion generators; 0, the default, keeps
ParlAI's rule) a validation after at most ``N`` updates is run, reported, added to the
``.trainstats`` history and (with ``--save-after-valid``) leaves ``MODEL.checkpoint``, but
never saves ``MODEL`` and never changes the best value or the impatience. A run resumed from
a checkpoint recomputes the best value and the impatience from the validation history under
this rule, so a history written under ParlAI's rule (or another ``N``) continues correctly.
"""
import os

# (ParlAI is imported inside the functions: parlai_empathy.compat imports this module while
# ``import parlai`` is still running)
OPTION = "best_after_updates"


def add_cmdline_args(group) -> None:
    group.add_argument(
        "--best-after-updates", type=int, default=0,
        help="Validations after at most this many updates are reported and checkpointed but "
        "never kept as the best model nor counted toward --validation-patience (the "
        "originals: MoEL 13000, MIME 10000; 0: every validation counts, ParlAI's rule).")


def _start(opt) -> int:
    value = opt.get(OPTION) or 0
    if value < 0:
        raise ValueError(f"--best-after-updates must be >= 0, got {value}")
    return value


def install(loop_class):
    """Wrap ``loop_class.__init__`` and ``validate`` (ParlAI's ``TrainLoop``) once."""
    if getattr(loop_class.validate, "_parlai_empathy_best_after", False):
        return
    original_init = loop_class.__init__
    original_validate = loop_class.validate

    def __init__(self, opt):
        original_init(self, opt)
        if _start(self.opt) and self.valid_reports:
            _recount(self)

    def validate(self):
        start = _start(self.opt)
        if self._train_steps > start:
            return original_validate(self)
        return _validate_without_comparing(self, start)

    validate._parlai_empathy_best_after = True
    validate.__doc__ = original_validate.__doc__
    loop_class.__init__ = __init__
    loop_class.validate = validate


def _recount(loop) -> None:
    """Best value and impatience from the validation history, counting only validations after
    more than ``--best-after-updates`` updates."""
    from parlai.utils import logging

    start = _start(loop.opt)
    metric = loop.opt["validation_metric"]
    best, impatience = None, 0
    for report in loop.valid_reports:
        steps, value = report.get("train_steps"), report.get(metric)
        if not isinstance(steps, int) or steps <= start or not isinstance(value, (int, float)):
            continue
        if best is None or loop.valid_optim * value > loop.valid_optim * best:
            best, impatience = value, 0
        else:
            impatience += 1
    if (best, impatience) != (loop.best_valid, loop.impatience):
        logging.info(
            f"--best-after-updates {start}: best {metric} {best} and impatience {impatience} "
            f"recounted from the validation history (the saved state had {loop.best_valid} "
            f"and {loop.impatience})")
    loop.best_valid, loop.impatience = best, impatience
    model_file = loop.opt.get("model_file")
    # ParlAI saves the last state as MODEL at the end of a run that never saved a best one
    loop.saved = best is not None and bool(model_file) and os.path.isfile(model_file)


def _validate_without_comparing(loop, start: int) -> bool:
    """ParlAI's validation (evaluate, report, history, checkpoint) without selection.

    These are the steps of ``TrainLoop.validate`` up to its comparison, done here rather than
    by calling it with the best value and impatience swapped out, because its checkpoint save
    writes both into ``.trainstats``. ParlAI's tensorboard / wandb / clearml loggers are not
    given these early validations (the printed report and ``.trainstats`` have them)."""
    from parlai.core.metrics import dict_report
    from parlai.scripts.train_model import load_eval_worlds
    from parlai.utils import logging

    opt = loop.opt
    if loop.valid_worlds is None:
        loop.valid_worlds = load_eval_worlds(loop.agent, opt, "valid")
    report = loop._run_eval(loop.valid_worlds, opt, "valid", opt["validation_max_exs"])
    entry = dict_report(report)
    entry.update(train_time=loop.train_time.time(), parleys=loop.parleys,
                 train_steps=loop._train_steps, total_exs=loop._total_exs,
                 total_epochs=loop._total_epochs)
    loop.valid_reports.append(entry)
    if hasattr(loop.agent, "receive_metrics"):
        loop.agent.receive_metrics(report)
    logging.report(
        f"not compared: {loop._train_steps} updates <= --best-after-updates {start} (no best "
        "model saved, patience unchanged)")
    loop.validate_time.reset()
    if opt.get("model_file") and opt.get("save_after_valid"):
        logging.info(f"saving model checkpoint: {opt['model_file']}.checkpoint")
        loop.save_model(".checkpoint")
    return False
