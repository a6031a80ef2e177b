"""What other plugins and CI systems know of a pset, put where their users look.

Each is a small function of duck-typed attributes, so none of these plugins is a
dependency: pytest-benchmark's statistics become columns of the row,
pytest-randomly's seed a provenance column, pytest-html's results table gets the
pset's parameters and results as columns of its own, JUnit XML gets them as
properties, and a GitHub Actions job summary gets a Markdown table of the session.
"""

from __future__ import annotations

import html
import numbers
from pathlib import Path
from typing import Any

import pytest

from .names import counted
from .params import public_values, python_scalar

BENCHMARK_STATS = ("mean", "min", "max", "stddev", "median")
_HTML_ATTR = "psweep_html"  # report attribute: [parameters, results] as text
_HTML_CHARS = 300


def benchmark_columns(item: pytest.Item) -> dict[str, Any]:
    """pytest-benchmark's statistics of a sweep that requests ``benchmark``:
    ``benchmark_mean``, ``_min``, ``_max``, ``_stddev``, ``_median`` (seconds) and
    ``_rounds``; ``benchmark_disabled`` says whether they were measured at all
    (``--benchmark-disable``, or switched off under xdist, which pytest-benchmark
    does: the function then ran once, unmeasured)."""
    fixture = getattr(item, "funcargs", {}).get("benchmark")
    if fixture is None or not hasattr(fixture, "disabled"):
        return {}
    stats = getattr(getattr(fixture, "stats", None), "stats", None)
    if fixture.disabled or stats is None:
        return {"benchmark_disabled": True}
    columns: dict[str, Any] = {"benchmark_disabled": False}
    for name in BENCHMARK_STATS:
        columns[f"benchmark_{name}"] = float(getattr(stats, name))
    columns["benchmark_rounds"] = int(stats.rounds)
    return columns


def randomly_seed(config: pytest.Config) -> dict[str, Any]:
    """pytest-randomly's seed of this session as ``_randomly_seed``, so that any pset
    can be run again as it ran (``pytest -p randomly --randomly-seed=<seed> <node
    id>``). Read once the plugins are configured: randomly picks its seed then."""
    seed = getattr(config.option, "randomly_seed", None)
    if not config.pluginmanager.hasplugin("randomly") or not isinstance(seed, int):
        return {}
    return {"_randomly_seed": seed}


def html_active(config: pytest.Config) -> bool:
    """Does pytest-html write a report in this session?"""
    return bool(getattr(config.option, "htmlpath", None))


def attach_html(
    report: pytest.TestReport, params: dict[str, Any], row: dict[str, Any], returned: Any
) -> None:
    """The pset's parameters and its scalar results, as text for pytest-html's
    table (builtin types: the report may cross to an xdist controller)."""
    results = {key: row[key] for key in returned if key in row}
    setattr(report, _HTML_ATTR, [_text(params), _text(results, scalars_only=True)])


def _text(values: dict[str, Any], scalars_only: bool = False) -> str:
    parts = []
    for key, value in values.items():
        if scalars_only and not isinstance(value, numbers.Number | str | bool | None):
            continue
        parts.append(f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}")
    text = ", ".join(parts)
    return text if len(text) <= _HTML_CHARS else text[: _HTML_CHARS - 1] + "…"


class HtmlColumns:
    """pytest-html's results table gets the columns Parameters and Results; registered
    only when pytest-html is loaded (its hooks are unknown otherwise)."""

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells.append('<th class="sortable" data-column-type="psweep-params">Parameters</th>')
        cells.append('<th class="sortable" data-column-type="psweep-results">Results</th>')

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        params, results = getattr(report, _HTML_ATTR, None) or ("", "")
        cells.append(f'<td class="col-psweep-params">{html.escape(params)}</td>')
        cells.append(f'<td class="col-psweep-results">{html.escape(results)}</td>')


def junitxml_active(config: pytest.Config) -> bool:
    """Does pytest write a JUnit XML report (``--junitxml``) in this session?"""
    return bool(getattr(config.option, "xmlpath", None))


def attach_properties(
    item: pytest.Item, params: dict[str, Any], row: dict[str, Any], returned: Any
) -> None:
    """The pset's parameters and scalar results as the item's user properties, which
    pytest's junitxml writes as ``<property>`` elements of the testcase (as
    ``record_property`` does; junitxml takes them from the teardown report). Text and
    numbers only: the reports may travel to an xdist controller."""
    properties = item.user_properties
    for key, value in params.items():
        properties.append((key, _plain(value)))
    for key in returned:
        value = row.get(key)
        if isinstance(value, numbers.Number | str | bool) or value is None:
            properties.append((key, _plain(value)))
    properties.append(("_outcome", row.get("_outcome")))


def _plain(value: Any) -> Any:
    value = python_scalar(value)
    return value if isinstance(value, bool | int | float | str) or value is None else str(value)


STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


def step_summary(new_rows: Any, database: Path | str, compared: str | None) -> str:
    """This session's rows as Markdown for a CI job's summary page: per sweep the
    counts, the failures with their errors, and the slowest psets."""
    lines = [f"## pytest-psweep: {counted(len(new_rows), 'row')} written to `{database}`", ""]
    if compared:
        lines += [compared, ""]
    outcomes = ("passed", "failed", "crashed", "skipped", "rerun")
    lines += ["| sweep | " + " | ".join(outcomes) + " | seconds |", "|---" * 7 + "|"]
    failures, slowest = [], []
    for sweep, rows in new_rows.groupby("_sweep", sort=True):
        counts = rows["_outcome"].value_counts()
        seconds = float(rows["_pset_runtime"].sum())
        cells = " | ".join(str(int(counts.get(o, 0))) for o in outcomes)
        lines.append(f"| `{sweep}` | {cells} | {seconds:.3g} |")
        for _, row in rows[rows["_outcome"].isin(("failed", "crashed"))].iterrows():
            failures.append(f"- `{sweep}` {_pset_text(row)}: {row['_error']}")
        for _, row in rows.nlargest(3, "_pset_runtime").iterrows():
            slowest.append((float(row["_pset_runtime"]), f"`{sweep}` {_pset_text(row)}"))
    if failures:
        lines += ["", "### Failures", "", *failures[:50]]
    lines += ["", "### Slowest psets", "", "| seconds | pset |", "|---|---|"]
    lines += [f"| {s:.3g} | {name} |" for s, name in sorted(slowest, reverse=True)[:5]]
    return "\n".join(lines) + "\n"


def _pset_text(row: Any) -> str:
    """A row's parameters and results (a database row cannot tell them apart)."""
    return ", ".join(f"{k}={v!r}" for k, v in public_values(dict(row)).items())[:200]
