"""Regression compare and look-ahead as pure functions (SPEC §5 --psweep-compare)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pytest_psweep import compare


def diff(baseline, new, keys=None, ignore=(), rtol=1e-9, atol=0.0):
    keys = list(new) if keys is None else keys
    return compare.differences(baseline, new, keys=keys, ignore=ignore, rtol=rtol, atol=atol)


def test_numbers_within_tolerance_are_the_same():
    assert diff({"x": 1.0}, {"x": 1.0 + 1e-12}) == []
    assert diff({"x": 1}, {"x": 1.0}) == []
    assert diff({"x": 0.0}, {"x": 1e-3}, atol=1e-2) == []


def test_a_number_beyond_tolerance_differs_with_abs_and_rel_difference():
    (found,) = diff({"x": 2.0}, {"x": 2.5})
    assert found.key == "x" and found.baseline == 2.0 and found.new == 2.5
    assert found.abs_diff == 0.5 and found.rel_diff == 0.25


def test_a_change_from_zero_has_infinite_relative_difference():
    (found,) = diff({"x": 0.0}, {"x": 1.0})
    assert found.rel_diff == math.inf


def test_nan_equals_nan_and_a_missing_value_equals_none():
    assert diff({"x": float("nan")}, {"x": float("nan")}) == []
    assert diff({"x": None}, {"x": float("nan")}) == []


def test_bools_and_strings_compare_by_equality():
    assert diff({"ok": True, "s": "a"}, {"ok": True, "s": "a"}) == []
    keys = [d.key for d in diff({"ok": True, "s": "a"}, {"ok": False, "s": "b"})]
    assert keys == ["ok", "s"]


def test_arrays_compare_element_wise():
    assert diff({"v": np.array([1.0, 2.0])}, {"v": np.array([1.0, 2.0 + 1e-12])}) == []
    (found,) = diff({"v": np.array([1.0, 2.0])}, {"v": np.array([1.0, 3.0])})
    assert found.abs_diff == 1.0 and found.rel_diff == 0.5
    (shape,) = diff({"v": np.zeros(2)}, {"v": np.zeros(3)})
    assert shape.baseline == "shape (2,)" and shape.new == "shape (3,)"


def test_a_new_or_missing_key_is_a_difference_parameters_and_bookkeeping_are_not():
    baseline = {"a": 1, "r": 1.0, "old": 5, "_pset_id": "x"}
    found = diff(baseline, {"r": 1.0, "new": 2}, keys=["r", "new"], ignore=["a"])
    assert [(d.key, d.baseline, d.new) for d in found] == [
        ("new", "<missing>", 2),
        ("old", 5, "<missing>"),
    ]


def test_diff_table_lines_up_key_baseline_new_and_differences():
    table = compare.diff_table(diff({"x": 2.0}, {"x": 2.5}))
    header, rule, row = table.splitlines()
    assert header.split() == ["key", "baseline", "new", "abs", "diff", "rel", "diff"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert row.split() == ["x", "2.0", "2.5", "0.5", "0.25"]


def frame(rows):
    return pd.DataFrame(rows, columns=["_sweep", "_pset_hash", "_outcome", "_pset_seq", "r"])


def test_baseline_is_the_latest_passed_row_per_sweep_and_pset():
    database = frame(
        [
            ("s", "h1", "passed", 0, 1.0),
            ("s", "h1", "passed", 1, 2.0),
            ("s", "h1", "failed", 2, 3.0),
            ("s", "h2", "failed", 3, 4.0),
        ]
    )
    index = compare.baseline_index(database)
    assert list(index) == [("s", "h1", "")]
    assert index[("s", "h1", "")]["r"] == 2.0


def test_baseline_keeps_apart_the_cases_of_one_pset():
    # a sweep with another parametrization: one pset, two cases, each its own baseline
    database = frame([("s", "h1", "passed", 0, 1.0), ("s", "h1", "passed", 1, 2.0)])
    database["_case_hash"] = ["fast", "slow"]
    index = compare.baseline_index(database)
    assert {key: row["r"] for key, row in index.items()} == {
        ("s", "h1", "fast"): 1.0,
        ("s", "h1", "slow"): 2.0,
    }


def test_lookahead_counts_new_done_failed_before_and_other_code():
    database = pd.DataFrame(
        {
            "_sweep": ["s", "s", "s"],
            "_pset_hash": ["done", "failed", "changed"],
            "_outcome": ["passed", "failed", "passed"],
            "_code_hash": ["c1", "c1", "c0"],
        }
    )
    psets = [(("s", h, ""), "c1") for h in ("done", "failed", "changed", "new", "new2")]
    counts = compare.lookahead(database, psets)
    assert dict(counts["s"]) == {"done": 1, "failed before": 1, "other code": 1, "new": 2}
    assert dict(compare.lookahead(None, psets)["s"]) == {"new": 5}
