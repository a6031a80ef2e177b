"""Building params (SPEC §2): the psweep README's outputs and the content hash."""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pytest_psweep as ps

A = ps.plist("a", [1, 2])
B = ps.plist("b", ["xx", "yy"])
C = ps.plist("c", [88, None, "Z"])


def test_plist_makes_one_pset_per_value():
    assert ps.plist("a", [1, 2]) == [{"a": 1}, {"a": 2}]


def test_itr2params_merges_product():
    assert ps.itr2params(itertools.product(A, B)) == [
        {"a": 1, "b": "xx"},
        {"a": 1, "b": "yy"},
        {"a": 2, "b": "xx"},
        {"a": 2, "b": "yy"},
    ]


def test_itr2params_flattens_zip_nesting():
    assert ps.itr2params(itertools.product(zip(A, B), C)) == ps.pgrid(zip(A, B), C)


def test_pgrid_args_and_list_forms_agree():
    assert ps.pgrid(A, B) == ps.pgrid([A, B]) == ps.itr2params(itertools.product(A, B))


def test_pgrid_zip_varies_together():
    assert ps.pgrid([zip(A, B)]) == [{"a": 1, "b": "xx"}, {"a": 2, "b": "yy"}]
    assert ps.pgrid(zip(A, B)) == [{"a": 1, "b": "xx"}, {"a": 2, "b": "yy"}]


def test_pgrid_zip_with_third_param_and_constant():
    const = ps.plist("const", [1.23])
    assert ps.pgrid(zip(A, B), C, const) == [
        {"a": 1, "b": "xx", "c": 88, "const": 1.23},
        {"a": 1, "b": "xx", "c": None, "const": 1.23},
        {"a": 1, "b": "xx", "c": "Z", "const": 1.23},
        {"a": 2, "b": "yy", "c": 88, "const": 1.23},
        {"a": 2, "b": "yy", "c": None, "const": 1.23},
        {"a": 2, "b": "yy", "c": "Z", "const": 1.23},
    ]


def test_pgrid_of_single_plist_returns_its_psets():
    assert ps.pgrid(A) == [{"a": 1}, {"a": 2}]
    assert ps.pgrid([A]) == [{"a": 1}, {"a": 2}]


def test_pgrid_returns_new_dicts():
    params = ps.pgrid(A)
    params[0]["a"] = 99
    assert A[0] == {"a": 1}


def test_merging_the_same_key_twice_is_an_error_naming_it():
    with pytest.raises(ps.PsweepError, match="'a'"):
        ps.pgrid(A, ps.plist("a", [3]))


def test_grid_shorthand():
    assert ps.grid(a=[1, 2], b=["xx", "yy"]) == ps.pgrid(A, B)


def test_stargrid_scans_one_at_a_time_without_repeating_the_centre():
    const = dict(a=1, b=77, c=11)
    a = ps.plist("a", [1, 2, 3, 4])
    b = ps.plist("b", [77, 88, 99])
    assert ps.stargrid(const, vary=[a, b]) == [
        {"a": 1, "b": 77, "c": 11},
        {"a": 2, "b": 77, "c": 11},
        {"a": 3, "b": 77, "c": 11},
        {"a": 4, "b": 77, "c": 11},
        {"a": 1, "b": 88, "c": 11},
        {"a": 1, "b": 99, "c": 11},
    ]
    assert len(ps.stargrid(const, vary=[a, b], skip_dups=False)) == 7


def test_stargrid_labels_name_the_varied_parameter():
    const = dict(a=1, b=77)
    params = ps.stargrid(
        const,
        vary=[ps.plist("a", [1, 2]), ps.pgrid([zip(ps.plist("a", [5]), ps.plist("b", [6]))])],
        vary_labels=["a", "a+b"],
    )
    assert params == [
        {"a": 1, "b": 77, "_vary": "a"},
        {"a": 2, "b": 77, "_vary": "a"},
        {"a": 5, "b": 6, "_vary": "a+b"},
    ]


def test_filter_params_unique_keeps_first_in_order():
    params: list[dict[str, Any]] = [{"a": 2}, {"a": 1}, {"a": 2.0}, {"a": 3}, {"a": 1}]
    assert ps.filter_params_unique(params) == [{"a": 2}, {"a": 1}, {"a": 3}]


def test_pset_hash_ignores_key_order_and_underscore_keys():
    assert ps.pset_hash({"a": 1, "b": "x"}) == ps.pset_hash({"b": "x", "a": 1})
    assert ps.pset_hash({"a": 1, "_study": "s1"}) == ps.pset_hash({"a": 1})
    assert ps.pset_hash({"a": 1}) != ps.pset_hash({"a": 2})
    assert ps.pset_hash({"a": 1}) != ps.pset_hash({"b": 1})


def test_pset_hash_numbers_by_value():
    one = ps.pset_hash({"a": 1})
    assert ps.pset_hash({"a": 1.0}) == one
    assert ps.pset_hash({"a": np.int64(1)}) == one
    assert ps.pset_hash({"a": np.float32(1.0)}) == one
    assert ps.pset_hash({"a": 1 + 0j}) == one
    assert ps.pset_hash({"a": 0.5}) == ps.pset_hash({"a": np.float64(0.5)})
    assert ps.pset_hash({"a": np.array([1.0, 2.0])}) == ps.pset_hash({"a": np.array([1, 2])})
    assert ps.pset_hash({"a": [1, 2.0]}) == ps.pset_hash({"a": (1, 2)})


def test_pset_hash_keeps_bools_strings_none_apart_from_numbers():
    digests = {
        ps.pset_hash({"a": value})
        for value in (1, True, "1", None, 0, False, "", np.True_, [1], (1,))
    } | {ps.pset_hash({"a": np.bool_(False)})}
    # 1/True/np.True_ -> 1 and True are distinct, np.True_ == True; [1] == (1,)
    assert len(digests) == 8
    assert ps.pset_hash({"a": np.True_}) == ps.pset_hash({"a": True})
    assert ps.pset_hash({"a": True}) != ps.pset_hash({"a": 1})


def test_pset_hash_nested_values():
    assert ps.pset_hash({"a": {"y": 1, "x": [1, 2]}}) == ps.pset_hash(
        {"a": {"x": (1.0, 2), "y": 1.0}}
    )
    assert ps.pset_hash({"a": np.zeros((2, 2))}) != ps.pset_hash({"a": np.zeros(4)})
    assert ps.pset_hash({"p": Path("/x")}) == ps.pset_hash({"p": Path("/x")})


def test_pset_hash_nested_mapping_keys_keep_their_types():
    assert ps.pset_hash({"v": {1: 2}}) != ps.pset_hash({"v": {"1": 2}})
    assert ps.pset_hash({"v": {True: 2}}) != ps.pset_hash({"v": {"True": 2}})
    assert ps.pset_hash({"v": {1: 2}}) == ps.pset_hash({"v": {1.0: 2}})  # numbers by value
    assert ps.pset_hash({"v": {2: "b", "a": 1}}) == ps.pset_hash({"v": {"a": 1, 2: "b"}})
    # string keys hash as they always did (stored hashes stay valid)
    assert ps.pset_hash({"v": {"b": 1, "aa": 2}}) == "69c6971e7a80f8e5733832a2809f7fbb6858446a"


def test_pset_hash_is_the_same_in_another_process():
    code = "import pytest_psweep as ps; print(ps.pset_hash({'b': 'x', 'a': 1.5, 'c': None}))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ps.pset_hash({"a": 1.5, "b": "x", "c": None})


def test_pset_hash_is_stable_between_sessions():
    # a stored database is compared by hash in later sessions: the digest of a fixed
    # pset must never change between releases
    assert ps.pset_hash({"a": 1, "b": "xx"}) == "c19c9d50e98a61b8b4ad32e0c39929be2a8c9843"


def test_pset_hash_error_names_the_key():
    with pytest.raises(ps.PsweepError, match="'f'"):
        ps.pset_hash({"a": 1, "f": threading.Lock()})  # cannot be pickled
