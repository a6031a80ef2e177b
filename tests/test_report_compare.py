"""The report's comparison has numbers whenever the report is made (issue 22.5):
after a --psweep-compare session (from the rows it wrote), and after the fact with
``psweep report --baseline``."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.processes import copy_study, make_study, run_session
from tests.report_browser import psweep_cli
from tests.test_report_plots import QUADRATURE


def _cells(page: str, key: str) -> list[str]:
    row = re.search(rf'<tr><td class="text">{key}</td>(.*?)</tr>', page)
    assert row, f"no compare row for {key}"
    return re.findall(r"<td>(.*?)</td>", row[1])


@pytest.fixture(scope="module")
def quadrature(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The study run once (``calc``), and a copy of it with its database kept as
    ``base.pk``, then run again with its results drifted by 0.001 (``DRIFT=1``) into
    ``calc``: (run once, drifted). Each test works in a copy of one of them."""
    once = make_study(tmp_path_factory.mktemp("once"), sweep_quad=QUADRATURE)
    run_session(once).assert_outcomes(passed=24, failed=4)
    drifted = tmp_path_factory.mktemp("drifted")
    shutil.copytree(once, drifted, dirs_exist_ok=True)
    shutil.copy(drifted / "calc" / "results.pk", drifted / "base.pk")
    run_session(drifted, env={**os.environ, "DRIFT": "1"}).assert_outcomes(passed=24, failed=4)
    return once, drifted


@pytest.mark.xdist_group("report_compare_study")
def test_the_report_after_a_compare_session_shows_the_numbers(pytester, monkeypatch, quadrature):
    copy_study(quadrature[0], pytester.path)
    monkeypatch.setenv("DRIFT", "1")
    pytester.runpytest_subprocess("--psweep", "--psweep-compare").assert_outcomes(
        passed=10, failed=18
    )
    done = psweep_cli(pytester.path, "report", "calc", "-o", "r.html")
    assert done.returncode == 0, done.stderr
    page = (pytester.path / "r.html").read_text()
    database = pytester.path / "calc" / "results.pk"  # the baseline the session used
    assert f"14 of 14 psets compared differ from baseline {database}" in page
    # value: every midpoint pset moved by 1e-3; err too, by at most 1e-3
    assert _cells(page, "value") == ["14", "14", "0.001", _cells(page, "value")[3]]
    assert float(_cells(page, "value")[3]) > 0
    assert _cells(page, "err")[:3] == ["14", "14", "0.001"]
    assert page.count('<td class="text">method=midpoint, integrand=sin, n=10</td>') == 2
    assert "the 28 differences, pset by pset" in page


@pytest.mark.xdist_group("report_compare_study")
def test_the_report_compares_with_the_baseline_the_session_used(pytester, monkeypatch, quadrature):
    copy_study(quadrature[1], pytester.path)
    monkeypatch.setenv("DRIFT", "2")  # 0.002 from the baseline, 0.001 from the last run
    pytester.runpytest_subprocess("--psweep", "--psweep-baseline=base.pk").assert_outcomes(
        passed=10, failed=18
    )
    done = psweep_cli(pytester.path, "report", "calc", "-o", "r.html")
    assert done.returncode == 0, done.stderr
    page = (pytester.path / "r.html").read_text()
    base = pytester.path / "base.pk"
    assert f"14 of 14 psets compared differ from baseline {base}" in page
    assert _cells(page, "value")[:3] == ["14", "14", "0.002"]


@pytest.mark.xdist_group("report_compare_study")
def test_psweep_report_baseline_compares_after_the_fact(pytester, quadrature):
    copy_study(quadrature[1], pytester.path)
    done = psweep_cli(pytester.path, "report", "calc", "-o", "r.html", "--baseline", "base.pk")
    assert done.returncode == 0, done.stderr
    page = (pytester.path / "r.html").read_text()
    assert "14 of 24 psets compared differ from baseline base.pk (rtol 1e-09, atol 0)" in page
    assert _cells(page, "value")[:3] == ["24", "14", "0.001"]
    # a key left out is said, and not compared
    psweep_cli(
        pytester.path, "report", "calc", "-o", "r.html", "--baseline", "base.pk",
        "--ignore", "value", "err",
    )  # fmt: skip
    page = (pytester.path / "r.html").read_text()
    assert "0 of 24 psets compared differ" in page and "Not compared: value, err." in page
    # within a tolerance nothing differs
    psweep_cli(pytester.path, "report", "calc", "-o", "r.html", "--baseline", "base.pk",
               "--atol", "0.01")  # fmt: skip
    assert "0 of 24 psets compared differ" in (pytester.path / "r.html").read_text()


TOLERANCES = """
    import os
    import time
    import pytest_psweep as ps

    RUN = int(os.environ.get("RUN", "0"))

    def results(pset):
        return {"wall": time.perf_counter(), "err": pset["a"] * (1 + 1e-8 * RUN)}

    @ps.sweep(ps.plist("a", [1, 2]), compare={"wall": None, "err": {"rel": 1e-6}})
    def sweep_own(pset):
        return results(pset)

    @ps.sweep(ps.plist("a", [1, 2]))
    def sweep_default(pset):
        return results(pset)
"""


@pytest.mark.long
def test_per_result_tolerances_and_exclusions(pytester, monkeypatch):
    pytester.makepyfile(sweep_tol=TOLERANCES)
    pytester.runpytest_subprocess("--psweep").assert_outcomes(passed=4)
    monkeypatch.setenv("RUN", "1")
    result = pytester.runpytest_subprocess("--psweep", "--psweep-compare")
    # sweep_own: wall not compared, err within its own rel 1e-6; the default sweep
    # differs in both (rtol 1e-9)
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["*sweep_default*differ*in wall, err*"])
    # a drift in sweep_own: the message and the report say its own rules
    monkeypatch.setenv("RUN", "1000")
    result = pytester.runpytest_subprocess("--psweep", "--psweep-compare", "-k", "own")
    result.assert_outcomes(failed=2)
    rules = "err within rel 1e-06, abs 0; not compared: wall"
    result.stdout.fnmatch_lines([f"*sweep_own*differ*in err; {rules}*"])
    assert psweep_cli(pytester.path, "report", "calc", "-o", "r.html").returncode == 0
    assert f"the session&#39;s per-result rules: {rules}" in (pytester.path / "r.html").read_text()


def test_the_ini_key_leaves_results_out_of_every_sweep(pytester, monkeypatch):
    pytester.makepyfile(sweep_tol=TOLERANCES)
    pytester.makeini("[pytest]\npsweep_compare_ignore = wall\npsweep_rtol = 1e-6\n")
    pytester.runpytest_subprocess("--psweep").assert_outcomes(passed=4)
    monkeypatch.setenv("RUN", "1")
    pytester.runpytest_subprocess("--psweep", "--psweep-compare").assert_outcomes(passed=4)


def test_a_wrong_compare_entry_names_its_key(pytester):
    pytester.makepyfile(
        sweep_bad="""
        import pytest_psweep as ps

        @ps.sweep(ps.plist("a", [1]), compare={"err": 0.1})
        def sweep_bad(pset):
            return {"err": 0.0}
        """
    )
    result = pytester.runpytest_subprocess("--psweep")
    assert result.ret == 2
    result.stdout.fnmatch_lines(["*compare=...): the entry of 'err' is 0.1; give None*"])
