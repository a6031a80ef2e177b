"""``psweep show/export/report`` on a database whose rows hold objects of classes
from the sweep modules (issue 21, item 12): read with the modules' import roots that
the calc dir recorded; otherwise an error naming the module, never a suggestion to
move an intact database away."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

ENUM_SWEEP = """
    import enum
    import pytest_psweep as ps

    class Color(enum.Enum):
        RED = 1
        BLUE = 2

    @ps.sweep(ps.grid(a=[1, 2]))
    def sweep_enum(pset):
        return {"color": Color.RED if pset["a"] == 1 else Color.BLUE}
"""


def psweep(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "pytest_psweep.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
    )


@pytest.fixture
def study(pytester):
    studies = pytester.mkdir("studies")  # an import root that is not the rootdir
    (studies / "sweep_enum.py").write_text(__import__("textwrap").dedent(ENUM_SWEEP))
    pytester.runpytest_subprocess("--psweep", "studies").assert_outcomes(passed=2)
    return pytester.path


def test_show_finds_the_sweep_modules_the_sessions_imported(study, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shown = psweep("show", str(study / "calc"), cwd=elsewhere)
    assert shown.returncode == 0, shown.stderr
    assert "Color.RED" in shown.stdout and "Color.BLUE" in shown.stdout
    exported = psweep("export", str(study / "calc"), "out.csv", cwd=elsewhere)
    assert exported.returncode == 0 and (elsewhere / "out.csv").exists(), exported.stderr


def test_a_module_that_is_gone_is_named_and_the_database_called_intact(study, tmp_path):
    shutil.move(study / "studies", tmp_path / "moved")
    before = (study / "calc" / "results.pk").read_bytes()
    for command in (["show"], ["export", "out.csv"], ["report", "-o", "r.html"]):
        done = psweep(command[0], str(study / "calc"), *command[1:], cwd=tmp_path)
        assert done.returncode == 1 and "Traceback" not in done.stderr
        assert "is intact, but holds objects of module 'sweep_enum'" in done.stderr
        assert "PYTHONPATH=" in done.stderr and "move it away" not in done.stderr
    assert (study / "calc" / "results.pk").read_bytes() == before
    path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    fixed = subprocess.run(
        [sys.executable, "-m", "pytest_psweep.cli", "show", str(study / "calc")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "moved"), *path])},
    )
    assert fixed.returncode == 0 and "Color.RED" in fixed.stdout, fixed.stderr
