"""Which plots the report draws by default (SPEC §9; issue 22.1).

The page draws them itself from the rows it holds (``templates/report_plots.js``),
so the explorer can redraw them with other choices; here only the choice is made:

* x: a numeric parameter, the one with most values first (each plot of a result has
  another varied parameter as x, at most three);
* colour: of the other varied parameters, a categorical one with few values (else a
  numeric one with few values): a line per value;
* facets: the next ones, a panel per value, while there are at most 12 panels;
* what is left varies within a line: the page draws those points as markers, not
  lines, and says so. A categorical x is always drawn as markers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

COLORS = 8  # a parameter with at most this many values can be the colour
PANELS = 12  # at most this many panels (facets) by default
PLOTS_PER_RESULT = 3


def numeric(series: pd.Series) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))


def varied(latest: pd.DataFrame, params: list[str]) -> dict[str, int]:
    """Parameters with more than one value: their number of values."""
    counts = {p: int(latest[p].astype(str).nunique()) for p in params}
    return {p: n for p, n in counts.items() if n > 1}


def x_order(latest: pd.DataFrame, counts: dict[str, int]) -> list[str]:
    """Varied parameters as x candidates: numeric ones with most values first."""
    return sorted(counts, key=lambda p: (not numeric(latest[p]), -counts[p]))


def assign(latest: pd.DataFrame, counts: dict[str, int], x: str) -> tuple[str | None, list[str]]:
    """(colour, facets) for a plot with x: what is left varies within a line."""
    rest = [p for p in counts if p != x]
    position = {p: i for i, p in enumerate(counts)}
    few = [p for p in rest if counts[p] <= COLORS]
    few.sort(key=lambda p: (numeric(latest[p]), counts[p], position[p]))
    color = few[0] if few else None
    facets: list[str] = []
    panels = 1
    for p in sorted((p for p in rest if p != color), key=lambda p: (counts[p], position[p])):
        if len(facets) < 2 and panels * counts[p] <= PANELS:
            facets.append(p)
            panels *= counts[p]
    return color, facets


def default_specs(
    latest: pd.DataFrame, params: list[str], results: list[str]
) -> list[dict[str, Any]]:
    """The plots of one sweep: the pass/fail map, then each numeric result against
    up to three varied parameters."""
    counts = varied(latest, params)
    if not counts:
        return []
    xs = x_order(latest, counts)
    specs: list[dict[str, Any]] = []
    outcome_facets = [xs[2]] if len(xs) > 2 and counts[xs[2]] <= PANELS else []
    specs.append(
        {"kind": "outcomes", "x": xs[0], "y": xs[1] if len(xs) > 1 else None,
         "facets": outcome_facets}
    )  # fmt: skip
    for result in results:
        if not numeric(latest[result]) or not latest[result].notna().any():
            continue
        for x in xs[:PLOTS_PER_RESULT]:
            color, facets = assign(latest, counts, x)
            specs.append({"kind": "result", "x": x, "y": result, "color": color, "facets": facets})
    return specs


def explorer(specs: list[dict[str, Any]], latest: pd.DataFrame, params: list[str]) -> Any:
    """What the page's explorer offers: the parameters, the numeric results and the
    plot it starts with (the first default plot of a result); None without one."""
    counts = varied(latest, params)
    results = list(dict.fromkeys(s["y"] for s in specs if s["kind"] == "result"))
    if not counts or not results:
        return None
    first = next(s for s in specs if s["kind"] == "result")
    return {"params": x_order(latest, counts), "results": results, "start": first}
