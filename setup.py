"""Install parlai-empathy.

Our ParlAI-facing entries live in the repository folders ``agents/``, ``tasks/``,
``zoo/`` and ``scripts/parlai/``; they are installed *into ParlAI's own namespace*
(``parlai.agents.empathy``, ``parlai.tasks.esconv``, ``parlai.zoo.empathy``, ...), so
ParlAI's loader finds them with its normal naming rules in every process, spawned
workers included. No top-level ``agents``/``tasks``/``zoo`` package is installed.

``parlai_empathy.pth`` is copied next to the packages: at interpreter start it arms a
post-import hook that applies ``parlai_empathy.compat`` right after ``parlai`` is imported,
so stock ParlAI agents get the Python 3.11 / torch 2.x fixes as well.

ParlAI itself must be installed with ``--no-deps`` (see README and
``requirements/parlai-runtime.txt``): its declared requirements include torchtext and
torchvision builds that pin an old torch.
"""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))

# name in ParlAI's namespace -> folder in this repository
PARLAI_NAMESPACE_PACKAGES = {
    "parlai.agents.empathy": "agents/empathy",
    "parlai.zoo.empathy": "zoo/empathy",
}
for _task in sorted(os.listdir(os.path.join(HERE, "tasks"))):
    if os.path.isfile(os.path.join(HERE, "tasks", _task, "__init__.py")):
        PARLAI_NAMESPACE_PACKAGES[f"parlai.tasks.{_task}"] = f"tasks/{_task}"

# single modules dropped into parlai.scripts so that `parlai <command>` lists them
_SCRIPTS_DIR = os.path.join(HERE, "scripts", "parlai")
PARLAI_SCRIPT_MODULES = sorted(
    f[: -len(".py")]
    for f in (os.listdir(_SCRIPTS_DIR) if os.path.isdir(_SCRIPTS_DIR) else [])
    if f.endswith(".py")
)


def _library_packages():
    found = []
    for root, _dirs, files in os.walk(os.path.join(HERE, "parlai_empathy")):
        if "__init__.py" in files:
            found.append(os.path.relpath(root, HERE).replace(os.sep, "."))
    return sorted(found)


class BuildWithStartupHook(build_py):
    """Also copy parlai_empathy.pth and our parlai.scripts modules into the build."""

    def run(self):
        super().run()
        shutil.copy(os.path.join(HERE, "parlai_empathy.pth"), self.build_lib)
        scripts_dir = os.path.join(self.build_lib, "parlai", "scripts")
        os.makedirs(scripts_dir, exist_ok=True)
        for name in PARLAI_SCRIPT_MODULES:
            shutil.copy(os.path.join(HERE, "scripts", "parlai", name + ".py"), scripts_dir)


setup(
    name="parlai-empathy",
    version="0.1.0",
    description="Empathetic dialogue models, datasets and evaluation for ParlAI",
    long_description=open(os.path.join(HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=_library_packages() + sorted(PARLAI_NAMESPACE_PACKAGES),
    package_dir=dict(PARLAI_NAMESPACE_PACKAGES),
    # zoo release archives ship beside the zoo entries (parlai/zoo/empathy/releases/)
    package_data={"parlai.zoo.empathy": ["releases/*.tar.gz"]},
    cmdclass={"build_py": BuildWithStartupHook},
    # parlai itself is installed separately with --no-deps (see the module docstring).
    install_requires=[
        line.strip()
        for line in open(os.path.join(HERE, "requirements", "runtime.txt"))
        if line.strip() and not line.startswith("#")
    ],
    zip_safe=False,
)
