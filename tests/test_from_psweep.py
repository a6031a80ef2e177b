"""Coming from psweep (SPEC §8): psweep 0.16's API gives the same results here, its
scripts write the same rows, and its calc dirs are refused until migrated, then
read and appended to correctly.

psweep 0.16 itself (the dev extra) is the reference: helpers are called on both with
the same inputs, scripts run under both.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import functools
import io
import json
import math
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import psweep
import pytest

import pytest_psweep as ps
from tests.processes import git

# -- helpers: the same results as psweep's ----------------------------------------------


@pytest.mark.parametrize(
    "value",
    [[1, 2], (1,), range(3), np.arange(2), iter([1]), "ab", {"a": 1}, 1, None, io.StringIO()],
)
def test_is_seq_as_psweep(value):
    assert ps.is_seq(value) == psweep.is_seq(value)


def test_sequence_and_dict_helpers_as_psweep():
    nested = {"a": 1, "b": {"c": 2, "d": {23: 42}}}
    assert (
        ps.flatten_dict(nested) == psweep.flatten_dict(nested) == {"a": 1, "b_c": 2, "b_d_23": 42}
    )
    assert ps.flatten_dict(nested, join_str=".") == psweep.flatten_dict(nested, join_str=".")
    assert list(ps.flatten([1, [2, (3, [4])], "ab"])) == list(
        psweep.flatten([1, [2, (3, [4])], "ab"])
    )
    a, b = {"a": 1, "x": 1}, {"b": 2, "x": 2}
    for make in (lambda: [a, b], lambda: [[a, b]], lambda: [(d for d in (a, b))]):
        assert ps.merge_dicts(*make()) == psweep.merge_dicts(*make()) == {"a": 1, "x": 2, "b": 2}
    assert ps.merge_dicts(a) == psweep.merge_dicts(a) == a
    with pytest.raises(ValueError, match="overlap.*'x'"):
        ps.merge_dicts(a, b, allow_dup_keys=False)
    # what psweep raises there, for except clauses written for psweep (issue 25, 6)
    for misuse in (
        lambda: ps.merge_dicts(a, b, allow_dup_keys=False),
        lambda: ps.pgrid(ps.plist("a", [1]), ps.plist("a", [2])),
    ):
        with pytest.raises(AssertionError):
            misuse()
        with pytest.raises(ps.PsweepError):
            misuse()
    with pytest.raises(AssertionError):
        psweep.merge_dicts(a, b, allow_dup_keys=False)
    assert ps.merge_dicts(a, {"b": 1}, allow_dup_keys=False) == {"a": 1, "x": 1, "b": 1}

    @ps.itr
    def total(values):
        return sum(values)

    assert (total(1, 2, 3), total([1, 2]), total(5)) == (6, 3, 5)


@pytest.mark.parametrize(
    "args, kwargs",
    [((0, 10, 4), {}), ((0, 2, 10), {}), ((1, 1000), {"num": 7}), ((-5, 5, 11), {})],
)
def test_intspace_as_psweep(args, kwargs):
    ours = ps.intspace(*args, **kwargs)
    assert ours.tolist() == psweep.intspace(*args, **kwargs).tolist()
    assert ours.dtype == np.int64


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((1, 100, 3), {}),
        ((0, 2, 20), {"offset": 1e-3}),
        ((0, 2, 20), {"offset": 3}),
        ((1, 8, 4), {"base": 2, "log_func": np.log2}),
    ],
)
def test_logspace_as_psweep(args, kwargs):
    np.testing.assert_allclose(ps.logspace(*args, **kwargs), psweep.logspace(*args, **kwargs))


def test_logspace_refuses_a_base_its_log_does_not_match():
    with pytest.raises(ValueError, match="base=2"):
        ps.logspace(1, 8, 4, base=2)


def test_filter_cols_as_psweep():
    cols = ["a", "_pset_id", "result_", "b", "_x_"]
    for kind in ("pset", "pre", "prefix", "post", "postfix"):
        assert ps.filter_cols(cols, kind) == psweep.filter_cols(cols, kind), kind
    with pytest.raises(ValueError, match="kind='x'"):
        ps.filter_cols(cols, "x")


def test_files_uuids_and_shell(tmp_path, capsys):
    target = tmp_path / "new" / "deeper"
    ps.file_write(str(target / "t.txt"), "héllo")
    assert ps.file_read(str(target / "t.txt")) == "héllo"
    ps.pickle_write(str(target / "p.pk"), {"a": np.arange(3)})
    assert ps.pickle_read(str(target / "p.pk"))["a"].tolist() == [0, 1, 2]
    ps.json_write(str(tmp_path / "j" / "x.json"), {"a": [1, 2]})
    assert ps.json_read(str(tmp_path / "j" / "x.json")) == {"a": [1, 2]}
    assert json.loads((tmp_path / "j" / "x.json").read_text()) == {"a": [1, 2]}
    ps.makedirs("")  # psweep's no-op for the folder of a bare file name
    assert ps.fullpath("~/x") == os.path.join(os.path.expanduser("~"), "x")

    taken = [ps.get_uuid() for _ in range(3)]
    assert len(set(taken)) == 3 and ps.get_uuid(existing=taken) not in taken
    many = ps.get_many_uuids(50, existing=taken)
    assert len(set(many)) == 50 and not set(many) & set(taken)

    done = ps.system("echo out; echo err >&2")
    assert done.stdout.decode().split() == ["out", "err"]
    with pytest.raises(subprocess.CalledProcessError):
        ps.system("echo why; exit 3")
    assert "why" in capsys.readouterr().out


def test_filter_params_dup_hash_as_psweep():
    params = ps.plist("a", [1, 2, 3])
    done = [ps.pset_hash({"a": 2})]
    assert ps.filter_params_dup_hash(params, done) == [{"a": 1}, {"a": 3}]
    # a pset carrying its _pset_hash is taken by it
    assert ps.filter_params_dup_hash([{"a": 1, "_pset_hash": "h"}], ["h"]) == []


# -- DataFrame helpers ------------------------------------------------------------------


@pytest.fixture
def both_frames(tmp_path):
    """The same study run by psweep and by this package: (psweep's df, ours)."""
    params = ps.pgrid(ps.plist("a", [1, 2, 3]), ps.plist("b", ["x", "y"]))

    def func(pset):
        return {"result_": pset["a"] * 10, "c_": None if pset["a"] == 2 else 1.5}

    theirs = psweep.run(func, params, calc_dir=str(tmp_path / "theirs"))
    ours = ps.run(func, params, calc_dir=str(tmp_path / "ours"))
    return theirs, ours


def test_extract_helpers_as_psweep(both_frames):
    theirs, ours = both_frames
    assert ps.df_extract_params(ours) == psweep.df_extract_params(theirs)
    assert ps.df_extract_params(ours) == ps.pgrid(
        ps.plist("a", [1, 2, 3]), ps.plist("b", ["x", "y"])
    )
    pset_id = ours["_pset_id"].iloc[3]
    assert ps.df_extract_pset(ours, pset_id) == {"a": 2, "b": "y"}
    row = ps.df_extract_row(ours, pset_id)
    assert row["result_"] == 20 and row["_pset_id"] == pset_id
    assert set(ps.df_extract_row(ours, pset_id, kind="post")) == {"result_", "c_"}
    their_id = theirs["_pset_id"].iloc[3]
    assert ps.df_extract_pset(ours, pset_id) == psweep.df_extract_pset(theirs, their_id)
    with pytest.raises(ValueError, match="in 0 rows"):
        ps.df_extract_row(ours, "nope")
    dicts = ps.df_extract_dicts(ours[["a", "c_"]])
    assert dicts[0] == {"a": 1, "c_": 1.5} and math.isnan(dicts[2]["c_"])
    assert ps.df_extract_dicts(ours[["a"]], py_types=True)[0] == {"a": 1}


def test_filter_conds_and_print_as_psweep(both_frames, capsys):
    theirs, ours = both_frames
    for op in ("and", "or", "xor"):
        mine = ps.df_filter_conds(ours, [ours.a > 1, ours.b == "x"], op=op)
        ref = psweep.df_filter_conds(theirs, [theirs.a > 1, theirs.b == "x"], op=op)
        assert mine[["a", "b"]].values.tolist() == ref[["a", "b"]].values.tolist(), op
    assert len(ps.df_filter_conds(ours, [])) == 6
    with pytest.raises(ValueError, match="condition 0 has 2 values"):
        ps.df_filter_conds(ours, [[True, False]])

    frame = pd.DataFrame({"a": [1, 2], "b_": [3.5, 4.5], "_c": ["u", "v"]})
    for kwargs in (
        {},
        {"prefix_cols": True},
        {"index": True},
        {"cols": ["a"]},
        {"skip_cols": ["a"]},
    ):
        ps.df_print(frame, **kwargs)
        mine = capsys.readouterr().out
        psweep.df_print(frame, **kwargs)
        assert mine == capsys.readouterr().out, kwargs


def test_update_pset_cols_adds_columns_and_rehashes(both_frames):
    _, ours = both_frames
    updated = ps.df_update_pset_cols(ours, ["a", "b", "d"], copy=True)
    assert "d" not in ours and updated["d"].isna().all()
    # a column named in pset_cols is a parameter with the fill value, missing or not
    assert updated["_pset_hash"].tolist() == [
        ps.pset_hash({**p, "d": None}) for p in ps.df_extract_params(ours)
    ]
    for missing in (np.nan, pd.NA, None):
        filled = ps.df_update_pset_cols(ours, ["a", "b", "d"], fill_value=missing, copy=True)
        assert filled["_pset_hash"].tolist() == [
            ps.pset_hash({**p, "d": missing}) for p in ps.df_extract_params(ours)
        ], missing
    # and the hash of the rows as they now are stays theirs
    assert ps.df_update_pset_hash(updated, copy=True)["_pset_hash"].tolist() == (
        ours["_pset_hash"].tolist()
    )
    with pytest.raises(ValueError, match="'b'"):
        ps.df_update_pset_cols(ours, ["a"])
    filled = ps.df_update_pset_cols(ours, ["a", "b", "d"], fill_value=0, copy=True)
    assert filled["_pset_hash"].tolist() == [
        ps.pset_hash({**p, "d": 0}) for p in ps.df_extract_params(ours)
    ]


def test_ensure_dtypes_as_psweep():
    frame = pd.DataFrame({"a": [1.0, np.nan], "b": ["x", None], "c": [[1], [2]]})
    ours, theirs = ps.df_ensure_dtypes(frame), psweep.df_ensure_dtypes(frame.copy())
    assert all(dtype == "object" for dtype in ours.dtypes)
    assert ours["a"].tolist()[0] == 1.0 and ours["a"].tolist()[1] is pd.NA
    assert ours["c"].tolist() == [[1], [2]]  # not scalars: kept as they are
    assert ps.df_ensure_dtypes(frame, fill_value=-1)["a"].tolist() == [1.0, -1]
    for column in frame:
        assert [repr(v) for v in ours[column]] == [repr(v) for v in theirs[column]], column


def test_df_write_takes_psweeps_argument_order_and_pandas_options(tmp_path, both_frames):
    _, ours = both_frames
    ps.df_write(str(tmp_path / "psweep_order.pk"), ours)  # psweep: df_write(fn, df)
    assert ps.df_read(tmp_path / "psweep_order.pk").equals(ours)
    ps.df_write(str(tmp_path / "records.json"), ours[["a", "b"]], fmt="json", orient="records")
    assert json.loads((tmp_path / "records.json").read_text())[0] == {"a": 1, "b": "x"}
    back = ps.df_read(str(tmp_path / "records.json"), fmt="json", orient="records")
    assert back.values.tolist() == ours[["a", "b"]].values.tolist()
    assert ps.df_to_json(ours[["a"]].iloc[:1]) == '[{"a":1}]'
    # and psweep reads what this package wrote
    ps.df_write(ours, tmp_path / "ours.json", fmt="json", orient="split")
    assert psweep.df_read(str(tmp_path / "ours.json"), fmt="json", orient="split")[
        "a"
    ].tolist() == [1, 1, 2, 2, 3, 3]


# -- pset_hash: every value psweep takes ------------------------------------------------


class Colour(enum.Enum):
    RED = 1


@dataclasses.dataclass
class Setup:
    n: int
    tags: tuple[str, ...] = ()


class Plain:
    def __init__(self, x):
        self.x = x


def solver(x):
    return x


def test_pset_hash_takes_what_psweep_takes():
    h = ps.pset_hash
    utc = datetime.timezone.utc
    moment = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=utc)
    values = {
        "function": solver,
        "builtin": max,
        "class": Setup,
        "datetime": moment,
        "naive": moment.replace(tzinfo=None),
        "date": datetime.date(2024, 1, 2),
        "time": datetime.time(3, 4),
        "timedelta": datetime.timedelta(seconds=90),
        "none": None,
        "decimal": decimal.Decimal("0.1"),
        "enum": Colour.RED,
        "dataclass": Setup(3, ("a",)),
        "object": Plain([1, 2]),
    }
    digests = {name: h({"v": value}) for name, value in values.items()}
    assert len(set(digests.values())) == len(values), "each value hashes apart"
    # equal values hash alike; the missing values are one (a column stores whichever
    # its dtype holds: the pset read back hashes as it ran)
    for missing in (pd.NA, pd.NaT, math.nan, np.float32("nan"), complex(math.nan, 0)):
        assert h({"v": missing}) == digests["none"], missing
    assert h({"v": [math.nan, 1]}) == h({"v": [None, 1]}) != h({"v": [None, 2]})
    assert h({"v": pd.Timestamp(moment)}) == digests["datetime"]
    assert (
        h({"v": moment.astimezone(datetime.timezone(datetime.timedelta(hours=2)))})
        != digests["datetime"]
    )  # the same instant in another zone is written differently: kept apart
    assert h({"v": decimal.Decimal("0.5")}) == h({"v": 0.5})
    assert h({"v": decimal.Decimal("2")}) == h({"v": 2})
    assert h({"v": decimal.Decimal("0.1")}) != h({"v": 0.1})  # 0.1 is no float exactly
    assert h({"v": Setup(3, ("a",))}) == digests["dataclass"] != h({"v": Setup(4, ("a",))})
    assert h({"v": Plain([1, 2])}) == digests["object"] != h({"v": Plain([1, 3])})
    assert h({"v": {1: 2}}) != h({"v": {"1": 2}})
    with pytest.raises(ps.PsweepHashError, match="key 'v'.*cannot be pickled"):
        h({"v": threading.Lock()})
    assert math.isnan(h({"v": threading.Lock()}, raise_error=False))
    assert isinstance(ps.PsweepHashError("x"), TypeError)  # as psweep's


def test_pset_hash_takes_every_picklable_value_as_psweep_does():
    """numpy's ufuncs by name; anything else picklable by its pickle (issue 25, 1)."""
    h = ps.pset_hash
    assert h({"f": np.sin}) == h({"f": np.sin}) != h({"f": np.cos})
    assert h({"f": np.sin}) != h({"f": "numpy.sin"})
    bare = object()  # no attributes, no name: its pickle
    assert h({"v": bare}) == h({"v": object()})
    assert h({"v": functools.partial(max, 1)}) != h({"v": functools.partial(max, 2)})
    params = ps.plist("f", [np.sin, np.cos, solver])
    df = ps.run(lambda pset: {}, params, save=False)
    assert df["_pset_hash"].tolist() == [h(p) for p in params]


def test_pset_hash_of_functions_and_objects_is_stable_across_processes(tmp_path):
    (tmp_path / "things.py").write_text(
        textwrap.dedent(
            """
            import dataclasses

            def solver(x):
                return x

            @dataclasses.dataclass
            class Setup:
                n: int
            """
        )
    )
    code = (
        "import things, pytest_psweep as ps; "
        "print(ps.pset_hash({'f': things.solver, 's': things.Setup(2), 'c': things.Setup}))"
    )
    hashes = {
        subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
        ).stdout
        for _ in range(2)
    }
    assert len(hashes) == 1


def test_postfix_keys_are_results_as_in_psweep():
    assert ps.pset_hash({"a": 1, "result_": 2}) == ps.pset_hash({"a": 1})
    assert ps.pset_hash({"a": 1, "result_": 2}, skip_postfix_cols=False) != ps.pset_hash({"a": 1})
    assert ps.pset_hash({"a": 1, "_x": 2}, skip_prefix_cols=False) != ps.pset_hash({"a": 1})


# -- run(): psweep 0.16's keywords -----------------------------------------------------


def noisy(pset):
    print(f"a is {pset['a']}")
    print("careful", file=sys.stderr)
    return {"r": pset["a"]}


@pytest.mark.parametrize("mode", ["db", "file", "db+file"])
def test_capture_logs(in_tmp, mode, capsys):
    df = ps.run(noisy, ps.plist("a", [1, 2]), capture_logs=mode)
    assert capsys.readouterr().out == ""  # all captured
    for pset_id, a in zip(df["_pset_id"], df["a"]):
        text = f"a is {a}\ncareful\n"
        log = in_tmp / "calc" / pset_id / "logs.txt"
        assert ("_logs" in df) == ("db" in mode)
        if "db" in mode:
            assert df.loc[df["_pset_id"] == pset_id, "_logs"].item() == text
        assert log.exists() == ("file" in mode)
        if "file" in mode:
            assert log.read_text() == text
    with pytest.raises(ps.PsweepError, match="capture_logs='yes'"):
        ps.run(noisy, ps.plist("a", [1]), capture_logs="yes")


def test_backup_is_backup_calc_dir(in_tmp):
    ps.run(noisy, ps.plist("a", [1]))
    ps.run(noisy, ps.plist("a", [2]), backup=True)
    (copy,) = in_tmp.glob("calc_*")
    assert len(ps.df_read(copy / "results.pk")) == 1


def test_fill_value_fills_the_returned_frame_not_the_database(in_tmp):
    ps.run(lambda pset: {"r": 1} if pset["a"] == 1 else {}, ps.plist("a", [1, 2]))
    df = ps.run(lambda pset: {"r": pset["b"]}, ps.plist("b", [3]), fill_value=-1)
    assert df["r"].tolist() == [1, -1, 3]
    assert df["b"].tolist() == [-1, -1, 3]
    stored = ps.df_read("calc/results.pk")
    assert stored["b"].isna().sum() == 2


def test_git_checks_records_and_commits(in_tmp):
    with pytest.raises(ps.PsweepError, match="in no git repository"):
        ps.run(noisy, ps.plist("a", [1]), git=True)
    assert not (in_tmp / "calc" / "results.pk").exists()
    git(in_tmp, "init", "-q")
    (in_tmp / "study.py").write_text("x = 1\n")
    git(in_tmp, "add", "study.py")
    git(in_tmp, "commit", "-qm", "study")
    head = git(in_tmp, "rev-parse", "HEAD")
    (in_tmp / "study.py").write_text("x = 2\n")
    with pytest.raises(ps.PsweepError, match="uncommitted changes"):
        ps.run(noisy, ps.plist("a", [1]), git=True)
    git(in_tmp, "commit", "-qam", "x=2")
    head = git(in_tmp, "rev-parse", "HEAD")
    df = ps.run(noisy, ps.plist("a", [1, 2]), git=True)
    assert df["_git_commit"].tolist() == [head, head]
    assert "pandas=" in df["_versions"].iloc[0]
    assert (
        git(in_tmp, "log", "-1", "--format=%s") == f"psweep: calc: run_id={df['_run_id'].iloc[0]}"
    )
    assert "calc/results.pk" in git(in_tmp, "show", "--name-only", "--format=")
    assert git(in_tmp, "status", "--porcelain") == ""


def test_tmpsave_writes_rows_as_psweep_does(in_tmp):
    df = ps.run(noisy, ps.plist("a", [1]), tmpsave=True)
    row = df.iloc[0]
    saved = ps.pickle_read(f"calc/tmpsave/{row['_run_id']}/{row['_pset_id']}.pk")
    assert isinstance(saved, dict) and saved["r"] == 1 and saved["_pset_id"] == row["_pset_id"]
    assert saved["_time_utc"] == row["_time_utc"] and str(saved["_time_utc"].tz) == "UTC"


def test_simulate_on_a_fresh_calc_dir_makes_only_the_simulate_copy(in_tmp):
    df = ps.run(noisy, ps.plist("a", [1, 2]), simulate=True)
    assert len(df) == 2 and "r" not in df
    assert sorted(p.name for p in in_tmp.iterdir()) == ["calc.simulate"]


def test_database_basename_names_the_one_database(in_tmp):
    df = ps.run(noisy, ps.plist("a", [1]), database_basename="database.pk")
    assert len(ps.df_read("calc/results.pk")) == len(df) == 1
    with pytest.raises(ps.PsweepError, match="always results.pk"):
        ps.run(noisy, ps.plist("a", [1]), database_basename="other.pk")


def test_something_that_is_no_dask_client_is_refused_clearly(in_tmp):
    with pytest.raises(ps.PsweepError, match="dask_client"):
        ps.run(noisy, ps.plist("a", [1]), dask_client=object())


# -- psweep scripts: the same rows under both ------------------------------------------

SCRIPTS = {
    "grid_twice": """
        import numpy as np
        import {module} as ps

        def func(pset):
            return {{"result_": pset["a"] * pset["b"], "arr": np.arange(pset["a"])}}

        params = ps.pgrid(ps.plist("a", [1, 2, 3]), ps.plist("b", [0.5, 2.0]))
        ps.run(func, params)
        ps.run(func, ps.pgrid([ps.plist("a", [4]), ps.plist("b", [0.5])]))
    """,
    "star_and_skip": """
        import {module} as ps

        def func(pset):
            return {{"y_": pset["x"] ** 2 + pset["z"]}}

        const = {{"x": 1.0, "z": 0}}
        # numbers of one type: psweep's hash tells np.float64(1.0) from 1.0, ours
        # does not (README "Coming from psweep")
        params = ps.stargrid(
            const, [ps.plist("x", [1.0, 10.0, 100.0]), ps.plist("z", [0, 2, 4])],
            vary_labels=["x", "z"],
        )
        df = ps.run(func, params)
        more = params + ps.plist("x", [7.0])
        ps.run(func, [ps.merge_dicts(const, p) for p in more], skip_dups=True)
    """,
    "logs": """
        import {module} as ps

        def func(pset):
            print("n =", pset["n"])
            return {{"sq_": pset["n"] ** 2}}

        ps.run(func, ps.plist("n", [1, 2]), capture_logs="db")
    """,
    # psweep's examples, in this project's words: repeat what failed (df=, a study
    # column, capture_logs), files under each pset's folder, batch templates
    "repeat_failed": """
        import traceback
        from functools import partial
        import {module} as ps

        def safe(pset, *, func):
            out = {{}}
            try:
                out.update(func(pset))
                out.update(_failed=False, _exc_txt=None)
            except Exception:
                print("failed")
                out.update(_failed=True, _exc_txt=traceback.format_exc().splitlines()[-1])
            return out

        def flaky(pset):
            if pset["a"] % 2 == 0:
                raise ValueError("even")
            return {{"result_": pset["a"] * 1.5}}

        def fixed(pset):
            return {{"result_": pset["a"] * 1.5}}

        params = ps.pgrid(ps.plist("a", list(range(6))), [{{"study": "repeat"}}])
        df = ps.run(partial(safe, func=flaky), params, capture_logs="db", save=False)
        cols = [c for c in df.columns if not (c.startswith("_") or c.endswith("_"))]
        again = [row.to_dict() for _, row in df[df._failed.astype(bool)][cols].iterrows()]
        df = ps.run(partial(safe, func=fixed), again, capture_logs="db", df=df)
        latest = df[df._run_seq == 1]
        assert latest.a.tolist() == [0, 2, 4], latest.a.tolist()
        first = df[(df._run_seq == 0) & df._failed.astype(bool)]
        assert latest._pset_hash.tolist() == first._pset_hash.tolist()
    """,
    "files_per_pset": """
        import os
        import subprocess
        import {module} as ps

        def func(pset):
            path = os.path.join(pset["_calc_dir"], pset["_pset_id"], "output.txt")
            subprocess.run(
                f"mkdir -p $(dirname {{path}}); echo {{pset['a']}} {{pset['a'] * 2}} > {{path}}",
                shell=True,
                check=True,
            )
            with open(path) as fh:
                return {{"total_": sum(map(int, fh.read().split()))}}

        ps.run(func, ps.plist("a", [1, 2, 3]))
    """,
    "batch": """
        import os
        import {module} as ps

        for name, text in {{
            "calc/input.txt": "a={{{{a}}}} b={{{{b}}}}",
            "machines/local/info.yaml": "subcmd: sh",
            "machines/local/jobscript": "cat input.txt > out.txt",
        }}.items():
            os.makedirs(os.path.dirname(f"templates/{{name}}"), exist_ok=True)
            ps.file_write(f"templates/{{name}}", text)
        ps.prep_batch(ps.pgrid(ps.plist("a", [1, 2]), ps.plist("b", ["x"])), write_pset=True)
        ps.prep_batch(ps.pgrid(ps.plist("a", [3]), ps.plist("b", ["y"])))
        assert os.system("sh calc/run_local.sh") == 0
    """,
}


def _run_script(folder: Path, source: str) -> None:
    folder.mkdir()
    (folder / "study.py").write_text(textwrap.dedent(source))
    subprocess.run([sys.executable, "study.py"], cwd=folder, check=True, capture_output=True)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_psweep_scripts_write_the_same_rows(tmp_path, name):
    _run_script(tmp_path / "psweep", SCRIPTS[name].format(module="psweep"))
    _run_script(tmp_path / "ours", SCRIPTS[name].format(module="pytest_psweep"))
    theirs = ps.df_read(tmp_path / "psweep" / "calc" / "database.pk")
    ours = ps.df_read(tmp_path / "ours" / "calc" / "results.pk")
    assert set(theirs.columns) <= set(ours.columns)  # book-keeping by name, and more
    values = sorted(c for c in theirs.columns if not c.startswith("_")) + ["_run_seq"]
    if "_logs" in theirs:
        values.append("_logs")

    def plain(value):
        if hasattr(value, "tolist"):
            return value.tolist()
        # a missing result: NaN in our float column, pd.NA in psweep's object one
        # (README "Coming from psweep": numeric columns keep numeric dtypes)
        return None if value is None or value is pd.NA or value != value else value

    def rows(df):
        return sorted(
            repr([plain(v) for v in row])
            for row in df[values].astype(object).itertuples(index=False, name=None)
        )

    assert rows(ours) == rows(theirs)
    assert ours["_pset_seq"].tolist() == list(range(len(ours)))


# -- psweep calc dirs: refused, then migrated --------------------------------------------


def square(pset):
    return {"y_": pset["a"] ** 2}


@pytest.fixture
def psweep_calc(tmp_path):
    """A calc dir psweep 0.16 wrote: two runs, database.pk; results named as psweep's
    convention has them (``y_``)."""
    calc = tmp_path / "calc"
    psweep.run(square, ps.plist("a", [1, 2]), calc_dir=str(calc))
    psweep.run(square, ps.plist("a", [3]), calc_dir=str(calc))
    return calc


def psweep_04_database(calc: Path) -> pd.DataFrame:
    """As psweep 0.4 wrote results.pk: naive _time_utc, no counters, a RangeIndex."""
    calc.mkdir()
    df = pd.DataFrame(
        {
            "a": [1, 2, 3],
            "y": [1, 4, 9],
            "_run_id": ["r0", "r0", "r1"],
            "_pset_id": ["p0", "p1", "p2"],
            "_pset_hash": ["x", "y", "z"],
            "_calc_dir": ["calc"] * 3,
            "_time_utc": pd.to_datetime(
                ["2019-05-01 10:00:00", "2019-05-01 10:00:01", "2019-06-01 08:00:00"]
            ),
        }
    )
    df.to_pickle(calc / "results.pk")
    return df


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_psweep.cli", *args], cwd=cwd, capture_output=True, text=True
    )


def test_a_psweep_calc_dir_is_refused_before_anything_runs(psweep_calc):
    before = (psweep_calc / "database.pk").read_bytes()
    called = []
    with pytest.raises(ps.PsweepError, match=f"psweep migrate {psweep_calc}"):
        ps.run(lambda pset: called.append(pset), ps.plist("a", [9]), calc_dir=str(psweep_calc))
    assert called == []
    assert (psweep_calc / "database.pk").read_bytes() == before
    assert not (psweep_calc / "results.pk").exists()


def test_pytest_refuses_a_psweep_calc_dir(pytester):
    psweep.run(square, ps.plist("a", [1]), calc_dir=str(pytester.path / "calc"))
    pytester.makepyfile(
        sweep_a="""
        import pytest_psweep as ps

        @ps.sweep(ps.plist("a", [1, 2]))
        def sweep_a(pset):
            return {"y": pset["a"]}
        """
    )
    result = pytester.runpytest_subprocess("--psweep")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*database that psweep wrote*psweep migrate */calc*"])
    assert not (pytester.path / "calc" / "results.pk").exists()


def test_migrate_a_psweep_016_calc_dir(psweep_calc):
    old = ps.df_read(psweep_calc / "database.pk")
    done = cli("migrate", str(psweep_calc), cwd=psweep_calc.parent)
    assert done.returncode == 0, done.stderr
    assert "migrated 3 rows" in done.stdout
    assert not (psweep_calc / "database.pk").exists()
    (backup,) = psweep_calc.parent.glob("calc_*")
    assert ps.df_read(backup / "database.pk").equals(old)

    new = ps.df_read(psweep_calc / "results.pk")
    assert new["a"].tolist() == [1, 2, 3] and new["y_"].tolist() == [1, 4, 9]
    assert new["_pset_id"].tolist() == old["_pset_id"].tolist()
    assert new["_pset_seq"].tolist() == [0, 1, 2] and new["_run_seq"].tolist() == [0, 0, 1]
    assert new["_pset_seq"].dtype == np.int64
    assert (
        new["_time_utc"].tolist() == pd.to_datetime(old["_time_utc"]).dt.tz_localize("UTC").tolist()
    )
    assert new["_pset_hash"].tolist() == [ps.pset_hash({"a": a}) for a in (1, 2, 3)]
    assert new["_psweep_pset_hash"].tolist() == old["_pset_hash"].tolist()

    # idempotent
    again = cli("migrate", str(psweep_calc), cwd=psweep_calc.parent)
    assert again.returncode == 0 and "nothing to migrate" in again.stdout
    # and now appended to: what psweep ran is skipped
    df = ps.run(square, ps.plist("a", [2, 3, 4]), calc_dir=str(psweep_calc), skip_dups=True)
    assert df["a"].tolist() == [1, 2, 3, 4]
    assert df["_pset_seq"].tolist() == [0, 1, 2, 3] and df["_run_seq"].tolist() == [0, 0, 1, 2]
    assert df["_time_utc"].dt.tz is not None


def test_migrate_a_psweep_04_results_pk(tmp_path):
    calc = tmp_path / "calc"
    old = psweep_04_database(calc)
    with pytest.raises(ps.PsweepError, match="no time zone.*psweep migrate"):
        ps.run(square, ps.plist("a", [4]), calc_dir=str(calc))
    # y is a result without psweep's "_" suffix: name the parameters
    assert "'b'" in cli("migrate", "calc", "--params", "a", "b", cwd=tmp_path).stderr
    done = cli("migrate", "calc", "--params", "a", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "naive" in done.stdout or "time zone" in done.stdout
    new = ps.df_read(calc / "results.pk")
    assert new["_pset_seq"].tolist() == [0, 1, 2] and new["_run_seq"].tolist() == [0, 0, 1]
    assert new.index.tolist() == new["_time_utc"].tolist()
    assert new["_time_utc"].dt.tz_convert(None).tolist() == old["_time_utc"].tolist()
    df = ps.run(square, ps.plist("a", [3, 4]), calc_dir=str(calc), skip_dups=True)
    assert df["a"].tolist() == [1, 2, 3, 4] and df["_run_seq"].tolist() == [0, 0, 1, 2]


def test_migrate_never_leaves_a_half_converted_calc_dir(psweep_calc):
    before = (psweep_calc / "database.pk").read_bytes()
    (psweep_calc / "results.pk").mkdir()  # the final rename cannot replace a folder
    done = cli("migrate", str(psweep_calc), cwd=psweep_calc.parent)
    assert done.returncode == 1 and "results.pk cannot be read" in done.stderr
    assert (psweep_calc / "database.pk").read_bytes() == before
    (psweep_calc / "results.pk").rmdir()
    # a migration that stopped after writing results.pk finishes by removing database.pk
    assert cli("migrate", str(psweep_calc), cwd=psweep_calc.parent).returncode == 0
    (psweep_calc / "database.pk").write_bytes(before)
    done = cli("migrate", str(psweep_calc), cwd=psweep_calc.parent)
    assert done.returncode == 0 and not (psweep_calc / "database.pk").exists()


def command(name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """This package's psweep-db2json / psweep-db2table. Not by their names on PATH:
    psweep installs scripts of the same names, and the last package installed wins
    (both read either database)."""
    function = name.replace("psweep-", "")
    code = f"import sys; from pytest_psweep.cli import {function}; sys.exit({function}())"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=check
    )


def test_psweep_commands_are_installed():
    from importlib.metadata import entry_points

    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts["psweep-db2json"] == "pytest_psweep.cli:db2json"
    assert scripts["psweep-db2table"] == "pytest_psweep.cli:db2table"


def test_psweep_commands_db2json_and_db2table(psweep_calc):
    for calc in (psweep_calc, psweep_calc.parent / "ours"):
        if calc.name == "ours":
            ps.run(square, ps.plist("a", [1, 2, 3]), calc_dir=str(calc))
        shown = command("psweep-db2json", str(calc)).stdout
        assert [row["y_"] for row in json.loads(shown)] == [1, 4, 9]
        assert json.loads(shown)[0]["_time_utc"].startswith("20")
        columns = json.loads(command("psweep-db2json", "-o", "columns", str(calc)).stdout)
        assert list(columns["a"].values()) == [1, 2, 3]
        table = command("psweep-db2table", "-f", "plain", str(calc), "a", "y_").stdout.split()
        assert table == ["a", "y_", "1", "1", "2", "4", "3", "9"]
        assert "_pset_id" in command("psweep-db2table", "-a", str(calc)).stdout
    done = command("psweep-db2table", str(psweep_calc), "nope", check=False)
    assert done.returncode == 1 and "no column 'nope'" in done.stderr


# -- run(df=...) and backups, as psweep's ------------------------------------------------


def test_run_df_is_the_database_to_extend(in_tmp, capsys):
    """issue 25 item 4: the returned and the written database are df plus the new rows."""
    first = ps.run(square, ps.plist("a", [1, 2]), save=False)
    assert not (in_tmp / "calc").exists()
    both = ps.run(square, ps.plist("a", [3]), df=first)
    on_disk = ps.df_read("calc/results.pk")
    assert both["a"].tolist() == on_disk["a"].tolist() == [1, 2, 3]
    assert on_disk["_pset_seq"].tolist() == [0, 1, 2]
    assert on_disk["_pset_id"].tolist() == both["_pset_id"].tolist()
    assert not list(in_tmp.glob("calc_*"))  # nothing the file had was left out
    # a df without the file's rows: those are kept in a backup, and it says where
    fresh = ps.run(square, ps.plist("a", [7]), df=pd.DataFrame())
    assert fresh["a"].tolist() == ps.df_read("calc/results.pk")["a"].tolist() == [7]
    (kept,) = in_tmp.glob("calc_*")
    assert ps.df_read(kept / "results.pk")["a"].tolist() == [1, 2, 3, 7]  # as it was
    assert f"kept in {kept.name}" in capsys.readouterr().err.replace(str(in_tmp) + "/", "")


def _with_a_link(pset):
    folder = Path(pset["_calc_dir"]) / pset["_pset_id"]
    folder.mkdir(parents=True)
    (folder / "data").write_text("x")
    (folder / "link").symlink_to(folder / "data")
    (folder / "dangling").symlink_to(folder / "nowhere")
    return {"y_": 1}


def test_backup_keeps_symlinks_as_symlinks(in_tmp):
    """issue 25 item 5."""
    df = ps.run(_with_a_link, ps.plist("a", [1]))
    ps.run(_with_a_link, ps.plist("a", [2]), backup=True)
    (kept,) = in_tmp.glob("calc_*")
    folder = kept / df["_pset_id"].iloc[0]
    assert (folder / "link").is_symlink() and (folder / "dangling").is_symlink()
    assert (folder / "data").read_text() == "x"


def test_extract_row_gives_what_extract_dicts_gives(in_tmp):
    """The same value types from both, whatever the column dtypes (a complex column
    with a missing value: numpy's complex128 from one, Python's complex from the
    other before)."""
    df = ps.run(lambda pset: {}, ps.plist("a", [1.5, None, complex(1, 2)]), save=False)
    for row in ps.df_extract_dicts(df):
        theirs = ps.df_extract_row(df, row["_pset_id"])
        assert [type(v) for v in theirs.values()] == [type(v) for v in row.values()]
        assert ps.pset_hash(theirs) == row["_pset_hash"]
