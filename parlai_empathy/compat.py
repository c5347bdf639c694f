"""Every fix that ParlAI 1.7.2 (the last release) needs on Python 3.11 and torch 2.x.

ParlAI's files are never edited: each fix below replaces one attribute at run time and
names the upstream change it answers. :func:`apply` is idempotent and runs right after
``import parlai`` (see :mod:`parlai_empathy._startup`), before the ParlAI modules that copy
these attributes with ``from ... import``.

Breakages handled by the pinned install rather than by code (``constraints.txt``):

* ``numpy~=1.23`` (ParlAI's pin) versus pyarrow>=15, which needs numpy 2 and is imported by
  scikit-learn/pandas/datasets: pyarrow is pinned below 15.
* torchtext: ParlAI lists it, but every torchtext wheel is built against one old torch and
  its binary does not load with torch 2.1x. ParlAI imports it only to fetch GloVe/fastText
  for ``--embedding-type``; it is not installed, and our agents read GloVe themselves.
"""
import contextlib
import inspect
import os
import sys
import types
import warnings

_APPLIED = False

DEFAULT_DATAPATH = os.path.join("~", ".parlai", "data")


def apply():
    """Apply all fixes once in this process."""
    global _APPLIED
    if _APPLIED:
        return
    _APPLIED = True
    _default_datapath()
    _pkg_resources()
    _torch_load_for_parlai_checkpoints()
    _opt_load_without_code()
    _reduce_lr_on_plateau_without_verbose()
    _distributed_on_cpu()
    _empathetic_dialogues_from_mirror()
    _quiet_pandas_stack_warning()
    _train_model_resume_fixes()
    _interactive_chat()
    _train_model_interrupt_checkpoint()
    _best_after_updates()
    _init_model_list_options()


def _train_model_resume_fixes():
    """Two ParlAI ``train_model`` resume bugs: the validation schedule and the final reload.

    ParlAI 1.7.2's ``TrainLoop`` restores a resumed run's step count and patience from its
    ``.trainstats`` but starts its "steps at the last validation" counter at 0, so with
    ``-vstep`` it validates again after the first resumed update and counts that check
    against ``--validation-patience``: every interruption costs a validation and one unit of
    patience. The counter is restored from the last validation report.

    It also starts its "the best model is saved" flag at False, and a run that ends without
    saving a model saves its last state as ``MODEL``: a resumed run whose validations never
    beat the best from before the pause replaced that best model with its last state. A
    resumed run whose ``.trainstats`` hold a best validation value and whose ``MODEL`` exists
    starts with the flag set.

    Resuming from ``MODEL.checkpoint`` also saves ``init_model: MODEL.checkpoint`` into
    ``MODEL.opt``; the final valid/test evaluation, which reloads "the best validation model"
    from ``MODEL.opt`` with ``--load-from-checkpoint`` still on, then loads the last
    checkpoint instead of ``MODEL``. The option has done its work once the loop's agent is
    built, so a resumed single-process loop turns it off for the final reload.

    Running ``train_model`` again on a run that takes no step (its linear schedule has
    ended: CoBERT's recipes rerun to evaluate) never set the loop's epoch count, so saving the
    model crashed half-way through writing ``MODEL.trainstats``, leaving it empty and the run
    unable to resume. The count starts at the resumed run's epochs.
    """
    import parlai.scripts.train_model as train_model
    from parlai.utils.distributed import is_distributed

    loop = train_model.TrainLoop
    if getattr(loop.__init__, "_parlai_empathy_resume_fixes", False):
        return
    original_init = loop.__init__

    def __init__(self, opt):
        original_init(self, opt)
        if not hasattr(self, "_total_epochs"):  # set by the first training step only
            self._total_epochs = self._preempted_epochs
        if self.valid_reports:
            steps = self.valid_reports[-1].get("train_steps")
            if isinstance(steps, int) and 0 <= steps <= self._train_steps:
                self._last_valid_steps = steps
            if self.best_valid is not None and self.opt.get("model_file") and os.path.isfile(
                    self.opt["model_file"]):
                self.saved = True
        model_file = self.opt.get("model_file")
        resumed = model_file and self.opt.get("init_model") == model_file + ".checkpoint"
        if resumed and not is_distributed():
            # (single process only: with it off, multiprocessing_train's workers were seen to
            # hang after their final evaluation; distributed runs keep ParlAI's behaviour)
            self.opt["load_from_checkpoint"] = False

    __init__._parlai_empathy_resume_fixes = True
    loop.__init__ = __init__


def _quiet_pandas_stack_warning():
    """pandas 2.1 deprecated ``DataFrame.stack``'s old implementation, which
    ``parlai.utils.misc.nice_report`` uses for every report table: one FutureWarning per
    report, nothing wrong with the numbers. Silenced for that module only."""
    warnings.filterwarnings(
        "ignore",
        message="The previous implementation of stack is deprecated",
        category=FutureWarning,
        module="parlai.utils.misc",
    )


def _default_datapath():
    """ParlAI's default datapath is ``<site-packages>/data`` for a pip install.

    Writing data into site-packages breaks read-only installs and is lost on reinstall.
    ParlAI's own TODO (parlai/core/params.py) is to move it to ``~/.parlai/``; we do that
    whenever the user has not set ``PARLAI_DATAPATH`` (``--datapath`` still wins).
    """
    if not os.environ.get("PARLAI_DATAPATH"):
        os.environ["PARLAI_DATAPATH"] = os.path.expanduser(DEFAULT_DATAPATH)
    if not os.environ.get("PARLAI_DOWNPATH"):
        os.environ["PARLAI_DOWNPATH"] = os.path.expanduser(
            os.path.join("~", ".parlai", "downloads")
        )


def _pkg_resources():
    """setuptools 81 removed ``pkg_resources``, which ``parlai.core.opt`` imports.

    With setuptools<81 (our pin) it imports but warns on every start; we silence that one
    deprecation warning. Without it, a two-function stand-in on ``importlib.resources`` covers
    the only calls ParlAI makes (``resource_exists``/``resource_filename`` for opt presets).
    """
    warnings.filterwarnings(
        "ignore", message="pkg_resources is deprecated", category=UserWarning
    )
    # run from a source checkout, pkg_resources notes that the checkout shadows nothing
    warnings.filterwarnings(
        "ignore", message=r"Module \S+ was already imported from", category=UserWarning
    )
    # importing pkg_resources also declares protobuf's legacy 'google' namespace
    warnings.filterwarnings(
        "ignore", message="Deprecated call to `pkg_resources.declare_namespace",
        category=DeprecationWarning,
    )
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        sys.modules["pkg_resources"] = _pkg_resources_stand_in()


def _pkg_resources_stand_in():
    import importlib.resources

    module = types.ModuleType("pkg_resources")
    module.__doc__ = "parlai_empathy stand-in for the parts of pkg_resources ParlAI uses"

    def resource_exists(package, resource_name):
        try:
            return importlib.resources.files(package).joinpath(resource_name).is_file()
        except ModuleNotFoundError:
            raise
        except Exception:
            return False

    def resource_filename(package, resource_name):
        return str(importlib.resources.files(package).joinpath(resource_name))

    module.resource_exists = resource_exists
    module.resource_filename = resource_filename
    return module


def _torch_load_for_parlai_checkpoints():
    """Model files are loaded without running code from them (:mod:`parlai_empathy.safe_load`).

    torch 2.6 changed ``torch.load``'s default to ``weights_only=True``, which refuses
    ParlAI's own checkpoint loads (``pickle_module=parlai.utils.pickle``); turning it off for
    them would let a crafted model file run code. Those calls (and only those) are read
    weights-only with the allow-list of what ParlAI checkpoints hold, or with the full
    unpickler when the user trusts the files (``PARLAI_EMPATHY_TRUST_MODEL_FILES=1``); every
    other ``torch.load`` is torch's own. (``Opt.load``'s own fallback to ``pickle.load``:
    :func:`_opt_load_without_code`.)
    """
    import torch

    if getattr(torch.load, "_parlai_empathy_wrapped", False):
        return
    if "weights_only" not in inspect.signature(torch.load).parameters:
        return
    from parlai_empathy import safe_load

    original_load = torch.load

    def load(*args, **kwargs):
        pickle_module = kwargs.get("pickle_module")
        if (
            "weights_only" not in kwargs
            and getattr(pickle_module, "__name__", "") == "parlai.utils.pickle"
        ):
            return safe_load.load_parlai_checkpoint(original_load, *args, **kwargs)
        return original_load(*args, **kwargs)

    load.__doc__ = original_load.__doc__
    load._parlai_empathy_wrapped = True
    torch.load = load


def _opt_load_without_code():
    """``Opt.load`` reads JSON and, on a UnicodeDecodeError, ``pickle.load``s the file.

    Ours (:func:`parlai_empathy.safe_load.read_opt_file`) names the file in the error for
    invalid JSON and unpickles plain data only unless model files are trusted; the rest
    (dropping ParlAI's auto-clean keys, returning an ``Opt``) is ParlAI's.
    """
    import parlai.core.opt as opt_module
    from parlai_empathy import safe_load

    if getattr(opt_module.Opt.load, "_parlai_empathy_wrapped", False):
        return
    autoclean_keys = opt_module.__AUTOCLEAN_KEYS__

    def load(cls, optfile):
        options = safe_load.read_opt_file(optfile)
        for key in autoclean_keys:
            options.pop(key, None)
        return cls(options)

    load.__doc__ = opt_module.Opt.load.__doc__
    load._parlai_empathy_wrapped = True
    opt_module.Opt.load = classmethod(load)


def _reduce_lr_on_plateau_without_verbose():
    """torch 2.7 removed ``ReduceLROnPlateau(verbose=...)`` (deprecated since 2.2).

    ``parlai.nn.lr_scheduler`` passes ``verbose=True``. We hand that module (only) a view of
    ``torch.optim`` whose ``ReduceLROnPlateau`` accepts and ignores ``verbose``.
    """
    import torch.optim.lr_scheduler as torch_schedulers
    import parlai.nn.lr_scheduler as parlai_schedulers

    if "verbose" in inspect.signature(torch_schedulers.ReduceLROnPlateau).parameters:
        return
    if isinstance(parlai_schedulers.optim, _ModuleView):
        return

    class ReduceLROnPlateau(torch_schedulers.ReduceLROnPlateau):
        def __init__(self, *args, verbose=None, **kwargs):
            super().__init__(*args, **kwargs)

    schedulers = _ModuleView("torch.optim.lr_scheduler", torch_schedulers)
    schedulers.ReduceLROnPlateau = ReduceLROnPlateau
    optim = _ModuleView("torch.optim", parlai_schedulers.optim)
    optim.lr_scheduler = schedulers
    parlai_schedulers.optim = optim


class _ModuleView(types.ModuleType):
    """A module that answers every attribute from a wrapped module unless overridden."""

    def __init__(self, name, wrapped):
        super().__init__(name)
        self._wrapped = wrapped

    def __getattr__(self, item):
        return getattr(self._wrapped, item)


def _distributed_on_cpu():
    """ParlAI's distributed set-up hard-codes NCCL and CUDA tensors.

    ``parlai.utils.distributed.distributed_context`` divides by ``torch.cuda.device_count()``,
    calls ``torch.cuda.set_device``/``init`` and uses ``backend="nccl"``;
    ``all_gather_list`` allocates ``torch.cuda`` buffers. On a machine without CUDA we use
    the gloo backend and torch's ``all_gather_object`` (torch 1.8+), which works with both
    backends. With CUDA the behaviour is ParlAI's own (NCCL, one GPU per rank).

    The gloo group gets one worker thread instead of two, so that a rank can always leave:
    see :func:`_single_worker_gloo`.
    """
    import torch
    import torch.distributed as dist
    import parlai.utils.distributed as parlai_distributed
    import parlai.utils.logging as logging

    if getattr(parlai_distributed, "_parlai_empathy_patched", False):
        return

    def all_gather_list(data):
        if not parlai_distributed.is_distributed():
            return [data]
        gathered = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, data)
        return gathered

    @contextlib.contextmanager
    def distributed_context(
        rank, opt, rank_offset=0, gpu=None, init_method="tcp://localhost:61337"
    ):
        import copy

        opt = copy.deepcopy(opt)
        rank = rank + rank_offset
        opt["rank"] = rank
        use_cuda = torch.cuda.is_available() and not opt.get("no_cuda")
        if gpu is None:
            gpu = rank % torch.cuda.device_count() if use_cuda else -1
        opt["gpu"] = gpu
        opt.setdefault("override", {})["gpu"] = gpu
        if not use_cuda:
            opt["no_cuda"] = True
            opt["override"]["no_cuda"] = True

        print_prefix = (
            "rank:{:3d} |".format(rank) if (opt.get("verbose") or rank != 0) else None
        )
        suppress_output = not opt.get("verbose") and rank != 0
        with parlai_distributed.override_print(suppress_output, print_prefix):
            if use_cuda and gpu != -1:
                torch.cuda.set_device(gpu)
            with contextlib.ExitStack() as init:
                if not use_cuda:
                    init.enter_context(_single_worker_gloo())
                dist.init_process_group(
                    backend="nccl" if use_cuda else "gloo",
                    init_method=init_method,
                    world_size=opt["distributed_world_size"],
                    rank=rank,
                )
            logging.info("Distributed group initialized")
            if use_cuda:
                torch.cuda.init()
            torch.manual_seed(42)
            parlai_distributed.sync_object(None)
            try:
                yield opt
                # leave together, and only once gloo's worker has freed every operation: see
                # _single_worker_gloo
                dist.barrier()
                if not use_cuda:
                    _drain_gloo_worker()
            finally:
                dist.destroy_process_group()

    parlai_distributed.all_gather_list = all_gather_list
    parlai_distributed.distributed_context = distributed_context
    parlai_distributed._parlai_empathy_patched = True
    _ddp_on_cpu_modules()
    _join_device_on_cpu()


@contextlib.contextmanager
def _single_worker_gloo():
    """While active, ``init_process_group`` builds gloo groups with one worker thread.

    Why: a rank could hang for ever when leaving a ``multiprocessing_train`` run (one run in
    20 on a loaded 2-core machine; py-spy on the stuck rank). Its main thread, holding the
    GIL, was in ``~ProcessGroupGloo`` (the DDP reducer held the last reference to the group
    and was freed with the train loop), joining gloo's worker threads, while a worker was
    still freeing the closing barrier. Gloo's barrier keeps a reference to every operation
    pending when it was issued, here the ``Join`` context's all-reduce of a tensor created in
    Python; that tensor owned its Python object by then, so freeing it needs the GIL.
    Deadlock.

    A worker frees each operation before it takes the next. With a single worker, one more
    collective after the barrier (:func:`_drain_gloo_worker`) completes only once the
    barrier and everything it held have been freed, and the group is destroyed after that.
    (One worker and the barrier alone still hung once in 18 loaded runs.) Collectives then
    run one at a time, which costs nothing measurable on CPU. torch builds its gloo backend
    as ``ProcessGroupGloo(store, rank, size, timeout=...)`` with two threads per device; for
    the call the class is swapped for a subclass passing the same options with
    ``threads = 1`` (devices from ``GLOO_SOCKET_IFNAME``, as torch does).
    """
    import torch.distributed.distributed_c10d as c10d

    gloo = c10d.ProcessGroupGloo

    class SingleWorkerGloo(gloo):
        def __init__(self, store, rank, size, timeout=c10d.default_pg_timeout):
            options = gloo._Options()
            options._timeout = timeout
            interfaces = os.environ.get("GLOO_SOCKET_IFNAME", "")
            options._devices = [
                gloo.create_device(interface=name) for name in interfaces.split(",") if name
            ] or [gloo.create_default_device()]
            options._threads = 1
            super().__init__(store, rank, size, options)

    c10d.ProcessGroupGloo = SingleWorkerGloo
    try:
        yield
    finally:
        c10d.ProcessGroupGloo = gloo


def _drain_gloo_worker(timeout: float = 60.0):
    """Return once the single gloo worker has freed every operation issued so far.

    One more all-reduce, on a tensor this function keeps: the worker frees the barrier (and
    what it held) before taking this operation, and once it has freed this one too, only our
    reference to the tensor is left. Waiting sleeps, so the GIL stays free for the worker.
    """
    import time

    import torch
    import torch.distributed as dist

    token = torch.zeros(1)
    dist.all_reduce(token)
    deadline = time.monotonic() + timeout
    while token._use_count() > 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    if token._use_count() > 1:  # never seen; freeing it in C++ later must not need the GIL
        _UNDRAINED.append(token)


_UNDRAINED = []


def _join_device_on_cpu():
    """``parlai.utils.fsdp``'s joinable train loop and evaluator report ``opt['gpu']``
    (-1 on CPU) as their ``join_device``; torch's ``Join`` then allocates a tensor on device
    -1. On CPU they report ``torch.device('cpu')`` instead.
    """
    import torch
    import parlai.utils.fsdp as fsdp

    for cls in (fsdp.JoinableTrainLoop, fsdp.JoinableEvaluator):
        mangled = f"_{cls.__name__}__device"

        def join_device(self, _mangled=mangled):
            device = getattr(self, _mangled)
            if device is None or (isinstance(device, int) and device < 0):
                return torch.device("cpu")
            return device

        cls.join_device = property(join_device)


def _ddp_on_cpu_modules():
    """ParlAI wraps models in DDP with ``device_ids=[opt['gpu']]``, i.e. ``[-1]`` on CPU.

    torch's DistributedDataParallel requires ``device_ids=None`` for CPU modules. The
    generator and ranker agent modules get a view of ``torch`` whose DDP class maps a
    device list of only CPU markers (-1/None) to None; with GPUs nothing changes.
    """
    import torch
    import parlai.core.torch_generator_agent as generator_module
    import parlai.core.torch_ranker_agent as ranker_module

    if isinstance(generator_module.torch, _ModuleView):
        return

    class DistributedDataParallel(torch.nn.parallel.DistributedDataParallel):
        def __init__(self, module, device_ids=None, *args, **kwargs):
            if device_ids is not None and all(d is None or d < 0 for d in device_ids):
                device_ids = None
            super().__init__(module, device_ids, *args, **kwargs)

    parallel = _ModuleView("torch.nn.parallel", torch.nn.parallel)
    parallel.DistributedDataParallel = DistributedDataParallel
    nn = _ModuleView("torch.nn", torch.nn)
    nn.parallel = parallel
    torch_view = _ModuleView("torch", torch)
    torch_view.nn = nn
    generator_module.torch = torch_view
    ranker_module.torch = torch_view


def _empathetic_dialogues_from_mirror():
    """ParlAI's ED builder downloads only from parl.ai; ours tries the mirror first.

    It installs the files exactly where ParlAI's ``build`` would (same folder, same
    ``.built`` marker and version), so the stock ``-t empathetic_dialogues`` teacher is
    unchanged. See :mod:`parlai_empathy.data.empathetic_dialogues_build`.
    """
    import parlai.tasks.empathetic_dialogues.build as ed_build
    from parlai_empathy.data import empathetic_dialogues_build

    if ed_build.build is not empathetic_dialogues_build.build:
        ed_build.build = empathetic_dialogues_build.build
    agents = sys.modules.get("parlai.tasks.empathetic_dialogues.agents")
    if agents is not None:
        agents.build = empathetic_dialogues_build.build


def _interactive_chat():
    """``parlai interactive`` prints ~180 lines of options before the prompt, truncates long
    messages silently and shows a traceback on Ctrl-C.

    ``parlai.scripts.interactive.interactive`` (the function its script class calls) becomes
    :func:`parlai_empathy.chat.interactive`: ParlAI's loop, statement for statement, for
    every agent; agents with ``start_chat`` (:class:`parlai_empathy.chat.ChatMixin`) get a
    short banner instead of the options (``-v`` shows them), truncation notices, a chat-only
    repetition guard, and Ctrl-C ending the chat like ``[EXIT]``.
    """
    import parlai.scripts.interactive as interactive_script
    from parlai_empathy import chat

    if interactive_script.interactive is not chat.interactive:
        interactive_script.interactive = chat.interactive


def _train_model_interrupt_checkpoint():
    """Ctrl-C in ``parlai train_model`` ends with a traceback and keeps only what the last
    ``--save-every-n-secs`` or validation happened to save (often nothing).

    For agents that ask for it (``checkpoint_on_interrupt``, see
    :class:`parlai_empathy.training.InterruptCheckpointMixin`), a single-process
    ``TrainLoop`` finishes the update in progress, saves ``MODEL.checkpoint`` (and ``MODEL``
    when no validation has saved one yet) through temporary files and renames, says how to
    resume, and exits with status 130, without a traceback. Other agents and distributed runs
    keep ParlAI's behaviour.
    """
    import parlai.scripts.train_model as train_model
    from parlai_empathy import training

    training.install(train_model.TrainLoop)


def _best_after_updates():
    """``--best-after-updates``: the originals' model selection (see
    :mod:`parlai_empathy.early_stopping`); installed after the resume fixes, so a resumed
    run's best value and impatience are recounted last."""
    import parlai.scripts.train_model as train_model
    from parlai_empathy import early_stopping

    early_stopping.install(train_model.TrainLoop)


def _init_model_list_options():
    """``--init-model`` crashes on a list option that the init model saved and this run leaves
    unset (``TypeError: 'NoneType' object is not iterable``).

    ParlAI's ``compare_init_model_opts`` (called by ``create_agent`` only to log how the two
    option sets differ) compares a saved list with ``list(curr_opt.get(k, []))``, which fails
    when the key is present with ``None``; every classifier has one (``--classes``, filled
    from its label set at init). The comparison reads a copy of the current options in which
    such a ``None`` reads as ``[]``; what the function does to ``opt`` (resolving a ``zoo:``
    init model) is unchanged.
    """
    import parlai.core.agents as agents
    from parlai.core.build_data import modelzoo_path
    from parlai.core.opt import Opt

    original = agents.compare_init_model_opts
    if getattr(original, "_parlai_empathy_wrapped", False):
        return

    def compare_init_model_opts(opt, curr_opt):
        init_model = opt.get("init_model")
        if init_model is not None:
            optfile = modelzoo_path(opt.get("datapath"), init_model) + ".opt"
            if os.path.isfile(optfile):
                saved = Opt.load(optfile)
                lists = [k for k, v in saved.items() if isinstance(v, list)]
                if any(k in curr_opt and curr_opt[k] is None for k in lists):
                    view = dict(curr_opt)
                    for k in lists:
                        if k in view and view[k] is None:
                            view[k] = []
                    return original(opt, view)
        return original(opt, curr_opt)

    compare_init_model_opts._parlai_empathy_wrapped = True
    agents.compare_init_model_opts = compare_init_model_opts
