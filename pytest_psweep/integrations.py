"""What other pytest plugins know of a pset, put where a user of that plugin looks.

Each is a small function of duck-typed attributes, so none of these plugins is a
dependency: pytest-benchmark's statistics become columns of the row,
pytest-randomly's seed a provenance column, and pytest-html's results table gets the
pset's parameters and results as columns of its own.
"""

from __future__ import annotations

import html
import numbers
from typing import Any

import pytest

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
