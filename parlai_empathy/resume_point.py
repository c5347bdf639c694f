"""Resume points: a ParlAI training run carried from one machine (or session) to the next.

A long training (MoEL to early stopping: 3-4 hours on 2 CPU cores) does not fit in one working
session, and what is not committed is gone at the next. ParlAI resumes a run from its folder
(``MODEL``, ``MODEL.checkpoint`` and their ``.trainstats``), but that folder holds Adam's two
moment estimates beside every weight in float32: 180 MB for MoEL, too big to commit. A resume
point is the part of that folder which continuing needs, in one small archive::

    python -m parlai_empathy.resume_point pack --model-file RUN/model --out moel_ed.resume.tar.gz
    python -m parlai_empathy.resume_point unpack moel_ed.resume.tar.gz --model-file NEW/model
    parlai train_model ... -mf NEW/model ...   # the same command: ParlAI resumes

What it keeps, and what it does not:

* the weights as float16 (the zoo's rounding; unpacked to float32, the relative error is at
  most 2^-11 of each weight, far below one update of Adam at the learning rates used);
* the learning-rate schedule (its state and ``number_training_updates``), so the schedule goes
  on from the same step;
* ``.trainstats``: the update count, epochs, training time, every validation report, the best
  validation value and the impatience, so early stopping goes on where it was;
* the options (``.opt``) and the dictionary;
* the optimizer's settings and current learning rate (its ``param_groups``), **not** its
  per-weight state: Adam starts its moment estimates afresh when the run resumes (its bias
  correction makes the first updates about one learning rate in size per weight).
  ``resume.json`` in the archive says so.

When the run's last checkpoint is ahead of its best validated model (the last validation did
not improve), both are kept: ParlAI continues from the checkpoint and still ends on the best.
A run that has compared no validation yet (``--best-after-updates``) and was stopped before
its end has no ``MODEL``: its last checkpoint alone is packed (``best_train_steps`` is null).

The archive is written to a temporary name and renamed (never half-written); unpacking checks
every member's sha256, refuses a folder that already holds a run, writes into a temporary
folder beside the target and moves the files into place, ``.trainstats`` last, so a failure
leaves the target as it was. Weights are read with the project's safe loader: loading a resume
point never runs code from it.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile

from parlai_empathy.mirror import unpack
from parlai_empathy.safe_load import load_checkpoint, read_opt_file

FORMAT = 1
MANIFEST = "resume.json"
# the files of one saved state, by suffix of the model file (ParlAI's save_model writes them)
STATE_SUFFIXES = ("", ".opt", ".trainstats")
DICT_SUFFIXES = (".dict", ".dict.opt")
DROPPED = ("optimizer state",)  # what resume.json says was left out


class ResumePointError(ValueError):
    """A resume point that cannot be written or used; the message names the file."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_json(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise ResumePointError(f"{path}: cannot read it as JSON ({exc})") from None


def _load_states(path: str) -> dict:
    states = load_checkpoint(path)
    if not isinstance(states, dict) or "model" not in states:
        raise ResumePointError(f"{path}: not a ParlAI model file (no 'model' weights)")
    if not isinstance(states.get("number_training_updates"), int):
        raise ResumePointError(
            f"{path}: field 'number_training_updates' is missing (saved by a training run?)")
    return states


def _slim_weights(states: dict) -> bytes:
    """``states`` without the optimizer, weights as float16, serialized."""
    import torch

    from parlai_empathy.zoo import half_precision

    slim = dict(states)
    slim["model"] = half_precision(states["model"])
    optimizer = states.get("optimizer")
    if isinstance(optimizer, dict) and "param_groups" in optimizer:
        # its settings and current learning rate (which the first update after the resume
        # uses: the schedule sets it after each update), without the per-weight state
        slim["optimizer"] = {"state": {}, "param_groups": optimizer["param_groups"]}
    else:
        slim.pop("optimizer", None)
    buffer = io.BytesIO()
    torch.save(slim, buffer)
    return buffer.getvalue()


def _portable_opt(path: str) -> bytes:
    """The saved options without this machine's paths: a resumed run saves ``init_model:
    RUN/model.checkpoint``, which ParlAI would load instead of the restored weights wherever
    that path still exists; ``model_file``/``dict_file`` come from the resumed command."""
    opt = read_opt_file(path)
    for key in ("init_model", "model_file", "dict_file"):
        opt.pop(key, None)
    return json.dumps(opt, indent=4, sort_keys=True).encode()


def pack(model_file: str, out: str) -> dict:
    """Write the resume point of the run whose model file is ``model_file`` to ``out``.

    The run continues from whichever of ``MODEL.checkpoint`` and ``MODEL`` holds the later
    weights (by the ``number_training_updates`` saved in them); its ``.trainstats`` must
    describe those weights (ParlAI rewrites ``MODEL.trainstats`` at the end of a finished run,
    when it no longer does: such a run resumes from its checkpoint only).

    :return: the manifest written into the archive.
    :raises ResumePointError: when the run has neither a saved model nor a checkpoint (it
        never validated), or a file is unreadable or inconsistent.
    """
    checkpoint = model_file + ".checkpoint"
    has_model = os.path.isfile(model_file) and os.path.isfile(model_file + ".trainstats")
    has_checkpoint = os.path.isfile(checkpoint) and os.path.isfile(checkpoint + ".trainstats")
    if not has_model and not has_checkpoint:
        raise ResumePointError(
            f"{model_file}: no saved model or checkpoint with its .trainstats (a resume point "
            "starts from a run that has validated at least once)"
        )
    # MODEL is missing while no validation has been compared yet (--best-after-updates) in a
    # run stopped before its end: the checkpoint alone is the run
    states = {"": _load_states(model_file)} if has_model else {}
    stats_files = {}  # where a state's .trainstats is read from, when not beside it
    if has_checkpoint:
        checkpoint_states = _load_states(checkpoint)
        if not has_model or (checkpoint_states["number_training_updates"]
                             > states[""]["number_training_updates"]):
            states[".checkpoint"] = checkpoint_states
        elif (checkpoint_states["number_training_updates"]
                == states[""]["number_training_updates"]):
            # the same state saved twice (a validation that improved, with
            # --save-after-valid): MODEL's weights, the checkpoint's statistics, which a
            # finished run does not rewrite
            stats_files[""] = checkpoint + ".trainstats"
    prefix = ".checkpoint" if ".checkpoint" in states else ""
    continue_from = "model" + prefix
    stats = _read_json(stats_files.get(prefix, model_file + prefix + ".trainstats"))
    steps = states[prefix]["number_training_updates"]
    if stats.get("train_steps") != steps:
        raise ResumePointError(
            f"{model_file + prefix}.trainstats: field 'train_steps' is "
            f"{stats.get('train_steps')} but the weights beside it were saved after {steps} "
            "updates (a finished run rewrites it); resume from a checkpoint saved at a "
            "validation (--save-after-valid true) instead"
        )
    members = {}
    for saved, saved_states in states.items():
        members["model" + saved] = _slim_weights(saved_states)
        for suffix in STATE_SUFFIXES[1:]:
            path = model_file + saved + suffix
            if suffix == ".trainstats":
                path = stats_files.get(saved, path)
                with open(path, "rb") as f:
                    members["model" + saved + suffix] = f.read()
            else:
                members["model" + saved + suffix] = _portable_opt(path)
    for suffix in DICT_SUFFIXES:
        if os.path.isfile(model_file + suffix):
            with open(model_file + suffix, "rb") as f:
                members["model" + suffix] = f.read()
    if "model.dict" not in members:
        raise ResumePointError(f"{model_file}.dict: missing (the run's dictionary)")
    manifest = {
        "format": FORMAT,
        "continue_from": continue_from,
        "train_steps": stats.get("train_steps"),
        "total_epochs": stats.get("total_epochs"),
        "best_valid": stats.get("best_valid"),
        # None: no validation compared yet, no MODEL
        "best_train_steps": states[""]["number_training_updates"] if "" in states else None,
        "impatience": stats.get("impatience"),
        "weights_dtype": "float16",
        "dropped": list(DROPPED),
        "note": "the optimizer's state is not kept: Adam's moment estimates restart on resume",
        "sha256": {name: _sha256(data) for name, data in sorted(members.items())},
    }
    members[MANIFEST] = json.dumps(manifest, indent=2, sort_keys=True).encode()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    partial = out + ".part"
    try:
        with open(partial, "wb") as raw:
            # gzip level 6, no timestamp in its header
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=6) as gz:
                with tarfile.open(fileobj=gz, mode="w") as tar:
                    for name in sorted(members):
                        info = tarfile.TarInfo(name)
                        info.size, info.mtime, info.mode = len(members[name]), 0, 0o644
                        tar.addfile(info, io.BytesIO(members[name]))
        os.replace(partial, out)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return manifest


def _check(staging: str, archive: str) -> dict:
    manifest_path = os.path.join(staging, MANIFEST)
    if not os.path.isfile(manifest_path):
        raise ResumePointError(f"{archive}: not a resume point (no {MANIFEST})")
    manifest = _read_json(manifest_path)
    if manifest.get("format") != FORMAT:
        raise ResumePointError(
            f"{archive}: {MANIFEST} field 'format' is {manifest.get('format')!r}; this version "
            f"reads format {FORMAT}"
        )
    expected = manifest.get("sha256") or {}
    present = sorted(n for n in os.listdir(staging) if n != MANIFEST)
    if sorted(expected) != present:
        raise ResumePointError(
            f"{archive}: members {present} differ from those {MANIFEST} lists {sorted(expected)}"
        )
    for name, digest in expected.items():
        with open(os.path.join(staging, name), "rb") as f:
            if _sha256(f.read()) != digest:
                raise ResumePointError(f"{archive}: member {name} does not match its sha256")
    start = manifest.get("continue_from")
    if start not in ("model", "model.checkpoint"):
        raise ResumePointError(f"{archive}: {MANIFEST} field 'continue_from' is {start!r}")
    for required in (start, start + ".opt", start + ".trainstats", "model.dict"):
        if required not in expected:
            raise ResumePointError(f"{archive}: lacks {required}")
    return manifest


def unpack_into(archive: str, model_file: str) -> dict:
    """Restore the run of ``archive`` so that ``train_model -mf model_file`` resumes it.

    :return: the archive's manifest.
    :raises ResumePointError: when the archive is damaged, or ``model_file``'s folder already
        holds a run (nothing is overwritten).
    """
    import torch

    from parlai_empathy.zoo import cast_floats

    folder = os.path.dirname(os.path.abspath(model_file))
    base = os.path.basename(model_file)
    for existing in (model_file, model_file + ".checkpoint", model_file + ".trainstats"):
        if os.path.exists(existing):
            raise ResumePointError(
                f"{existing} exists: that folder already holds a run (resume it with the same "
                "train_model command, or unpack into an empty folder)"
            )
    os.makedirs(folder, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{base}.resume-", dir=folder)
    try:
        try:
            unpack(archive, staging)
        except ValueError as exc:
            raise ResumePointError(str(exc)) from None
        manifest = _check(staging, archive)
        names = [n for n in manifest["sha256"]]
        for name in names:
            if name in ("model", "model.checkpoint"):
                path = os.path.join(staging, name)
                states = load_checkpoint(path)
                states["model"] = cast_floats(states["model"], torch.float32)
                torch.save(states, path)
        # weights first, the .trainstats (what makes ParlAI resume) last
        ordered = sorted(names, key=lambda n: (n.endswith(".trainstats"), n))
        for name in ordered:
            os.replace(os.path.join(staging, name), model_file + name[len("model"):])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m parlai_empathy.resume_point",
                                      description=__doc__,
                                      formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="write the resume point of a training run")
    p.add_argument("--model-file", required=True, help="the run's -mf")
    p.add_argument("--out", required=True, help="the archive to write (.tar.gz)")
    u = sub.add_parser("unpack", help="restore a run from a resume point")
    u.add_argument("archive")
    u.add_argument("--model-file", required=True, help="the -mf the resumed run will use")
    args = parser.parse_args(argv)
    try:
        if args.command == "pack":
            manifest = pack(args.model_file, args.out)
            size = os.path.getsize(args.out)
            print(f"wrote {args.out} ({size:,} bytes): continue from {manifest['continue_from']} "
                  f"at {manifest['train_steps']} updates; best valid {manifest['best_valid']} at "
                  f"{manifest['best_train_steps']}")
        else:
            manifest = unpack_into(args.archive, args.model_file)
            print(f"restored {args.model_file} ({manifest['continue_from']}, "
                  f"{manifest['train_steps']} updates); run the same train_model command with "
                  f"-mf {args.model_file} to continue ({manifest['note']})")
    except ValueError as exc:  # ResumePointError, or a model file the safe loader refused
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
