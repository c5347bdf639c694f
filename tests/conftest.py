"""Shared fixtures: the data mirror, fresh datapaths, and the installed package check."""
import os

# Under pytest-xdist (scripts/test.sh runs one worker per core) every worker is one busy
# process: torch in it and in the commands it spawns gets one thread (two workers with two
# threads each on two cores oversubscribe them, and OpenMP's spinning barriers then slow both
# several-fold), and each worker gets its own ParlAI datapath, so that two workers never
# unpack the same zoo archive or build the same data folder at once. Set before anything
# imports torch; the spawned commands inherit both.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if _WORKER:
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, "1")
    if os.environ.get("PARLAI_DATAPATH"):
        os.environ["PARLAI_DATAPATH"] = os.path.join(os.environ["PARLAI_DATAPATH"], _WORKER)

import pytest  # noqa: E402

import parlai_empathy  # noqa: E402
from parlai_empathy.mirror import MIRROR_ENV  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pytest_report_header(config):
    return [
        f"parlai_empathy from {os.path.dirname(parlai_empathy.__file__)}",
        f"{MIRROR_ENV}={os.environ.get(MIRROR_ENV, '(unset: data tests will skip)')}",
    ]


def pytest_configure(config):
    # The tests exercise the installed package (its .pth hook and the modules it places in
    # ParlAI's namespace), never the checkout's folders directly.
    here = os.path.dirname(os.path.abspath(parlai_empathy.__file__))
    if here.startswith(REPO + os.sep) and "site-packages" not in here:
        raise pytest.UsageError(
            f"parlai_empathy was imported from the checkout ({here}); install it "
            "(bash scripts/setup_env.sh) and run the tests with .venv/bin/pytest"
        )


@pytest.fixture(scope="session")
def mirror():
    """The local mirror folder of public files (``../shared/data`` here), or skip."""
    path = os.environ.get(MIRROR_ENV)
    if not path or not os.path.isdir(path):
        pytest.skip(
            f"{MIRROR_ENV} does not name a local folder mirroring the public data files "
            "(for example ../shared/data); data tests need it"
        )
    return os.path.abspath(path)


@pytest.fixture
def datapath(tmp_path):
    path = tmp_path / "data"
    path.mkdir()
    return str(path)


@pytest.fixture(scope="session")
def ed_datapath(mirror, tmp_path_factory):
    """A datapath holding EmpatheticDialogues, built once per session from the mirror."""
    from parlai_empathy.data import empathetic_dialogues_build

    path = str(tmp_path_factory.mktemp("ed_data"))
    empathetic_dialogues_build.build({"datapath": path})
    return path
