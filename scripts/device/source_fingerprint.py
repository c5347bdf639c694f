"""sha256 of the package's source files in a checkout (standard library only).

``build_bundle.sh`` records it for the wheel it builds; ``train_recipes.sh`` recomputes it on
the checkout that travelled and refuses to train a stale wheel.

    python3 scripts/device/source_fingerprint.py [REPO_ROOT]
"""
import hashlib
import os
import sys

TREES = ("parlai_empathy", "agents", "tasks", "zoo", os.path.join("scripts", "parlai"))
FILES = ("setup.py", "parlai_empathy.pth", "pyproject.toml", os.path.join("requirements", "runtime.txt"))


def source_files(root):
    found = [f for f in FILES if os.path.isfile(os.path.join(root, f))]
    for tree in TREES:
        for folder, dirs, files in os.walk(os.path.join(root, tree)):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in files:
                if name.endswith((".pyc", ".tar.gz")):
                    continue  # bytecode; zoo release archives are not in the device wheel
                found.append(os.path.relpath(os.path.join(folder, name), root))
    return sorted(found)


def fingerprint(root):
    digest = hashlib.sha256()
    for path in source_files(root):
        digest.update(path.replace(os.sep, "/").encode() + b"\0")
        with open(os.path.join(root, path), "rb") as handle:
            digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()


if __name__ == "__main__":
    print(fingerprint(sys.argv[1] if len(sys.argv) > 1 else "."))
