"""Shared fixtures: the data mirror, fresh datapaths, and the installed package check."""
import os

import pytest

import parlai_empathy
from parlai_empathy.mirror import MIRROR_ENV

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
