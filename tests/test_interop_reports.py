"""pytest --psweep with the plugins that report a session (pytest-html, JUnit XML, a
GitHub step summary, pytest-timeout's failures, pytest-randomly's seed), checked by
reading one study's reports and database, serially and under xdist.

The plugins are the dev extra's (pyproject.toml): nothing is installed here.
"""

from __future__ import annotations

import html
import json
import os
import random
import re
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import pytest_psweep as ps
from tests.conftest import ALL_PLUGINS_ADDOPTS
from tests.processes import make_study, run_session

# the sessions these tests start load every installed plugin (conftest.py)
pytestmark = pytest.mark.all_plugins

SLOW = """
    import time
    import pytest
    import pytest_psweep as ps

    @pytest.mark.timeout(2)
    @ps.sweep(ps.plist("s", [0, 60]))
    def sweep_slow(pset):
        time.sleep(pset["s"])
        return {"slept": pset["s"]}
"""

HTML = """
    import pytest_psweep as ps

    @ps.sweep(ps.plist("alpha", [0.5, 2]))
    def sweep_html(pset):
        return {"energy": -pset["alpha"], "label": "x<y", "array": [1, 2]}

    def test_plain():
        pass
"""

CI_SWEEP = """
    import pytest_psweep as ps

    @ps.sweep(ps.plist("a", [1, 2, 3]))
    def sweep_ci(pset):
        assert pset["a"] != 3, "a=3 is out of range"
        return {"r": pset["a"] * 1.5, "arr": [1, 2]}
"""


RANDOM = """
    import random
    import pytest_psweep as ps

    @ps.sweep(ps.plist("a", list(range(6))))
    def sweep_random(pset):
        return {"x": random.random()}
"""


class Reported(NamedTuple):
    """The reporting plugins' study after its two sessions (``reported``)."""

    folder: Path
    args: list[str]  # serial ([]) or xdist
    first: pytest.RunResult
    summary: str  # the GitHub step summary after the first session
    compared: pytest.RunResult
    compared_summary: str  # and after the second

    def rows(self, sweep: str) -> Any:
        """The database's rows of one sweep (``sweep_ci``: its file is sweep_ci.py)."""
        df = ps.df_read(self.folder / "calc" / "results.pk")
        return df[df["_sweep"] == f"{sweep}.py::{sweep}"]


@pytest.fixture(
    scope="module",
    params=[  # each variant on one xdist worker, the two on two at once
        pytest.param([], id="serial", marks=pytest.mark.xdist_group("reported_serial")),
        pytest.param(["-n", "2"], id="xdist", marks=pytest.mark.xdist_group("reported_xdist")),
    ],
)
def reported(request, tmp_path_factory) -> Reported:
    """One study for the plugins that report, run as a CI job runs it: an html and a
    JUnit report, a GitHub step summary, in Python's dev mode (``-X dev``: every
    unclosed file or pipe is a ResourceWarning, the writer's pipes too), pytest-randomly
    not loaded; then sweep_ci's result changes and its psets are compared with the
    first session's rows (a baseline read). Serially and under xdist."""
    folder = make_study(
        tmp_path_factory.mktemp("reported"),
        sweep_slow=SLOW,
        sweep_html=HTML,
        sweep_ci=CI_SWEEP,
        sweep_random=RANDOM,
    )
    summary = folder / "summary.md"
    summary.write_text("earlier steps\n")
    env = {
        **os.environ,
        "PYTEST_ADDOPTS": ALL_PLUGINS_ADDOPTS,
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    args, dev = request.param, ("-X", "dev")
    first = run_session(
        folder, "--html=report.html", "--junitxml=out.xml", *args, env=env, python=dev
    )
    text = summary.read_text()
    make_study(folder, sweep_ci=CI_SWEEP.replace("1.5", "1.6"))
    compared = run_session(folder, "--psweep-compare", "sweep_ci.py", *args, env=env, python=dev)
    return Reported(folder, args, first, text, compared, summary.read_text())


def test_timeout_fails_the_pset_with_a_row(reported):
    reported.first.stdout.fnmatch_lines(["FAILED sweep_slow.py::sweep_slow[[]s=60[]]*"])
    assert "FAILED sweep_slow.py::sweep_slow[s=0]" not in reported.first.stdout.str()
    df = reported.rows("sweep_slow").sort_values("s")
    assert df["_outcome"].tolist() == ["passed", "failed"]
    assert "Timeout" in df["_error"].iloc[1]


def html_tests(page: str) -> dict[str, list[dict[str, Any]]]:
    """The tests in a pytest-html page: each node id's results, as the page's JSON
    keeps them (a table row's cells as html)."""
    blob = re.search(r'data-jsonblob="(.*?)"', page)
    assert blob is not None, "no test data in the html report"
    tests: dict[str, list[dict[str, Any]]] = json.loads(html.unescape(blob.group(1)))["tests"]
    return tests


def test_html_report_shows_parameters_and_results(reported):
    page = (reported.folder / "report.html").read_text()
    assert ">Parameters</th>" in page and ">Results</th>" in page
    tests = {k: v for k, v in html_tests(page).items() if k.startswith("sweep_html.py")}
    assert {k: [run["result"] for run in v] for k, v in tests.items()} == {
        "sweep_html.py::sweep_html[alpha=0.5]": ["Passed"],
        "sweep_html.py::sweep_html[alpha=2]": ["Passed"],
        "sweep_html.py::test_plain": ["Passed"],
    }
    row = "".join(cell for runs in tests.values() for cell in runs[0]["resultsTableRow"])
    cells = re.findall(r'<td class="col-psweep-(params|results)">(.*?)</td>', row)
    assert sorted((kind, html.unescape(text)) for kind, text in cells) == [
        ("params", ""),  # test_plain
        ("params", "alpha=0.5"),
        ("params", "alpha=2"),
        ("results", ""),
        ("results", "energy=-0.5, label='x<y'"),  # escaped in the page; only scalars
        ("results", "energy=-2, label='x<y'"),
    ]


def test_no_resource_warnings_under_python_dev_mode(reported):
    # the study's sweep_ci a=3 and sweep_slow s=60 fail; the compare session runs
    # sweep_ci, whose psets differ from their baseline (or fail again): all fail
    for result, rows, outcomes in [
        (reported.first, 13, {"passed": 12, "failed": 2}),
        (reported.compared, 3, {"passed": 0, "failed": 3}),
    ]:
        assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
        result.assert_outcomes(**outcomes)
        output = result.stdout.str() + result.stderr.str()
        assert f"{rows} rows written" in output
        assert "ResourceWarning" not in output


def test_junitxml_carries_parameters_and_scalar_results(reported):
    import xml.etree.ElementTree as ET

    cases = ET.parse(reported.folder / "out.xml").getroot().iter("testcase")
    properties = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in cases
        if case.get("classname") == "sweep_ci"
    }
    assert properties == {
        "sweep_ci[a=1]": {"a": "1", "r": "1.5", "_outcome": "passed"},
        "sweep_ci[a=2]": {"a": "2", "r": "3.0", "_outcome": "passed"},
        "sweep_ci[a=3]": {"a": "3", "_outcome": "failed"},
    }


def test_github_step_summary(reported):
    text = reported.summary
    assert text.startswith("earlier steps\n## pytest-psweep: 13 rows written to `")
    assert "| `sweep_ci.py::sweep_ci` | 2 | 1 | 0 | 0 | 0 |" in text
    assert "- `sweep_ci.py::sweep_ci` a=3: AssertionError: a=3 is out of range" in text
    assert "### Slowest psets" in text
    # regression mode: the verdicts and the largest differences
    text = reported.compared_summary
    assert "compared with `" in text and "0 same, 2 differ, 0 new" in text
    assert "- `sweep_ci.py::sweep_ci` r: 2 psets differ, largest abs diff 0.2" in text


def test_randomly_seed_in_the_row_reproduces_a_pset(pytester, read_db, reported):
    workers = reported.args
    pytester.makepyfile(sweep_random=RANDOM)
    seed = random.randrange(10**6)
    result = pytester.runpytest_subprocess(
        "--psweep", "-p", "randomly", f"--randomly-seed={seed}", *workers
    )
    result.assert_outcomes(passed=6)
    df = read_db()
    assert df["_randomly_seed"].tolist() == [seed] * 6
    # pytest-randomly seeds each test alike: one pset run alone gets the same number
    row = df[df["a"] == 4].iloc[0]
    result = pytester.runpytest_subprocess(
        "--psweep",
        "-p",
        "randomly",
        f"--randomly-seed={int(row['_randomly_seed'])}",
        "sweep_random.py::sweep_random[a=4]",
    )
    result.assert_outcomes(passed=1)
    again = read_db()
    assert again["x"].iloc[-1] == row["x"]
    # without pytest-randomly there is no such column (the `reported` study)
    assert len(reported.rows("sweep_random")) == 6
    assert "_randomly_seed" not in reported.rows("sweep_random")
