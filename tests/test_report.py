"""The HTML report (SPEC §9): written by ``psweep report`` and ``--psweep-report``
(serially and under xdist), self-contained, and checked in a real headless Chromium
(Debian's, which .ci/run installs): no JavaScript errors, the table sorts and
filters, every plot is drawn."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import pytest_psweep as ps
from pytest_psweep import report
from tests.report_browser import browser, draw_all  # noqa: F401

STUDY = """
    import math
    import pytest_psweep as ps

    params = ps.pgrid(
        ps.plist("h", [0.001, 0.01, 0.1, 1.0]),
        ps.plist("method", ["euler", "rk4"]),
        ps.plist("n", [1, 2]),
    )

    @ps.sweep(params)
    def sweep_solver(pset):
        if pset["method"] == "euler" and pset["h"] == 1.0:
            raise ArithmeticError("euler diverges at h=1")
        order = 1 if pset["method"] == "euler" else 4
        return {"error": pset["h"] ** order, "steps": int(10 / pset["h"]) * pset["n"]}

    @ps.sweep(ps.plist("size", [10, 20, 30]))
    def sweep_other(pset):
        return {"size_": pset["size"], "label": "s%d" % pset["size"]}
"""


def test_parameters_are_the_columns_that_hash_to_the_pset_hash(in_tmp):
    def func(pset):
        return {"result": pset["a"] * 2, "note": "x"}

    database = ps.run(func, ps.pgrid(ps.plist("a", [1, 2]), ps.plist("b", ["u", "v"])))
    assert report.param_columns(database) == ["a", "b"]
    # a column another sweep filled (NA here) is no parameter of this one
    assert report.param_columns(database.assign(other=None)) == ["a", "b"]


def test_pytest_writes_a_self_contained_report(pytester, workers):
    pytester.makepyfile(sweep_study=STUDY)
    result = pytester.runpytest_subprocess("--psweep", "--psweep-report=out/report.html", *workers)
    result.assert_outcomes(passed=17, failed=2)
    result.stdout.fnmatch_lines([f"report: {pytester.path}/out/report.html"])
    page = (pytester.path / "out" / "report.html").read_text()
    # offline: no script, style or image is fetched from anywhere
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?(https?:)?//""", page)
    assert "sweep_study.py::sweep_solver" in page and "sweep_study.py::sweep_other" in page
    assert "euler diverges at h=1" in page
    assert "Parameters: h, method, n; results: error, steps." in page
    assert "Parameters: size; results: size_, label." in page  # size_: a result by its name


def test_psweep_report_command_and_compare_lines(pytester):
    pytester.makepyfile(sweep_study=STUDY)
    pytester.runpytest_subprocess("--psweep")
    done = subprocess.run(
        [sys.executable, "-m", "pytest_psweep.cli", "report", "calc", "-o", "r.html"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "wrote r.html" in done.stdout and (pytester.path / "r.html").stat().st_size > 1e6
    result = pytester.runpytest_subprocess("--psweep", "--psweep-compare", "--psweep-report=c.html")
    page = (pytester.path / "c.html").read_text()
    assert "Compared with the baseline" in page
    # per sweep: the solver's 14 passed psets, the other sweep's 3
    assert re.search(r"<li>14 same, 0 differ, 0 new \(baseline \S+results.pk\)</li>", page)
    assert re.search(r"<li>3 same, 0 differ, 0 new \(baseline \S+results.pk\)</li>", page)
    result.stdout.fnmatch_lines(["*17 same, 0 differ, 0 new*"])


def test_without_the_report_extra_the_error_says_what_to_install(in_tmp):
    code = (
        "import sys; sys.modules['plotly'] = None\n"
        "import pytest_psweep as ps\nfrom pytest_psweep import report\n"
        "db = ps.run(lambda p: {'r': 1}, ps.plist('a', [1]))\n"
        "try:\n    report.build(db, 't')\nexcept ps.PsweepError as exc:\n    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "pip install 'pytest-psweep[report]'" in done.stdout, done.stderr


def test_a_shard_cannot_write_a_report(pytester):
    pytester.makepyfile(sweep_study=STUDY)
    result = pytester.runpytest_subprocess(
        "--psweep", "--psweep-shard=0/2", "--psweep-report=r.html"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*a shard task writes no database*psweep report*"])


def test_the_report_works_in_a_real_browser(pytester, browser, tmp_path):  # noqa: F811
    pytester.makepyfile(sweep_study=STUDY)
    pytester.runpytest_subprocess("--psweep", "--psweep-report=report.html")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.goto((pytester.path / "report.html").as_uri())
    solver = page.locator("section.sweep", has_text="sweep_solver")
    rows = solver.locator("table.rows tbody tr")
    assert rows.count() == 16
    assert solver.locator(".shown").inner_text() == "16 of 16 psets"

    # every plot is drawn once it is scrolled into view; drawn first (the explorer's
    # too), since a plot drawn above the table meanwhile moves its header away from
    # the click below (seen once: the rows then came in the order of h)
    assert page.locator(".plot").count() >= 4
    draw_all(page, ".plot, .explorer-plot")

    # sort by the error column, twice: ascending, then descending
    header = solver.locator("th.sortable", has_text="error").first
    column = solver.locator("th.sortable").all_inner_texts().index("error")
    header.click()
    ascending = [rows.nth(i).locator("td").nth(column).inner_text() for i in range(rows.count())]
    filled = [float(v) for v in ascending if v]
    assert filled == sorted(filled) and ascending[-1] == ""  # the failed pset has none: last
    header.click()
    descending = [rows.nth(i).locator("td").nth(column).inner_text() for i in range(rows.count())]
    assert [float(v) for v in descending if v] == sorted(filled, reverse=True)

    solver.locator("input.filter").fill("rk4")
    assert rows.count() == 8 and solver.locator(".shown").inner_text() == "8 of 16 psets"

    titles = page.locator(".plot .gtitle").all_text_contents()
    assert "pass/fail over h and n, a panel per method" in titles
    assert any(title.startswith("error against h, a line per method") for title in titles)
    assert page.locator(".plot .xaxislayer-above .xtick").count() > 0
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    assert errors == []
    page.close()
