"""Installed but not asked for (issue 23): plain pytest collects, runs and prints
exactly what it does without the plugin, and ``--psweep`` without sweeps starts and
makes nothing. The entry point imports only what its options need."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PACKAGE_CALC = {
    # a project's own test package that happens to be named like a calc dir
    "calc/__init__.py": "",
    "calc/test_arith.py": "def test_add():\n    assert 1 + 1 == 2\n",
    # a folder holding a file named like a database, and one like a backup
    "data/results.pk": "not ours",
    "data/test_data.py": "def test_data():\n    pass\n",
    "calc_2020/test_old.py": "def test_old():\n    pass\n",
    "test_top.py": "def test_top():\n    pass\n",
}


def _layout(pytester: pytest.Pytester) -> None:
    for name, text in PACKAGE_CALC.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_plain_pytest_collects_exactly_what_it_does_without_the_plugin(pytester):
    _layout(pytester)
    without = pytester.runpytest_subprocess("-p", "no:psweep", "--co", "-q")
    with_plugin = pytester.runpytest_subprocess("--co", "-q")
    ids = [line for line in with_plugin.outlines if "::" in line]
    assert ids == [line for line in without.outlines if "::" in line]
    assert "calc/test_arith.py::test_add" in ids
    assert "data/test_data.py::test_data" in ids
    assert "calc_2020/test_old.py::test_old" in ids
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=4)
    assert "psweep:" not in result.stdout.str()


def test_with_psweep_only_a_marked_calc_dir_is_skipped(pytester):
    """Under --psweep, a folder named calc without the marker is collected; the calc
    dir a run made carries the marker and is skipped, also in a copy of it."""
    _layout(pytester)
    result = pytester.runpytest_subprocess("--psweep", "--psweep-calc-dir=study")
    result.assert_outcomes(passed=4)
    pytester.makepyfile(
        sweep_one="""
        import pytest_psweep as ps

        @ps.sweep([{"a": 1}])
        def sweep_one(pset):
            return {"b": 2}
        """
    )
    result = pytester.runpytest_subprocess("--psweep", "--psweep-calc-dir=study")
    result.assert_outcomes(passed=5)
    assert (pytester.path / "study" / ".psweep-calc-dir").is_file()
    # the calc dir keeps a copy of sweep_one.py (backup_script/): never collected
    assert list((pytester.path / "study" / "backup_script").rglob("sweep_one.py"))
    result = pytester.runpytest_subprocess("--psweep", "--psweep-calc-dir=study", "--co", "-q")
    assert not [line for line in result.outlines if line.startswith("study")]


def test_psweep_without_sweeps_starts_and_makes_nothing(pytester):
    pytester.makepyfile(test_plain="def test_one():\n    pass\n")
    pytester.makeconftest(
        """
        import json, sys

        def pytest_unconfigure(config):
            loaded = sorted(m for m in sys.modules if m.startswith("pytest_psweep"))
            with open("loaded.json", "w") as fh:
                json.dump(loaded, fh)
        """
    )
    for args in ([], ["-n", "2"]):
        result = pytester.runpytest_subprocess("--psweep", *args)
        result.assert_outcomes(passed=1)
        assert not (pytester.path / "calc").exists()
        loaded = json.loads((pytester.path / "loaded.json").read_text())
        assert "pytest_psweep.writer" not in loaded


def test_the_entry_point_imports_only_what_its_options_need():
    code = (
        "import json, sys; import pytest; before = set(sys.modules); "
        "import pytest_psweep.plugin; print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    ours = [name for name in loaded if name.startswith("pytest_psweep")]
    assert ours == [
        "pytest_psweep",
        "pytest_psweep.errors",
        "pytest_psweep.hookspecs",
        "pytest_psweep.names",
        "pytest_psweep.plugin",
    ]
    for heavy in ("pandas", "multiprocessing", "concurrent.futures", "filelock", "numpy"):
        assert heavy not in loaded


def test_the_hint_counts_only_files_holding_a_sweep(pytester):
    pytester.makepyfile(
        sweep_helpers="def sweep_range(n):\n    return list(range(n))\n",
        sweep_study="""
        import pytest_psweep as ps

        @ps.sweep([{"a": 1}])
        def sweep_study(pset):
            pass
        """,
        test_plain="def test_one():\n    pass\n",
    )
    line = "psweep: 1 sweep_*.py file (sweep_study.py) left out: run them with pytest --psweep"
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([line])
    # under xdist the controller collects nothing: the workers tell it, said at the end
    result = pytester.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([line])
    assert result.stdout.str().count("left out") == 1


def test_collect_only_quiet_prints_node_ids_only(pytester):
    """``pytest --co -q`` prints node ids that are fed back to pytest (e.g. split into
    jobs): the line about sweeps left out would be taken for one."""
    pytester.makepyfile(
        sweep_study="import pytest_psweep as ps\n\n@ps.sweep([{'a': 1}])\n"
        "def sweep_study(pset):\n    pass\n",
        test_plain="def test_one():\n    pass\n",
    )
    result = pytester.runpytest_subprocess("--co", "-q")
    assert result.ret == 0
    assert result.stdout.lines[0] == "test_plain.py::test_one"
    assert "left out" not in result.stdout.str()
    result = pytester.runpytest_subprocess("--co")  # not quiet: said
    result.stdout.fnmatch_lines(["psweep: 1 sweep_*.py file (sweep_study.py) left out*"])


def test_plain_pytest_after_a_sweep_run_never_collects_the_kept_copies(pytester):
    """A calc dir keeps copies of the sweep modules that made its rows; plain pytest
    after a --psweep run collects the originals only (else: import file mismatch)."""
    pytester.makepyfile(
        test_mixed="""
        import pytest_psweep as ps

        def test_plain():
            pass

        @ps.sweep(ps.grid(a=[1, 2]))
        def sweep_a(pset):
            return {"r": pset["a"]}
        """
    )
    pytester.runpytest_subprocess("--psweep").assert_outcomes(passed=3)  # 2 psets, 1 test
    assert list((pytester.path / "calc" / "backup_script").rglob("test_mixed.py"))
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["psweep: 1 sweep (test_mixed.py::sweep_a) left out*"])


def test_psweep_never_takes_over_a_test_package_named_like_the_calc_dir(pytester):
    _layout(pytester)
    for _ in range(2):
        result = pytester.runpytest_subprocess("--psweep")
        result.assert_outcomes(passed=4)  # calc/test_arith.py among them, every time
    assert not (pytester.path / "calc" / ".psweep-calc-dir").exists()
    assert not (pytester.path / "calc" / "journal").exists()


@pytest.mark.parametrize(
    "args", [["--setup-plan"], ["--setup-only"], ["--fixtures"], ["-k", "a=1"], ["-m", "and"]]
)
def test_dry_runs_and_usage_errors_write_nothing(pytester, args):
    pytester.makepyfile(
        sweep_dirs="""
        import pytest_psweep as ps

        @ps.sweep(ps.grid(a=[1, 2]))
        def sweep_dirs(pset, pset_dir):
            return {"r": pset["a"]}
        """
    )
    pytester.runpytest_subprocess("--psweep", *args)
    assert not (pytester.path / "calc").exists()
