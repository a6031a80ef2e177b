"""Headless Chromium for the report's tests (Debian's, which .ci/run installs),
driven with Playwright (the dev extra): skipped locally without them, a failure in
CI (``CI=true``)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.daemons import need

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    chromium_path = need("chromium", package="chromium")["chromium"]
    if importlib.util.find_spec("playwright") is None:
        reason = "playwright is not installed: pip install -e '.[dev]'"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs it: {reason}", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_page(browser: Any, path: Path, errors: list[str]) -> Any:
    """The page at path, its JavaScript errors and console errors into ``errors``."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.goto(path.as_uri())
    return page


def draw_all(page: Any, holders: str = ".plot") -> None:
    """Scroll every plot (every element ``holders`` selects) into view and wait until
    plotly has drawn it."""
    plots = page.locator(holders)
    for index in range(plots.count()):
        plots.nth(index).scroll_into_view_if_needed()
        plots.nth(index).locator(".main-svg").first.wait_for(timeout=30_000)


def psweep_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``psweep ARGS`` run in cwd (as ``python -m pytest_psweep.cli``)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_psweep.cli", *args], cwd=cwd, capture_output=True, text=True
    )


FIGURES = """
Array.from(document.querySelectorAll(".plot .js-plotly-plot")).map(function (gd) {
  var layout = gd._fullLayout, axes = {};
  Object.keys(layout).forEach(function (key) {
    if (/^[xy]axis\\d*$/.test(key)) axes[key] = {type: layout[key].type,
      categories: layout[key].categoryarray || null};
  });
  return {
    title: gd.querySelector(".gtitle") ? gd.querySelector(".gtitle").textContent : "",
    axes: axes,
    traces: gd.data.map(function (t) {
      return {name: t.name, mode: t.mode || "", type: t.type, x: Array.from(t.x || []),
              y: Array.from(t.y || []), xaxis: t.xaxis || "x", symbol: (t.marker || {}).symbol};
    })
  };
})
"""


def figures(page: Any) -> list[dict[str, Any]]:
    """Every drawn plot: its title as shown, its axes' types, its traces."""
    draw_all(page)
    return list(page.evaluate(FIGURES))


def titled(found: list[dict[str, Any]], start: str) -> dict[str, Any]:
    matches = [figure for figure in found if figure["title"].startswith(start)]
    assert matches, f"no plot titled {start!r} in {[f['title'] for f in found]}"
    return matches[0]
