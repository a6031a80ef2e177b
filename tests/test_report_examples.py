"""The three-parameter example study (example_studies/study_quadrature.py) runs as
its docstring says, and its report holds what the README shows: err against n, a
line per method, a panel per integrand, and the failures in three groups."""

from __future__ import annotations

import ast
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest_psweep as ps

STUDY = Path(__file__).resolve().parent.parent / "example_studies" / "study_quadrature.py"


def test_the_quadrature_study_and_its_report(tmp_path):
    shutil.copy(STUDY, tmp_path)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    doc = ast.get_docstring(ast.parse(STUDY.read_text()))
    assert doc is not None, f"{STUDY} has no docstring"
    commands = [line.strip()[2:] for line in doc.splitlines() if line.strip().startswith("$ ")]
    assert [c.split()[0] for c in commands] == ["pytest", "psweep"]
    for command in commands:
        words = shlex.split(command)
        program = [sys.executable, "-m", "pytest" if words[0] == "pytest" else "pytest_psweep.cli"]
        done = subprocess.run(
            [*program, *words[1:], *(["-p", "no:randomly"] if words[0] == "pytest" else [])],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        # the study's failures are part of it: pytest exits 1
        assert done.returncode == (1 if words[0] == "pytest" else 0), done.stdout + done.stderr
    database = ps.df_read(tmp_path / "calc" / "quadrature" / "results.pk")
    assert len(database) == 189
    assert (database["_outcome"] == "failed").sum() == 20
    page = (tmp_path / "quadrature.html").read_text()
    assert "Failures: 20 psets in 3 groups" in page
    message = "ValueError: simpson needs an even number of intervals, got {n}"
    assert re.search(
        rf'"group-count">12</b> failed: <code class="group-message">{re.escape(message)}', page
    )
    specs = [
        json.loads(s)
        for s in re.findall(
            r'<div class="plot[^"]*"><script type="application/json">(.*?)</script>', page
        )
    ]
    assert {
        "kind": "result",
        "x": "n",
        "y": "err",
        "color": "method",
        "facets": ["integrand"],
    } in specs
