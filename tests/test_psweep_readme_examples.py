"""psweep's README workflows, run with ``ps.run`` as a psweep user would write them."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import numpy as np
import pytest

import pytest_psweep as ps


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def func(pset):
    return {"result": random.random() * pset["a"] * pset.get("b", 1)}


def test_getting_started_grid():
    params = ps.pgrid(ps.plist("a", [1, 2, 3]), ps.plist("b", [88, 99]))
    df = ps.run(func, params)
    assert df[["a", "b"]].values.tolist() == [[1, 88], [1, 99], [2, 88], [2, 99], [3, 88], [3, 99]]
    assert (df["result"] <= df["a"] * df["b"]).all()
    assert Path("calc/results.pk").exists()


def test_vary_1_param():
    df = ps.run(func, ps.plist("a", [1, 2, 3]))
    assert list(df["a"]) == [1, 2, 3]


def test_repeat_same_params_gives_two_run_ids_and_same_hashes():
    params = ps.plist("a", [1, 2, 3])
    ps.run(func, params)
    df = ps.run(func, params)
    assert df["_run_id"].nunique() == 2
    first, second = (group for _, group in df.groupby("_run_seq"))
    assert list(first["_pset_hash"]) == list(second["_pset_hash"])
    assert set(first["_pset_id"]).isdisjoint(second["_pset_id"])


def test_save_data_on_disk_under_pset_id():
    def write_output(pset):
        fn = os.path.join(pset["_calc_dir"], pset["_pset_id"], "output.txt")
        cmd = f"mkdir -p $(dirname {fn}); echo {pset['a']} {pset['a'] * 2} {pset['a'] * 4} > {fn}"
        subprocess.run(cmd, shell=True, check=True)
        return {"cmd": cmd}

    df = ps.run(write_output, ps.plist("a", [1, 2, 3, 4]))
    means = [np.loadtxt(f"calc/{pset_id}/output.txt").mean() for pset_id in df["_pset_id"]]
    assert means == [a * 7 / 3 for a in (1, 2, 3, 4)]


def test_simulate_then_real_run():
    ps.run(func, ps.plist("a", [1, 2]))
    sim = ps.run(func, ps.plist("a", [3, 4]), simulate=True)
    assert sim["result"].iloc[2:].isna().all()  # func was not called
    assert len(ps.df_read("calc/results.pk")) == 2
    real = ps.run(func, ps.plist("a", [3, 4]))
    assert list(real["a"]) == [1, 2, 3, 4]


def test_study_column_for_post_processing():
    ps.run(func, ps.pgrid(ps.plist("a", [1, 2]), ps.plist("study", ["scan=a"])))
    df = ps.run(
        func, ps.pgrid(ps.plist("b", [3, 4]), ps.plist("a", [1]), ps.plist("study", ["scan=b"]))
    )
    assert list(df[df.study == "scan=b"]["b"]) == [3, 4]
    cols = "scan=a".split("=")[1].split(":")
    assert df[df.study == "scan=a"][cols].values.ravel().tolist() == [1, 2]


def test_multiple_1d_scans_extended_with_backups():
    const = {"a": 1, "b": 10}
    ps.run(func, ps.stargrid(const, [ps.plist("a", [1, 2])], vary_labels=["a"]))
    ps.run(
        func, ps.stargrid(const, [ps.plist("b", [10, 20])], vary_labels=["b"]), backup_calc_dir=True
    )
    df = ps.run(
        func, ps.stargrid(const, [ps.plist("a", [3])], vary_labels=["a"]), backup_calc_dir=True
    )
    assert list(df["_vary"]) == ["a", "a", "b", "b", "a"]
    backups = sorted(p for p in os.listdir() if p.startswith("calc_"))
    assert [len(ps.df_read(f"{b}/results.pk")) for b in backups] == [2, 4]
