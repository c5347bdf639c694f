"""scripts/install_chromium.sh (run by scripts/test.sh): what it does without root, as root,
and in CI. A fake ``id`` and ``apt-get`` on an otherwise empty PATH stand in for the system."""
import os
import shutil

import pytest

from parlai_cli import run_command

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "install_chromium.sh")
BASH = shutil.which("bash")


def _system(tmp_path, uid, apt_works):
    """A PATH with ``id -u`` answering ``uid`` and an apt-get that logs its calls (and makes
    ``chromium`` appear when ``apt_works``)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(shutil.which("mktemp"), bin_dir / "mktemp")
    (bin_dir / "id").write_text(f"#!{BASH}\necho {uid}\n")
    chmod = shutil.which("chmod")
    install = f"printf '#!{BASH}\\n' > {bin_dir}/chromium; {chmod} +x {bin_dir}/chromium" \
        if apt_works else "exit 100"
    (bin_dir / "apt-get").write_text(
        f"#!{BASH}\necho \"$@\" >> {tmp_path}/apt-calls\n"
        f"case \"$1\" in install) {install};; esac\n")
    for tool in ("id", "apt-get"):
        os.chmod(bin_dir / tool, 0o755)
    return {"PATH": str(bin_dir), "TMPDIR": str(tmp_path)}


def _run(env, **extra):
    keep = {k: v for k, v in os.environ.items()
            if k not in ("PARLAI_EMPATHY_REQUIRE_BROWSER", "PARLAI_EMPATHY_NO_APT", "PATH")}
    return run_command([BASH, SCRIPT], env={**keep, **env, **extra}, replace_env=True,
                       merge_stderr=False, timeout=60)


def _apt_calls(tmp_path):
    path = tmp_path / "apt-calls"
    return path.read_text().splitlines() if path.exists() else []


def test_without_root_nothing_is_installed_and_the_tests_will_skip(tmp_path):
    proc = _run(_system(tmp_path, 1000, apt_works=True))
    assert proc.returncode == 0, proc.stderr
    assert "not root (nothing installed); the browser tests will skip" in proc.stderr
    assert "sudo bash scripts/install_chromium.sh" in proc.stderr
    assert _apt_calls(tmp_path) == []


def test_as_root_it_says_it_installs_with_apt_before_doing_it(tmp_path):
    proc = _run(_system(tmp_path, 0, apt_works=True))
    assert proc.returncode == 0, proc.stderr
    said = proc.stderr.index("running as root: installing Debian's chromium with apt-get")
    assert said < proc.stderr.index("chromium installed"), proc.stderr
    assert _apt_calls(tmp_path) == ["install -y -q chromium"]


def test_no_apt_setting_keeps_root_from_installing(tmp_path):
    proc = _run(_system(tmp_path, 0, apt_works=True), PARLAI_EMPATHY_NO_APT="1")
    assert proc.returncode == 0 and "PARLAI_EMPATHY_NO_APT is set" in proc.stderr
    assert _apt_calls(tmp_path) == []


@pytest.mark.parametrize("require, status", [(None, 0), ("1", 1)])
def test_a_failed_install_skips_the_tests_except_in_ci(tmp_path, require, status):
    extra = {"PARLAI_EMPATHY_REQUIRE_BROWSER": require} if require else {}
    proc = _run(_system(tmp_path, 0, apt_works=False), **extra)
    assert proc.returncode == status, proc.stderr
    assert "apt-get could not install chromium" in proc.stderr
    assert ("a browser is required" in proc.stderr) == bool(require)
    assert _apt_calls(tmp_path) == ["install -y -q chromium", "update -q", "install -y -q chromium"]
