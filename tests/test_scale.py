"""Scale: many psets through the whole plugin path (slow; CI runs it all the same).

5000 psets: more than the writer's chunk of rows kept as objects (gather._CHUNK,
4096) and than the distinct strings of a column before it counts as one of ids
(gather._DISTINCT), so every path a big run takes is taken; the time and memory of
10k and 100k psets are benchmarks (benchmarks/bench_plugin.py), not this test."""

from __future__ import annotations

import pytest

N = 5_000


@pytest.mark.slow
@pytest.mark.long
def test_many_psets_in_parallel_all_land_once(pytester, read_db):
    pytester.makepyfile(
        sweep_many=f"""
        import pytest_psweep as ps

        @ps.sweep(ps.grid(a=range({N})))
        def sweep_many(pset):
            return {{"r": pset["a"] * 2}}
    """
    )
    result = pytester.runpytest_subprocess("--psweep", "-n", "2", "-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=N)
    df = read_db()
    assert len(df) == N
    assert sorted(df["a"]) == list(range(N))
    assert (df["r"] == df["a"] * 2).all()
    assert list(df["_pset_seq"]) == list(range(N))
    assert df["_pset_id"].is_unique and df["_run_id"].nunique() == 1
