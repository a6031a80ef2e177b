"""How fast the HTML report opens in a real browser (SPEC §9: 10k rows under 2 s).

    python benchmarks/bench_report.py [ROWS]     # default 10000; needs the report
                                                 # extra, playwright and Chromium

Makes a database of ROWS psets (a grid of two parameters, two results) with
``ps.run``, writes its report, and opens it in headless Chromium
(``/usr/bin/chromium``) five times: first paint, the table of all rows built (a
performance mark of the page), the load event, plotly unpacked (the page holds it
gzipped and unpacks it after the load event), and the first plot drawn. Baseline
in the same browser: a page that holds only plotly's inlined JavaScript (what every
report pays to parse).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

import pytest_psweep as ps
from pytest_psweep import report

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests/
from tests.report_browser import CHROMIUM_ARGS  # noqa: E402  (the tests' Chromium)


def study(pset):
    return {"error": 1.0 / (1 + pset["a"]) ** 2, "value": pset["a"] * pset["b"]}


def main(rows: int) -> None:
    import plotly.offline

    side = int(rows**0.5)
    with tempfile.TemporaryDirectory() as folder:
        calc = Path(folder) / "calc"
        b = [i / side for i in range(side)]
        params = ps.pgrid(ps.plist("a", range(side)), ps.plist("b", b))
        database = ps.run(study, params, calc_dir=str(calc))
        start = time.perf_counter()
        page_path = report.write(database, Path(folder) / "report.html", "bench")
        built = time.perf_counter() - start
        size = page_path.stat().st_size / 2**20
        baseline = Path(folder) / "plotly.html"
        baseline.write_text(
            f"<html><head><script>{plotly.offline.get_plotlyjs()}</script></head><body></body></html>"
        )
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
            )
            loads, drawn, bases, painted, tables, unpacked = [], [], [], [], [], []
            for _ in range(5):
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                start = time.perf_counter()
                page.goto(baseline.as_uri())
                bases.append(time.perf_counter() - start)
                page.close()
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                start = time.perf_counter()
                page.goto(page_path.as_uri())
                loads.append(time.perf_counter() - start)
                page.wait_for_selector(".plot .main-svg")
                drawn.append(time.perf_counter() - start)
                timing = page.evaluate(
                    "[performance.getEntriesByName('first-contentful-paint')[0].startTime,"
                    " performance.getEntriesByName('psweep-tables')[0].startTime,"
                    " performance.getEntriesByName('psweep-plotly')[0].startTime]"
                )
                painted.append(timing[0] / 1000)
                tables.append(timing[1] / 1000)
                unpacked.append(timing[2] / 1000)
                page.close()
            browser.close()
    print(f"{len(database)} rows: report built in {built:.1f} s, {size:.1f} MiB")
    print(f"plotly.js alone: load {statistics.median(bases):.2f} s (median of 5)")
    print(
        f"report: first paint {statistics.median(painted):.2f} s, the {len(database)} rows' table "
        f"built {statistics.median(tables):.2f} s (median of 5, browser clocks)"
    )
    print(f"report: plotly unpacked and parsed {statistics.median(unpacked):.2f} s")
    print(
        f"report: load {statistics.median(loads):.2f} s, first plot drawn "
        f"{statistics.median(drawn):.2f} s (median of 5); "
        f"ratio to plotly.js alone {statistics.median(loads) / statistics.median(bases):.2f}"
    )


if __name__ == "__main__":
    main(int(float(sys.argv[1])) if len(sys.argv) > 1 else 10_000)
