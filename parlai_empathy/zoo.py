"""Model zoo releases: ``-mf zoo:empathy/<name>/model`` served offline.

ParlAI maps ``zoo:empathy/<name>/model`` to the module ``parlai.zoo.empathy.<name>`` and
calls its ``download(datapath)``; each of ours is two lines that hand a :class:`ZooRelease`
to :func:`download`. The release archive is obtained, in order, from

1. this package (the repository's ``zoo/empathy/releases/<archive>``, installed beside the
   zoo entries as ``parlai/zoo/empathy/releases/``, for small bundled models),
2. the mirror (``$PARLAI_EMPATHY_MIRROR/models/empathy/<archive>``),
3. ``$PARLAI_EMPATHY_ZOO_URL/<archive>`` (a folder or base URL where releases are hosted),

verified against the release's sha256 and unpacked into ``<datapath>/models/empathy/<name>/``
with :func:`parlai_empathy.mirror.build_once`, so a changed ``version`` re-fetches and a
failed fetch leaves nothing behind.

Packing a trained model into a release::

    python -m parlai_empathy.zoo pack --model-file runs/x/model --name x --version v1 \
        --out runs/x/release [--fp16] [--candidates responses.txt]

``--candidates`` (CoBERT): the release also ships the fixed candidate set as
``model.cands.txt`` (what ``parlai interactive`` answers from) and its cached encodings,
computed from the packed weights (``model.cands.cobert-encs``, float16 unless
``--candidates-dtype float32``).
"""
import argparse
import gzip
import io
import json
import os
import sys
import tarfile
import tempfile
from dataclasses import dataclass

from parlai_empathy.mirror import (
    DownloadError,
    RemoteFile,
    build_once,
    download as download_file,
    sha256_of,
    unpack,
)
from parlai_empathy.safe_load import load_checkpoint, read_opt_file

ZOO_URL_ENV = "PARLAI_EMPATHY_ZOO_URL"
MODEL_FILES = ("model", "model.opt", "model.dict")
# folders beside a model file that pack() keeps when present (transformers-based agents)
SIDE_FOLDERS = (".encoder", ".dict.tokenizer")


def bundled_releases_dir() -> str:
    """The folder of the release archives installed with the package, next to the zoo
    entries that name them (imported late: those entries import this module)."""
    import parlai.zoo.empathy

    return os.path.join(os.path.dirname(os.path.abspath(parlai.zoo.empathy.__file__)),
                        "releases")


@dataclass(frozen=True)
class ZooRelease:
    """One published model: ``zoo:empathy/<name>/model``."""

    name: str
    version: str
    sha256: str

    @property
    def archive(self) -> str:
        return f"{self.name}-{self.version}.tar.gz"

    def folder(self, datapath: str) -> str:
        return os.path.join(datapath, "models", "empathy", self.name)


def download(release: ZooRelease, datapath: str) -> str:
    """Make ``<datapath>/models/empathy/<name>/`` hold this release; return that folder."""
    folder = release.folder(datapath)
    build_once(folder, release.version, lambda staging: _populate(release, staging))
    return folder


def _populate(release: ZooRelease, staging: str) -> None:
    archive = os.path.join(staging, release.archive)
    bundled_dir = bundled_releases_dir()
    bundled = os.path.join(bundled_dir, release.archive)
    if os.path.isfile(bundled):
        # a bundled archive is checked like any download (a damaged install is caught)
        download_file(RemoteFile(release.archive, bundled, release.sha256), archive,
                      use_mirror=False)
    else:
        base = os.environ.get(ZOO_URL_ENV, "").strip()
        url = None
        if base:
            url = (base.rstrip("/") + "/" + release.archive) if "://" in base else os.path.join(
                os.path.expanduser(base), release.archive
            )
        remote = RemoteFile(f"models/empathy/{release.archive}", url, release.sha256)
        try:
            download_file(remote, archive)
        except DownloadError as exc:
            raise DownloadError(
                f"zoo:empathy/{release.name} {release.version}: {exc}\n"
                f"Releases are looked up in the package ({bundled_dir}), the mirror, "
                f"then {ZOO_URL_ENV}."
            ) from None
    unpack(archive, staging)
    os.remove(archive)
    missing = [f for f in MODEL_FILES if not os.path.isfile(os.path.join(staging, f))]
    if missing:
        raise ValueError(f"{release.archive}: release archive lacks {', '.join(missing)}")


def half_precision(weights):
    """``weights`` with floating-point tensors as float16 (see :func:`cast_floats`)."""
    import torch

    return cast_floats(weights, torch.float16)


def cast_floats(weights, dtype):
    """``weights`` with floating-point tensors as ``dtype``, each storage converted once.

    A state dict names a shared tensor once per module holding it (MoEL's word embeddings:
    ``embeddings.``, ``encoder.embeddings.`` and ``decoder.embeddings.table.weight``), all
    views of one storage, which ``torch.save`` writes once. Converting key by key would make
    independent copies, stored three times; here the aliases stay views of one storage.
    """
    import torch

    converted_storages = {}  # (storage address, dtype) -> the whole storage, converted
    converted = {}
    for key, tensor in weights.items():
        if not torch.is_tensor(tensor) or not tensor.is_floating_point():
            converted[key] = tensor
            continue
        storage = tensor.untyped_storage()
        if storage.nbytes() == 0:
            converted[key] = tensor.to(dtype)
            continue
        ident = (storage.data_ptr(), tensor.dtype)
        if ident not in converted_storages:
            whole = torch.empty(0, dtype=tensor.dtype)
            whole.set_(storage, 0, (storage.nbytes() // tensor.element_size(),))
            converted_storages[ident] = whole.to(dtype)
        converted[key] = converted_storages[ident].as_strided(
            tensor.size(), tensor.stride(), tensor.storage_offset()
        )
    return converted


def pack(model_file: str, name: str, version: str, out_dir: str, fp16: bool = False,
         candidates: str = None, candidates_dtype: str = "float16") -> str:
    """Write ``<out_dir>/<name>-<version>.tar.gz`` from a trained ParlAI model; return its path.

    Keeps the weights (optionally as fp16; a tensor shared by several modules is still
    stored once) and drops optimizer/scheduler state; the saved opt forgets the training
    machine's paths. Folders saved beside the model by transformers-based agents
    (``model.encoder/``: the encoder's config; ``model.dict.tokenizer/``: the tokenizer)
    travel with it. The archive is byte-reproducible for the same input
    (sorted members, fixed times), so its sha256 identifies the model.
    """
    import torch

    states = load_checkpoint(model_file)
    weights = states["model"]
    if fp16:
        weights = half_precision(weights)
    slim = {"model": weights}
    opt = read_opt_file(model_file + ".opt")
    for key in ("model_file", "dict_file", "init_model", "datapath", "download_path",
                "parlai_home", "starttime", "override", "encoder_path"):
        opt.pop(key, None)
    opt["skip_generation"] = False
    if fp16:
        opt["zoo_weights_dtype"] = "float16"
    if candidates:
        if opt.get("model") != "empathy/cobert":
            raise ValueError(f"--candidates: {model_file} is a {opt.get('model')} model; "
                             "only empathy/cobert releases ship fixed candidates")
        opt["candidate_cache_dtype"] = candidates_dtype

    os.makedirs(out_dir, exist_ok=True)
    target = os.path.join(out_dir, f"{name}-{version}.tar.gz")
    with tempfile.TemporaryDirectory() as tmp:
        weights_path = os.path.join(tmp, "model")
        torch.save(slim, weights_path)
        members = {
            "model": open(weights_path, "rb").read(),
            "model.opt": json.dumps(opt, indent=4, sort_keys=True).encode(),
            "model.dict": open(model_file + ".dict", "rb").read(),
        }
        for suffix in SIDE_FOLDERS:
            folder = model_file + suffix
            for root, _dirs, files in os.walk(folder):
                for file_name in files:
                    path = os.path.join(root, file_name)
                    inside = os.path.relpath(path, folder).replace(os.sep, "/")
                    member = f"model{suffix}/{inside}"
                    with open(path, "rb") as f:
                        members[member] = f.read()
        if candidates:
            members.update(_candidate_members(members, candidates, tmp))
    partial = target + ".part"
    try:
        with open(partial, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
            with tarfile.open(fileobj=gz, mode="w") as tar:
                for member_name in sorted(members):
                    data = members[member_name]
                    info = tarfile.TarInfo(member_name)
                    info.size, info.mtime, info.mode = len(data), 0, 0o644
                    tar.addfile(info, io.BytesIO(data))
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return target


def _candidate_members(members, candidates: str, tmp: str):
    """``model.cands.txt`` and its cached encodings, computed by loading the release as a
    user will (from ``members`` written to a folder)."""
    from parlai.core.agents import create_agent_from_model_file

    from parlai_empathy.cobert import CACHE_SUFFIX, SHIPPED_CANDIDATES_SUFFIX

    release = os.path.join(tmp, "release")
    for member, data in members.items():
        path = os.path.join(release, *member.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    with open(candidates, "rb") as f:
        text = f.read()
    lines = [line for line in text.decode("utf-8").splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"--candidates {candidates}: the file has no candidate")
    cands_member = "model" + SHIPPED_CANDIDATES_SUFFIX
    with open(os.path.join(release, cands_member), "wb") as f:
        f.write(text)
    model = os.path.join(release, "model")
    create_agent_from_model_file(model, {"interactive_mode": True, "eval_candidates": "fixed",
                                         "interactive_candidates": "fixed"})
    cache_member = f"model.{os.path.splitext(cands_member)[0][len('model.'):]}.{CACHE_SUFFIX}"
    cache = os.path.join(release, cache_member)
    if not os.path.isfile(cache):
        raise RuntimeError(f"loading the release did not write {cache_member}")
    with open(cache, "rb") as f:
        return {cands_member: text, cache_member: f.read()}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m parlai_empathy.zoo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="pack a trained model into a zoo release archive")
    p.add_argument("--model-file", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--fp16", action="store_true", help="store the weights as float16")
    p.add_argument("--candidates", default=None,
                   help="CoBERT: ship this fixed candidate file (one per line) and its "
                   "cached encodings")
    p.add_argument("--candidates-dtype", default="float16", choices=["float16", "float32"])
    args = parser.parse_args(argv)
    for needed in (args.model_file, args.model_file + ".opt", args.model_file + ".dict"):
        if not os.path.isfile(needed):
            parser.error(f"{needed} does not exist")
    path = pack(args.model_file, args.name, args.version, args.out, args.fp16,
                args.candidates, args.candidates_dtype)
    print(f"{path}\nsha256 {sha256_of(path)}\nbytes {os.path.getsize(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
