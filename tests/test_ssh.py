"""xdist workers over ssh (SPEC §7), against a real sshd that the test starts on
127.0.0.1: workers started in the study's folder on a "shared filesystem" (here
the same one) write their rows to the controller's calc dir; a worker started
elsewhere is an error before any pset runs."""

from __future__ import annotations

import shutil
import sys

import pytest

import pytest_psweep as ps
from tests.conftest import INNER_ADDOPTS
from tests.daemons import sshd

# one sshd for the module, on one xdist worker (--dist loadgroup); not beside the
# SLURM tests, which start daemons too
pytestmark = pytest.mark.xdist_group("daemons")


@pytest.fixture(scope="module")
def ssh_config(tmp_path_factory):
    yield from sshd(tmp_path_factory.mktemp("ssh") / "sshd")


SWEEP = """
    import os
    import pytest_psweep as ps

    @ps.sweep(ps.plist("x", range(12)))
    def sweep_remote(pset, pset_dir):
        (pset_dir / "out.txt").write_text(str(pset["x"]))
        worker = os.environ["PYTEST_XDIST_WORKER"]
        return {"y": pset["x"] + 1, "cwd": os.getcwd(), "worker": worker, "dir": str(pset_dir)}
"""


def tx(ssh_config, chdir=None):
    """The --tx of one ssh worker, after the plugins the session leaves out: an ssh
    worker's environment has no PYTEST_ADDOPTS, and a plugin only a worker loaded
    (pytest-rerunfailures) fails there for want of the controller's half."""
    spec = f"ssh=psweep-test//ssh_config={ssh_config}//python={sys.executable}"
    return [*INNER_ADDOPTS.split(), "--tx", spec + (f"//chdir={chdir}" if chdir else "")]


def test_ssh_workers_started_in_the_study_write_to_the_controller_s_calc_dir(pytester, ssh_config):
    pytester.makepyfile(sweep_remote=SWEEP)
    result = pytester.runpytest_subprocess(
        "--psweep",
        *tx(ssh_config, pytester.path),
        *tx(ssh_config, pytester.path),
        "--dist",
        "load",
    )
    result.assert_outcomes(passed=12)
    db = ps.df_read(pytester.path / "calc" / "results.pk")
    assert sorted(db["y"]) == list(range(1, 13))
    assert set(db["worker"]) == {"gw0", "gw1"}  # both ssh workers ran psets
    assert set(db["cwd"]) == {str(pytester.path)}
    assert set(db["_calc_dir"]) == {str(pytester.path / "calc")}
    for pset_id, x in zip(db["_pset_id"], db["x"]):  # pset_dir is the controller's folder
        assert (pytester.path / "calc" / pset_id / "out.txt").read_text() == str(x)


def test_an_ssh_worker_without_chdir_is_an_error_not_stale_rows(pytester, ssh_config):
    pytester.makepyfile(sweep_remote=SWEEP)
    result = pytester.runpytest_subprocess("--psweep", *tx(ssh_config), "--dist", "load")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(
        [f"*worker gw0 runs in *pyexecnetcache, the controller in {pytester.path}*chdir=*"]
    )
    assert not (pytester.path / "calc" / "results.pk").exists()


def test_ssh_workers_that_mount_the_study_under_another_path_run_it(pytester, tmp_path):
    """A compute node that sees the study under another path (sshd in a mount
    namespace of its own, the study bind-mounted there): the worker knows it by the
    controller's token, pset_dir is its own path, _calc_dir the controller's."""
    pytester.makepyfile(sweep_remote=SWEEP)
    view = tmp_path / "gpfs" / "home" / "study"  # empty here, the study in sshd's view
    view.mkdir(parents=True)
    for ssh_config in sshd(tmp_path / "sshd", binds=[(pytester.path, view)]):
        result = pytester.runpytest_subprocess(
            "--psweep", *tx(ssh_config, view), *tx(ssh_config, view), "--dist", "load"
        )
    result.assert_outcomes(passed=12)
    assert not list(view.iterdir())  # the controller never saw that path
    db = ps.df_read(pytester.path / "calc" / "results.pk")
    assert set(db["cwd"]) == {str(view)}
    assert set(db["_calc_dir"]) == {str(pytester.path / "calc")}
    assert set(db["dir"]) == {str(view / "calc" / pset_id) for pset_id in db["_pset_id"]}
    for pset_id, x in zip(db["_pset_id"], db["x"]):  # written through the worker's view
        assert (pytester.path / "calc" / pset_id / "out.txt").read_text() == str(x)


def test_a_worker_in_another_study_is_refused(pytester, tmp_path):
    pytester.makepyfile(sweep_remote=SWEEP)
    other = tmp_path / "other"
    shutil.copytree(pytester.path, other)
    pytester.runpytest_subprocess("--psweep")  # the controller's study has its token
    (other / "calc").mkdir()
    (other / "calc" / ".psweep-study").write_text("another study\n")
    result = pytester.runpytest_subprocess(
        "--psweep", "-p", "no:randomly", "--tx", f"popen//chdir={other}", "--dist", "load"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines([f"*worker gw0 runs in {other}*found another study*"])
    assert len(ps.df_read(pytester.path / "calc" / "results.pk")) == 12  # only the first run
