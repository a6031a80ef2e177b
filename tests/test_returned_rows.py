"""Nothing lost from what a sweep function returns (SPEC §3 "Nothing lost"): book-keeping
keys, a cleared pset, values that cannot be unpickled, a list. One study, a sweep for
each test, run by two sessions one after the other, serially and under xdist."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest

import pytest_psweep as ps
from tests.processes import make_study, run_session, section
from tests.test_nothing_lost import outcomes

KEYS = """
    import pytest_psweep as ps

    @ps.sweep(ps.plist("a", [0, 1, 2, 3]))
    def sweep_keys(pset):
        if pset["a"] == 0:
            return {"_pset_id": "fixed", "r": 1}
        if pset["a"] == 1:
            return {"_time_utc": "x", "r": 1}
        if pset["a"] == 2:
            pset.update(r=2)
            return pset  # psweep's style: the pset itself, book-keeping unchanged
        return {"r": 3}
"""

CLEAR = """
    import pytest_psweep as ps

    @ps.sweep(ps.plist("a", [0, 1]))
    def sweep_clear(pset):
        if pset["a"] == 0:
            del pset["_time_utc"], pset["_pset_id"]
            pset["_run_id"] = "mine"
        else:
            pset.clear()
        return {"r": 1}
"""

UNPICKLABLE = """
    import pytest_psweep as ps

    class MyErr(Exception):
        def __init__(self, code, text):
            super().__init__(f"{code}: {text}")

    @ps.sweep(ps.plist("a", [0, 1, 2]))
    def sweep_err(pset):
        return {"err": MyErr(1, 2) if pset["a"] == 1 else None, "r": pset["a"]}
"""

A_LIST = """
    import pytest_psweep as ps

    @ps.sweep(ps.plist("a", [1]))
    def sweep_list(pset):
        return [pset["a"]]
"""


class Returned(NamedTuple):
    """The study of what sweep functions return after two sessions (``returned``)."""

    first: pytest.RunResult
    journal: list[str]  # the journal folder after the first session
    database: Any  # and the database
    second: pytest.RunResult
    again: Any  # the database after the second session

    def failed(self, sweep: str) -> list[str]:
        """The node ids of a sweep's psets that pytest failed in the first session."""
        failed = [line.split()[1] for line in self.first.outlines if line.startswith("FAILED ")]
        return sorted(node for node in failed if node.startswith(f"{sweep}.py::"))


def of(df: Any, sweep: str) -> Any:
    """A database's rows of one sweep (``sweep_keys``: its file is sweep_keys.py)."""
    return df[df["_sweep"] == f"{sweep}.py::{sweep}"]


@pytest.fixture(scope="module")
def returned(tmp_path_factory) -> Callable[[list[str]], Returned]:
    """The study of what sweep functions return, one sweep per test, run by two
    sessions one after the other, serially or with the workers given: each at most
    once, when a test first asks for it."""
    runs: dict[tuple[str, ...], Returned] = {}

    def run(workers: list[str]) -> Returned:
        if tuple(workers) not in runs:
            folder = make_study(
                tmp_path_factory.mktemp("returned"),
                sweep_keys=KEYS,
                sweep_clear=CLEAR,
                sweep_err=UNPICKLABLE,
                sweep_list=A_LIST,
            )
            first = run_session(folder, *workers)
            journaled = os.listdir(folder / "calc" / "journal")
            database = ps.df_read(folder / "calc" / "results.pk")
            second = run_session(folder, *workers)
            again = ps.df_read(folder / "calc" / "results.pk")
            runs[tuple(workers)] = Returned(first, journaled, database, second, again)
        return runs[tuple(workers)]

    return run


# the tests that read the `returned` study
RETURNED = pytest.mark.xdist_group("nothing_lost_returned")


@RETURNED
def test_returned_bookkeeping_keys_fail_the_pset_and_keep_the_true_values(returned, workers):
    # returning {"_pset_id": "fixed"} gave three rows one _pset_id, and the next
    # session's rows were dropped as duplicates; {"_time_utc": "x"} poisoned the journal
    study = returned(workers)
    assert study.failed("sweep_keys") == [
        "sweep_keys.py::sweep_keys[a=0]",
        "sweep_keys.py::sweep_keys[a=1]",
    ]
    study.first.stdout.fnmatch_lines(["*returned book-keeping key(s) '_pset_id'*rename*"])
    df = of(study.database, "sweep_keys")
    assert df["_pset_id"].nunique() == 4 and "fixed" not in set(df["_pset_id"])
    assert str(df["_time_utc"].dtype).startswith("datetime64")
    assert outcomes(df) == {"failed": [0, 1], "passed": [2, 3]}
    assert set(df["r"]) == {1, 2, 3}  # the rest of a failed pset's result is kept
    second = of(study.again, "sweep_keys")
    assert outcomes(second) == {"failed": [0, 0, 1, 1], "passed": [2, 2, 3, 3]}
    assert len(second) == 8  # the next session's rows are all there


@RETURNED
def test_a_function_that_clears_its_pset_cannot_damage_its_row(returned):
    study = returned([])
    assert study.failed("sweep_clear") == []
    df = of(study.database, "sweep_clear")
    assert outcomes(df) == {"passed": [0, 1]}
    assert df["_run_id"].nunique() == 1 and "mine" not in set(df["_run_id"])
    assert df["_pset_id"].nunique() == 2 and df["_time_utc"].notna().all()


@RETURNED
def test_a_value_that_cannot_be_unpickled_fails_its_pset_only(returned):
    study = returned([])
    assert study.failed("sweep_err") == ["sweep_err.py::sweep_err[a=1]"]
    study.first.stdout.fnmatch_lines(["*key(s) 'err' (TypeError*cannot be unpickled again*"])
    df = of(study.database, "sweep_err")
    assert outcomes(df) == {"failed": [1], "passed": [0, 2]} and list(df["r"]) == [0, 1, 2]
    assert study.journal == []
    second = of(study.again, "sweep_err")
    assert outcomes(second) == {"failed": [1, 1], "passed": [0, 0, 2, 2]}
    assert len(second) == 6


@RETURNED
def test_a_non_dict_return_shows_the_users_code(returned):
    study = returned([])
    assert study.failed("sweep_list") == ["sweep_list.py::sweep_list[a=1]"]
    text = section(study.first, "sweep_list[a=1]").str()
    assert "returned a list for pset {'a': 1}; return a dict" in text
    assert "pytest_psweep/engine.py" not in text and "pytest_psweep/plugin.py" not in text
