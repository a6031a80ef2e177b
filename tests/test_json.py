"""Every JSON file the package writes round-trips floats exactly (SPEC §3): df_write,
psweep export and the baselines of --psweep-compare."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import pandas as hpd

import pytest_psweep as ps

EDGE_FLOATS = [1.2345678912345e-12, math.pi, -0.0, 5e-324, 1e300, math.nan, math.inf, -math.inf]


def round_trip(df: pd.DataFrame, tmp_path) -> pd.DataFrame:
    path = tmp_path / "db.json"
    ps.df_write(df, path, fmt="json")
    return ps.df_read(path, fmt="json")


def assert_same(back: pd.DataFrame, df: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(back, df, check_exact=True)
    for column in df.select_dtypes("float"):  # -0.0 == 0.0, but its sign is kept too
        assert list(np.signbit(back[column])) == list(np.signbit(df[column]))


def test_the_floats_that_were_lost_come_back_exactly(tmp_path):
    df = pd.DataFrame({"x": EDGE_FLOATS, "zero": [0.0] * len(EDGE_FLOATS)})
    back = round_trip(df, tmp_path)
    assert_same(back, df)
    assert back["zero"].dtype == np.float64  # whole numbers stay a float column
    text = (tmp_path / "db.json").read_text()
    json.loads(text)  # standard JSON: no NaN or Infinity tokens
    assert "NaN" not in text and '"Infinity"' in text


def test_a_database_round_trips_with_its_time_index(tmp_path):
    df = ps.run(
        lambda p: {"r": p["a"] / 3, "tiny": p["a"] * 1.2345678912345e-12},
        ps.plist("a", [1, 2, 3]),
        calc_dir=str(tmp_path / "calc"),
    )
    back = round_trip(df, tmp_path)
    assert_same(back, df)
    assert back.index.equals(df.index) and back["_time_utc"].dtype == df["_time_utc"].dtype


def test_psweep_export_writes_the_same_exact_json(tmp_path):
    df = pd.DataFrame({"x": EDGE_FLOATS})
    ps.df_write(df, tmp_path / "db.pk")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_psweep.cli",
            "export",
            str(tmp_path / "db.pk"),
            str(tmp_path / "out.json"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert_same(ps.df_read(tmp_path / "out.json", fmt="json"), df)


@settings(max_examples=40, deadline=None)
@given(
    hpd.data_frames(
        [
            hpd.column("f", dtype=float, elements=st.floats(allow_nan=True, allow_infinity=True)),
            hpd.column("i", dtype=np.int64, elements=st.integers(-(2**63), 2**63 - 1)),
            hpd.column("b", dtype=bool),
            hpd.column("s", elements=st.text(max_size=8)),
            hpd.column("o", elements=st.one_of(st.none(), st.integers(), st.text(max_size=3))),
        ]
    )
)
def test_random_frames_round_trip_exactly(tmp_path_factory, df):
    assert_same(round_trip(df, tmp_path_factory.mktemp("json")), df)
