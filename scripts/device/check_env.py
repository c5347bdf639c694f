"""Check, before any training, that the device's Python can run our generators' path.

Imports what ``parlai train_model`` / ``eval_model`` with ``-m empathy/moel`` import (found by
listing ``sys.modules`` after a real run), checks that ParlAI's compatibility fixes are armed
and that the installed ``parlai_empathy`` is the bundle's, prints versions and what torch
sees. Exit status 1 on any failure; ``--require-cuda`` also fails without a GPU.

    DEVICE_SITE=/tmp/site PYTHONPATH=/tmp/site python3 scripts/device/site_run.py \
        scripts/device/check_env.py [--require-cuda]
"""
import importlib
import os
import sys

MODULES = (
    # the image's own packages that our path imports
    "numpy", "torch", "pandas", "pyarrow", "scipy", "sklearn", "regex", "requests", "tqdm",
    "yaml", "joblib", "PIL", "google.protobuf", "tabulate", "sacrebleu",
    # carried as wheels
    "parlai", "parlai_empathy", "coloredlogs", "humanfriendly", "iopath", "nltk",
    "subword_nmt", "defusedxml", "rouge_score", "vaderSentiment",
    # the code paths themselves
    "parlai.core.torch_generator_agent", "parlai.scripts.train_model",
    "parlai.scripts.eval_model", "parlai.tasks.empathetic_dialogues.agents",
    "parlai.agents.empathy.moel", "parlai.agents.empathy.mime",
    "parlai.agents.empathy.transformer_generator", "parlai.tasks.esconv.agents",
    "parlai_empathy.report.evaluate", "parlai_empathy.resume_point",
    "parlai_empathy.metrics", "parlai_empathy.zoo", "nltk.tokenize.treebank",
    "nltk.tokenize.destructive", "rouge_score.rouge_scorer",
    "vaderSentiment.vaderSentiment",
)


def main():
    require_cuda = "--require-cuda" in sys.argv[1:]
    failures = []
    versions = {}
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # report every broken import, not only the first
            failures.append(f"import {name}: {type(exc).__name__}: {exc}")
            continue
        if "." not in name:
            versions[name] = getattr(module, "__version__", "?")
    from parlai_empathy import compat

    if not compat._APPLIED:
        failures.append("parlai_empathy.compat was not applied at `import parlai` "
                        "(parlai_empathy.pth not read: run through scripts/device/site_run.py)")
    site_dir = os.environ.get("DEVICE_SITE")
    if site_dir:
        for name in ("parlai", "parlai_empathy", "nltk"):
            where = os.path.realpath(sys.modules[name].__file__) if name in sys.modules else ""
            if not where.startswith(os.path.realpath(site_dir) + os.sep):
                failures.append(f"{name} imported from {where}, not from {site_dir}")
    print("python", sys.version.split()[0], sys.executable)
    print(" ".join(f"{k}={v}" for k, v in versions.items()))
    import torch

    cuda = torch.cuda.is_available()
    print("torch", torch.__version__, "cuda", torch.version.cuda, "available", cuda,
          torch.cuda.get_device_name(0) if cuda else "")
    if cuda:
        x = torch.randn(256, 256, device="cuda")
        torch.testing.assert_close((x @ x).cpu(), x.cpu() @ x.cpu(), rtol=1e-2, atol=1e-2)
    elif require_cuda:
        failures.append("torch sees no CUDA device (--require-cuda)")
    for failure in failures:
        print("FAIL", failure, file=sys.stderr)
    print("environment OK" if not failures else f"environment: {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
