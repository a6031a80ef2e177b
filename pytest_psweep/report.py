"""``psweep report``: a study as one self-contained HTML page (SPEC §9).

Per sweep: the counts, runtimes and slowest psets; plots (``report_plots`` chooses
them, the page draws them from its rows: ``templates/report_plots.js``) and an
explorer that redraws them with the reader's choices; the comparison with a
baseline, with numbers (``report_compare``); the failures grouped by message
(``report_failures``); a sortable, filterable, paged table of every newest row,
parameters first; provenance and run ids. The page is a jinja2 template and plotly
draws (the ``report`` extra); plotly's JavaScript is inlined once, gzipped, so the
file works offline.

Which columns are parameters a database does not say (results are columns too):
for each sweep they are the columns whose values hash to the rows' ``_pset_hash``.
"""

from __future__ import annotations

import base64
import functools
import gzip
import itertools
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import targets
from .database import latest_rows
from .errors import PsweepError
from .params import is_missing, pset_hash
from .report_compare import Baseline, CompareSection
from .report_compare import section as compare_section
from .report_failures import FailureGroup
from .report_failures import cell as _cell
from .report_failures import group as group_failures
from .report_failures import pset_text as _pset_text
from .report_plots import default_specs, explorer

if TYPE_CHECKING:
    import pandas as pd

OUTCOMES = ("passed", "failed", "crashed", "skipped")
_MAX_SUBSET_COLUMNS = 14  # parameters are found among at most this many columns


def _import_extras() -> tuple[Any, Any]:
    try:
        import jinja2
        import plotly
    except ImportError as exc:
        raise PsweepError(
            f"the HTML report needs plotly and jinja2 ({exc}): pip install 'pytest-psweep[report]'"
        ) from None
    return jinja2, plotly


def param_columns(rows: pd.DataFrame) -> list[str]:
    """The parameter columns of one sweep's rows: the largest set of its public
    columns (no leading or trailing ``_``) whose values hash to ``_pset_hash``, on
    every row checked. Without ``_pset_hash``, or when no set matches (hashes of
    another version), all public columns that vary or are constant strings."""
    public = [
        c
        for c in rows.columns
        if not str(c).startswith("_") and not str(c).endswith("_") and rows[c].notna().any()
    ]
    if "_pset_hash" not in rows or not len(rows):
        return public
    sample = rows.head(5).to_dict("records")
    candidates = public[:_MAX_SUBSET_COLUMNS]
    for size in range(len(candidates), -1, -1):
        for subset in itertools.combinations(candidates, size):
            if all(_hashes_to(row, subset) for row in sample):
                return list(subset)
    return public


def _hashes_to(row: dict[str, Any], columns: Sequence[str]) -> bool:
    pset = {c: row[c] for c in columns if not is_missing(row[c])}
    try:
        return bool(pset_hash(pset) == row["_pset_hash"])
    except Exception:  # a value that does not hash: not a parameter set
        return False


@dataclass
class SweepPage:
    """What the page shows of one sweep."""

    name: str
    anchor: str
    counts: dict[str, int]
    total_runtime: float
    slowest: list[dict[str, Any]]
    failures: list[FailureGroup]
    compared: list[str]
    comparison: CompareSection | None
    params: list[str]
    results: list[str]
    table_columns: list[str]
    table_rows: list[list[str]]
    table_total: int
    plots: list[str] = field(default_factory=list)  # what to draw (report_plots), as JSON
    provenance: list[tuple[str, str]] = field(default_factory=list)
    explorer: str = "null"  # what the explorer offers (report_plots.explorer), as JSON


def build(
    database: pd.DataFrame,
    title: str,
    compared: dict[str, list[str]] | None = None,
    baseline: Baseline | None = None,
) -> str:
    """The report page of a database: HTML text, self-contained.

    ``compared``: per sweep, lines about a comparison with a baseline (the plugin's
    verdicts); ``baseline``: what each sweep's numbers are compared with (default:
    the psets that failed by compare against their previous passed rows).
    """
    jinja2, plotly = _import_extras()

    if "_sweep" not in database:
        database = database.assign(_sweep="ps.run")
    database = database.assign(_sweep=database["_sweep"].fillna("ps.run"))
    sweeps = []
    for index, (name, rows) in enumerate(database.groupby("_sweep", sort=True)):
        lines = (compared or {}).get(name) or []
        sweeps.append(_sweep_page(str(name), f"sweep-{index}", rows, lines, baseline or Baseline()))
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("pytest_psweep", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
    )
    template = environment.get_template("report.html.j2")
    return str(
        template.render(
            title=title,
            made=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            rows=len(database),
            runs=_runs(database),
            sweeps=sweeps,
            plotly_packed=_packed(plotly.offline.get_plotlyjs()),
            json=_json,
        )
    )


@functools.lru_cache(maxsize=1)
def _packed(script: str) -> str:
    """plotly's JavaScript gzipped and base64-encoded: a page of 1.9 MB, not 4.8
    (the page unpacks it with the browser's DecompressionStream)."""
    return base64.b64encode(gzip.compress(script.encode("utf-8"), 6, mtime=0)).decode("ascii")


def write(
    database: pd.DataFrame,
    path: str | Path,
    title: str,
    compared: dict[str, list[str]] | None = None,
    force: bool = False,
    source: Path | None = None,
    baseline: Baseline | None = None,
) -> Path:
    """Write the report atomically; the path written. Never over a calc dir's own
    files or ``source``, nor over a file that is no report of ours unless ``force``."""
    from .database import write_atomic

    target = Path(path)
    targets.check(target, "report", force, targets.REPORT_MARKS, source)
    text = build(database, title, compared, baseline)
    write_atomic(target, lambda fh: fh.write(text.encode("utf-8")))
    return target


def _runs(database: pd.DataFrame) -> list[dict[str, Any]]:
    if "_run_id" not in database:
        return []
    runs = []
    for run_id, rows in database.groupby("_run_id", sort=False):
        first = rows["_time_utc"].min() if "_time_utc" in rows else None
        runs.append(
            {
                "run_id": run_id,
                "rows": len(rows),
                "started": str(first)[:19] if first is not None else "",
                "sweeps": ", ".join(sorted(map(str, rows["_sweep"].dropna().unique()))),
            }
        )
    return sorted(runs, key=lambda run: run["started"])


def _sweep_page(
    name: str, anchor: str, rows: pd.DataFrame, compared: list[str], baseline: Baseline
) -> SweepPage:
    latest = latest_rows(rows)
    outcome = latest["_outcome"].astype(str) if "_outcome" in latest else None
    counts = {kind: int((outcome == kind).sum()) if outcome is not None else 0 for kind in OUTCOMES}
    if outcome is None:
        counts["passed"] = len(latest)
    params = param_columns(latest)
    public = [c for c in latest.columns if not str(c).startswith("_")]
    results = [c for c in public if c not in params and latest[c].notna().any()]
    runtime = latest["_pset_runtime"] if "_pset_runtime" in latest else None
    slowest = []
    if runtime is not None and len(latest):
        for _, row in latest.loc[runtime.sort_values(ascending=False).index[:5]].iterrows():
            slowest.append(
                {"pset": _pset_text(row, params), "seconds": f"{row['_pset_runtime']:.3g}"}
            )
    failed = latest[outcome.isin(["failed", "crashed"])] if outcome is not None else latest[:0]
    failures = group_failures(failed.to_dict("records"), params)
    comparison = compare_section(
        latest, rows, baseline.frame, baseline.name, params, results,
        baseline.rtol, baseline.atol, baseline.ignore,
    )  # fmt: skip
    shown = params + results + [c for c in ("_outcome", "_pset_runtime", "_error") if c in latest]
    table = latest[shown]  # every row: the page shows them a page at a time
    page = SweepPage(
        name=name,
        anchor=anchor,
        counts=counts,
        total_runtime=float(runtime.sum()) if runtime is not None else 0.0,
        slowest=slowest,
        failures=failures,
        compared=compared,
        comparison=comparison,
        params=params,
        results=results,
        table_columns=shown,
        table_rows=[[_value(v) for v in values] for values in table.itertuples(index=False)],
        table_total=len(latest),
        provenance=_provenance(rows),
    )
    specs = default_specs(latest, params, results)
    page.plots = [_json(spec) for spec in specs]
    page.explorer = _json(explorer(specs, latest, params))
    return page


def _json(value: Any) -> str:
    """JSON to put inside a <script> element of the page."""
    import json

    return _script_safe(json.dumps(value, allow_nan=False))


def _script_safe(text: str) -> str:
    """JSON text that no value can end its <script> element with: every ``<`` as
    ``\\u003c`` (JSON has none outside strings), so ``</script>`` and ``<!--`` are
    inert."""
    return text.replace("<", "\\u003c")


def _value(value: Any) -> Any:
    """A table cell as the page's script sorts it: a number, or text."""
    if isinstance(value, bool) or is_missing(value):
        return _cell(value)
    if isinstance(value, numbers.Real):  # numpy's scalars too
        try:
            number = float(value)
        except OverflowError:  # an int beyond float range (10**400): its digits as text
            return _digits(value)
        return number if math.isfinite(number) else str(number)
    return _cell(value)


def _digits(value: Any) -> str:
    try:
        return str(value)
    except ValueError:  # more digits than Python converts (sys.set_int_max_str_digits)
        return f"(an int of {value.bit_length()} bits)"


def _provenance(rows: pd.DataFrame) -> list[tuple[str, str]]:
    found = []
    for column in ("_git_commit", "_git_dirty", "_code_hash", "_versions", "_exec_host"):
        if column in rows:
            values = sorted({str(v) for v in rows[column] if not is_missing(v)})
            if values:
                found.append((column, ", ".join(values[:5]) + (" ..." if len(values) > 5 else "")))
    return found
