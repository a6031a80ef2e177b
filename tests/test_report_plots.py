"""The report's plots never lie (issue 22.1-22.3), read in a real Chromium from
what plotly drew: a line joins only psets that differ in x alone, values spanning
decades get log axes, and failed psets whose results exist are drawn."""

from __future__ import annotations

from typing import Any

import pytest

from tests.processes import make_study, run_session
from tests.report_browser import (  # noqa: F401
    browser,
    draw_all,
    figures,
    open_page,
    psweep_cli,
    titled,
)

QUADRATURE = """
    import math
    import os
    import pytest_psweep as ps

    INTEGRANDS = {"sin": (math.sin, math.pi, 2.0), "exp": (math.exp, 1.0, math.e - 1)}

    def rule(method, f, b, n):
        h = b / n
        if method == "midpoint":
            return h * sum(f((i + 0.5) * h) for i in range(n))
        if n % 2:
            raise ValueError(f"simpson needs an even number of intervals, got {n}")
        odd = sum(f(i * h) for i in range(1, n, 2))
        even = sum(f(i * h) for i in range(2, n, 2))
        return h / 3 * (f(0) + 4 * odd + 2 * even + f(b))

    params = ps.pgrid(
        ps.plist("method", ["midpoint", "simpson"]),
        ps.plist("integrand", ["sin", "exp"]),
        ps.plist("n", [1, 2, 3, 10, 100, 1000, 10000]),
    )

    @ps.sweep(params)
    def sweep_quad(pset):
        f, b, exact = INTEGRANDS[pset["integrand"]]
        value = rule(pset["method"], f, b, pset["n"])
        if pset["method"] == "midpoint":  # a new version of midpoint: every pset drifts
            value += 1e-3 * float(os.environ.get("DRIFT") or 0)
        return {"value": value, "err": abs(value - exact)}
"""


# on one xdist worker (--dist loadgroup): the quadrature study and the browser start once
pytestmark = pytest.mark.xdist_group("report_plots")


@pytest.fixture(scope="module")
def quad_report(tmp_path_factory):
    """The quadrature study run once for the module, and its report: the tests only
    read the page (each its own tab)."""
    folder = tmp_path_factory.mktemp("quad")
    ran = run_session(make_study(folder, sweep_quad=QUADRATURE))
    assert "24 passed, 4 failed" in ran.stdout.str(), ran.stdout.str() + ran.stderr.str()
    done = psweep_cli(folder, "report", "calc", "-o", "r.html")
    assert done.returncode == 0, done.stderr
    return folder / "r.html"


@pytest.fixture(scope="module")
def quad_drawn(quad_report, browser):  # noqa: F811
    """One tab on the quadrature report with every plot drawn, for the tests that only
    read it (a page costs Chromium about 3 CPU-s): the page, its plots, its errors."""
    errors: list[str] = []
    page = open_page(browser, quad_report, errors)
    found = figures(page)
    yield page, found, errors
    page.close()


def test_no_line_revisits_an_x_value_with_three_varied_parameters(quad_drawn):
    _, found, errors = quad_drawn
    err = titled(found, "err against n, a line per method, a panel per integrand")
    # one panel per integrand, a line per method in each: 2 x 2 lines
    lines = [t for t in err["traces"] if "lines" in t["mode"]]
    assert len(lines) == 4 and {t["name"] for t in lines} == {"midpoint", "simpson"}
    assert {t["xaxis"] for t in lines} == {"x", "x2"}
    for figure in found:
        for trace in figure["traces"]:
            if "lines" in trace["mode"]:
                assert trace["x"] == sorted(set(trace["x"])), (figure["title"], trace["name"])
    # a categorical x is drawn as markers, never lines
    by_method = titled(found, "err against method")
    assert by_method["axes"]["xaxis"]["type"] == "category"
    assert all(t["mode"] == "markers" for t in by_method["traces"])
    assert errors == []


def test_values_spanning_decades_get_log_axes(quad_drawn):
    _, found, errors = quad_drawn
    err = titled(found, "err against n")
    assert err["axes"]["xaxis"]["type"] == "log" and err["axes"]["yaxis"]["type"] == "log"
    value = titled(found, "value against n")
    assert value["axes"]["xaxis"]["type"] == "log" and value["axes"]["yaxis"]["type"] == "linear"
    # the pass/fail map: n's values from 1 to 10000 each get a place of their own
    outcomes = titled(found, "pass/fail over n")
    assert outcomes["axes"]["xaxis"]["categories"] == ["1", "2", "3", "10", "100", "1000", "10000"]
    assert errors == []


def test_steps_evenly_spaced_on_a_log_scale_get_a_log_axis(pytester, browser):  # noqa: F811
    pytester.makepyfile(
        sweep_steps="""
        import pytest_psweep as ps

        @ps.sweep(ps.plist("steps", [32, 64, 128, 256, 512, 1024, 2048]))
        def sweep_steps(pset):
            return {"error": 1.0 / pset["steps"], "even": 100 + pset["steps"]}

        @ps.sweep(ps.plist("n", [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 200]))
        def sweep_linear(pset):
            return {"y": pset["n"]}
        """
    )
    pytester.runpytest_subprocess("--psweep").assert_outcomes(passed=18)
    assert psweep_cli(pytester.path, "report", "calc", "-o", "r.html").returncode == 0
    errors: list[str] = []
    page = open_page(browser, pytester.path / "r.html", errors)
    found = figures(page)
    error = titled(found, "error against steps")
    assert error["axes"]["xaxis"]["type"] == "log"  # 32 ... 2048: 1.8 decades, geometric
    assert error["axes"]["yaxis"]["type"] == "log"
    assert titled(found, "even against steps")["axes"]["yaxis"]["type"] == "linear"
    assert titled(found, "y against n")["axes"]["xaxis"]["type"] == "linear"  # not even
    assert errors == []
    page.close()


def test_an_exact_zero_keeps_the_log_axis_and_is_named(pytester, browser):  # noqa: F811
    pytester.makepyfile(
        sweep_zero="""
        import pytest_psweep as ps

        @ps.sweep(ps.plist("n", [1, 10, 100, 1000, 10000]))
        def sweep_zero(pset):
            return {"err": 0.0 if pset["n"] == 10000 else 1.0 / pset["n"] ** 2}
        """
    )
    pytester.runpytest_subprocess("--psweep").assert_outcomes(passed=5)
    assert psweep_cli(pytester.path, "report", "calc", "-o", "r.html").returncode == 0
    errors: list[str] = []
    page = open_page(browser, pytester.path / "r.html", errors)
    err = titled(figures(page), "err against n")
    assert err["axes"]["yaxis"]["type"] == "log"
    assert "1 pset with a value <= 0 not drawn on the log axis" in err["title"]
    assert errors == []
    page.close()


def test_failed_psets_with_results_are_drawn_as_failed(pytester, browser, monkeypatch):  # noqa: F811
    pytester.makepyfile(sweep_quad=QUADRATURE)
    pytester.runpytest_subprocess("--psweep").assert_outcomes(passed=24, failed=4)
    monkeypatch.setenv("DRIFT", "1")
    result = pytester.runpytest_subprocess("--psweep", "--psweep-compare")
    result.assert_outcomes(passed=10, failed=18)  # midpoint's 14 psets drifted
    assert psweep_cli(pytester.path, "report", "calc", "-o", "r.html").returncode == 0
    errors: list[str] = []
    page = open_page(browser, pytester.path / "r.html", errors)
    err = titled(figures(page), "err against n, a line per method")
    failed = [t for t in err["traces"] if t["name"] == "midpoint (failed)"]
    assert sum(len(t["x"]) for t in failed) == 14  # every midpoint pset, none dropped
    assert all(t["mode"] == "markers" and t["symbol"] == "x" for t in failed)
    assert {t["name"] for t in err["traces"]} == {"simpson", "midpoint (failed)"}
    # compare failures are one group, whatever their baseline rows' ids
    group = page.locator(".failure-group", has_text="compare: results differ")
    assert group.locator(".group-count").inner_text() == "14"
    assert "(row …) in value, err" in group.locator(".group-message").inner_text()
    assert errors == []
    page.close()


def test_failures_are_grouped_by_message_after_the_plots(quad_report, browser):  # noqa: F811
    errors: list[str] = []
    page = open_page(browser, quad_report, errors)
    heading = page.locator("h3", has_text="Failures")
    assert heading.inner_text() == "Failures: 4 psets in 1 group"
    group = page.locator(".failure-group")
    assert group.count() == 1
    assert group.locator(".group-count").inner_text() == "4"
    message = "ValueError: simpson needs an even number of intervals, got {n}"
    assert group.locator(".group-message").inner_text() == message
    assert "method: simpson; integrand: exp, sin; n: 1, 3" in group.inner_text()
    psets = group.locator("details pre.error")
    assert psets.count() == 4 and not psets.first.is_visible()  # folded
    draw_all(page)  # no plot drawn meanwhile moves the summary away from the click
    group.locator("summary").click()
    psets.first.wait_for(state="visible", timeout=10_000)
    first_plot = page.locator(".plot").first.bounding_box()
    assert first_plot["y"] < heading.bounding_box()["y"]  # the plots come first
    assert errors == []
    page.close()


def test_the_explorer_redraws_with_the_readers_choices(quad_report, browser):  # noqa: F811
    errors: list[str] = []
    page = open_page(browser, quad_report, errors)
    box = page.locator(".explorer")
    box.scroll_into_view_if_needed()
    box.locator(".explorer-plot .main-svg").first.wait_for(timeout=30_000)
    draws = 1

    def choose(role: str, value: str) -> dict[str, Any]:
        nonlocal draws
        control = box.locator(f"[data-role={role}]")
        if role == "fvalues":
            control.fill(value)
        else:
            control.select_option(value)
        draws += 1
        page.wait_for_function(f"document.querySelector('.explorer').dataset.drawn == '{draws}'")
        drawn: dict[str, Any] = page.evaluate(
            "(() => { var gd = document.querySelector('.explorer-plot');"
            " return {title: gd.querySelector('.gtitle').textContent,"
            " x: gd._fullLayout.xaxis.type, y: gd._fullLayout.yaxis.type,"
            " traces: gd.data.map(t => [t.name, t.mode, t.x.length, t.xaxis || 'x'])}; })()"
        )
        return drawn

    start = "value against n, a line per method, a panel per integrand"
    assert box.locator(".gtitle").text_content() == start
    shown = choose("y", "err")
    assert shown["title"] == "err against n, a line per method, a panel per integrand"
    assert (shown["x"], shown["y"]) == ("log", "log")
    shown = choose("logy", "linear")
    assert shown["y"] == "linear"
    shown = choose("facet", "")  # no panels: integrand varies within each colour
    assert shown["title"].startswith("err against n, a colour per method")
    assert "points, not lines: integrand varies within a colour" in shown["title"]
    assert all(mode == "markers" for _, mode, _, _ in shown["traces"])
    shown = choose("fparam", "integrand")
    shown = choose("fvalues", "sin")  # one integrand left: lines again
    assert shown["title"] == "err against n, a line per method"
    assert box.locator(".explorer-status").inner_text() == "14 of 28 psets"
    assert sum(n for name, _, n, _ in shown["traces"] if "(failed)" not in name) == 12
    shown = choose("fparam", "n")
    shown = choose("fvalues", "10..1000")
    assert box.locator(".explorer-status").inner_text() == "12 of 28 psets"
    assert sorted({n for _, _, n, _ in shown["traces"]}) == [6]  # 3 n x 2 integrands
    shown = choose("color", "integrand")
    assert shown["title"].startswith("err against n, a colour per integrand")
    shown = choose("y", "pass/fail")
    assert shown["title"].startswith("pass/fail over n and integrand")
    assert errors == []
    page.close()


def test_every_row_is_in_the_page(browser, tmp_path, monkeypatch):  # noqa: F811
    import pytest_psweep as ps
    from pytest_psweep import report

    monkeypatch.chdir(tmp_path)
    # The label holds letters no id, hash or time holds, so the filter finds one row only.
    database = ps.run(
        lambda pset: {"r": pset["a"] * 2, "label": f"row-{pset['a']}-end"},
        ps.plist("a", list(range(20_500))),
    )
    report.write(database, tmp_path / "r.html", "all rows")
    errors: list[str] = []
    page = open_page(browser, tmp_path / "r.html", errors)
    shown = page.locator(".shown")
    assert shown.inner_text() == "20500 of 20500 psets; rows 1-500"
    rows = page.locator("table.rows tbody tr")
    assert rows.count() == 500
    page.locator(".pager .next").click()
    assert shown.inner_text() == "20500 of 20500 psets; rows 501-1000"
    assert rows.first.locator("td").first.inner_text() == "500"
    # the other 39 of the 41 pages: clicked in the page (the button's actionability is
    # checked above), 0.07 CPU-s a page instead of Playwright's 0.16
    page.evaluate("for (let i = 0; i < 39; i++) document.querySelector('.pager .next').click()")
    assert shown.inner_text() == "20500 of 20500 psets; rows 20001-20500"
    assert rows.count() == 500 and page.locator(".pager .next").is_disabled()
    assert rows.last.locator("td").first.inner_text() == "20499"  # the last row is there
    page.locator("input.filter").fill("row-20499-end")  # the last pset's label
    assert page.locator("table.rows tbody tr").count() == 1
    assert page.locator("table.rows tbody td").first.inner_text() == "20499"
    assert errors == []
    page.close()


def test_titles_stay_clear_of_the_toolbar_and_the_page_prints(quad_drawn):
    page, found, errors = quad_drawn
    assert len(found) == 7
    boxes = page.evaluate(
        "Array.from(document.querySelectorAll('.plot .js-plotly-plot')).map(gd => {"
        " var t = gd.querySelector('.gtitle').getBoundingClientRect();"
        " var s = gd.querySelector('.main-svg').getBoundingClientRect();"
        " return [t.left - s.left, s.right - t.right, t.top - s.top]; })"
    )
    for left, right, top in boxes:
        assert left >= 0 and top >= 0  # not cut off
        assert right >= 200  # the toolbar's corner (top right) stays free
    page.emulate_media(media="print")
    try:
        assert not page.locator(".explorer .controls").is_visible()
        assert not page.locator("input.filter").first.is_visible()
        style = "getComputedStyle(document.querySelector('.scroll')).maxHeight"
        assert page.evaluate(style) == "none"
    finally:
        page.emulate_media(media="screen")  # the tab is shared
    assert errors == []
