"""Every example study runs as its docstring says, in a temporary copy, and its
database holds what the docstring promises (so the examples never rot)."""

from __future__ import annotations

import ast
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_psweep as ps

EXAMPLES = Path(__file__).resolve().parent.parent / "example_studies"
STUDIES = sorted(path.name for path in EXAMPLES.glob("sweep_*.py"))
# on one xdist worker (--dist loadgroup): the studies run once, for every test here
pytestmark = pytest.mark.xdist_group("examples")


def commands(study: str) -> list[str]:
    """The ``$ ...`` lines of a study's docstring."""
    doc = ast.get_docstring(ast.parse((EXAMPLES / study).read_text()))
    assert doc is not None, f"{study} has no docstring"
    return [line.strip()[2:] for line in doc.splitlines() if line.strip().startswith("$ ")]


def run(command: str, cwd: Path) -> str:
    """Run a documented command with this interpreter's pytest, python and psweep."""
    words = shlex.split(command)
    env_words = [w for w in words if re.fullmatch(r"[A-Z_]+=\S*", w)]
    words = words[len(env_words) :]
    program = {
        "pytest": [sys.executable, "-m", "pytest"],
        "python": [sys.executable],
        "psweep": [shutil.which("psweep") or "psweep"],
    }[words[0]]
    env = dict(__import__("os").environ, **dict(w.split("=", 1) for w in env_words))
    done = subprocess.run([*program, *words[1:]], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return str(done.stdout)


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    """A copy of example_studies/ with every study run as documented: (folder, outputs)."""
    folder = tmp_path_factory.mktemp("examples") / "example_studies"
    shutil.copytree(EXAMPLES, folder, ignore=shutil.ignore_patterns("calc", "*.png", "__pycache__"))
    outputs = {study: [run(command, folder) for command in commands(study)] for study in STUDIES}
    return folder, outputs


def db(folder: Path, calc: str, *by: str):
    """A study's database; rows sorted by the columns ``by``: rows are stored in the
    order psets ran, which plugins such as pytest-randomly change."""
    df = ps.df_read(folder / "calc" / calc / "results.pk")
    return df.sort_values(list(by), kind="stable") if by else df


def test_every_study_documents_its_commands():
    assert STUDIES, "no example studies found"
    for study in STUDIES:
        assert any("pytest --psweep" in c for c in commands(study)), study


def test_vary_1_param(studies):
    folder, outputs = studies
    df = db(folder, "vary_1_param", "a")
    assert list(df["a"]) == [1, 2, 3]
    assert list(df["result"].round(4)) == [1.0, 1.4142, 1.7321]
    assert "[3 rows]" in outputs["sweep_vary_1_param.py"][1]


def test_vary_2_params_grid(studies):
    df = db(studies[0], "vary_2_params", "a", "b")
    assert df[["a", "b"]].values.tolist() == [[1, 88], [1, 99], [2, 88], [2, 99], [3, 88], [3, 99]]
    assert list(df["result"]) == list(df["a"] * df["b"])


def test_vary_2_params_zip(studies):
    df = db(studies[0], "zip", "a")
    assert df[["a", "name", "const"]].values.tolist() == [[1, "xx", 1.23], [2, "yy", 1.23]]


def test_repeat_gives_two_runs_of_the_same_psets(studies):
    df = db(studies[0], "repeat")
    assert df["_run_id"].nunique() == 2
    assert df.groupby("_pset_hash").size().tolist() == [2, 2, 2]
    assert df["_pset_id"].nunique() == 6


def test_save_data_on_disk_and_eval(studies):
    folder, outputs = studies
    df = db(folder, "on_disk")
    for pset_id, a in zip(df["_pset_id"], df["a"]):
        assert (folder / "calc" / "on_disk" / pset_id / "output.txt").read_text().split() == [
            str(a),
            str(2 * a),
            str(4 * a),
        ]
    evaluated = ps.df_read(folder / "calc" / "on_disk" / "results_eval.pk")
    evaluated = evaluated.sort_values("a")
    assert list(evaluated["mean"]) == [a * 7 / 3 for a in (1, 2, 3, 4)]


def test_1d_scans_extended_with_backup(studies):
    folder, _ = studies
    df = db(folder, "scans", "_run_seq", "a", "b")
    assert df[["_vary", "a", "b", "_run_seq"]].values.tolist() == [
        ["a", 0.5, 10.0, 0],
        ["a", 1.0, 10.0, 0],
        ["a", 2.0, 10.0, 0],
        ["b", 1.0, 5.0, 1],
        ["b", 1.0, 20.0, 1],
    ]
    (backup,) = (folder / "calc").glob("scans_*")
    assert len(ps.df_read(backup / "results.pk")) == 3


def test_simulate_then_real(studies):
    folder, outputs = studies
    simulated = ps.df_read(folder / "calc" / "simulate.simulate" / "results.pk")
    assert len(simulated) == 4
    assert "result" not in simulated.columns  # the function was not called
    assert (
        "look ahead: sweep_simulate.py::sweep_expensive: 4 new" in outputs["sweep_simulate.py"][0]
    )
    real = db(folder, "simulate", "a", "b")
    assert list(real["result"]) == [10.0, 5.0, 20.0, 10.0]


def test_study_column(studies):
    folder, outputs = studies
    df = db(folder, "study")
    assert sorted(df["study"].unique()) == ["scan=a", "scan=b"]
    shown = outputs["sweep_study_column.py"][1]
    assert "scan=b" not in shown and shown.count("scan=a") == 3


def test_parallel_run(studies):
    df = db(studies[0], "parallel")
    assert sorted(df["primes"]) == [25, 168, 1229, 9592, 78498]
    assert df["_run_id"].nunique() == 1


def test_convergence_study_and_plot(studies):
    folder, outputs = studies
    df = db(folder, "convergence")
    assert len(df) == 21 and set(df["_outcome"]) == {"passed"}
    plot_output = outputs["sweep_convergence.py"][1]
    for method, order in (("euler", 1), ("heun", 2), ("rk4", 4)):
        found = re.search(rf"{method}: observed order ([\d.]+)", plot_output)
        assert found is not None, f"no observed order of {method}:\n{plot_output}"
        observed = float(found[1])
        assert abs(observed - order) < 0.1
    png = (folder / "convergence.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_regression_sweep_matches_committed_baseline(studies):
    folder, outputs = studies
    assert "6 same, 0 differ, 0 new" in outputs["sweep_regression.py"][0]
    # and it catches drift: a changed model fails against the same baseline
    source = folder / "sweep_regression.py"
    source.write_text(
        source.read_text().replace("np.cos(omega_d * t)", "np.cos(1.001 * omega_d * t)")
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--psweep",
            "sweep_regression.py",
            "--psweep-calc-dir=calc/regression",
            "--psweep-baseline=baselines/regression.json",
        ],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "results differ from baseline" in done.stdout
