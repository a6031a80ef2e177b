"""``psweep merge`` of many rows in memory a small multiple of the database it writes
(issue 26; ``benchmarks/bench_shards.py merge`` measures it at a million rows)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def benchmark() -> Any:
    """benchmarks/bench_shards.py: its shard files, its measure of a process."""
    spec = importlib.util.spec_from_file_location(
        "bench_shards", ROOT / "benchmarks/bench_shards.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SHARDS, ROWS = 20, 10_000  # files as the benchmark makes them, a fifth of them


@pytest.mark.slow
def test_merge_peak_beyond_pandas_is_under_three_times_the_database(tmp_path: Path) -> None:
    """Beyond what Python with pandas takes before the first row (measured in a
    process of its own), the merge of 200k rows stays under 2.75 times the
    ``results.pk`` it writes (3.2 before pickling streamed object columns and freed
    memory was given back, 2.5 after)."""
    bench_shards = benchmark()
    calc = bench_shards.make_shards(tmp_path, SHARDS, ROWS)
    imports = "import numpy, pandas, pytest_psweep.cli, pytest_psweep.merge"
    _, base = bench_shards.timed([sys.executable, "-c", imports], tmp_path)
    command = [sys.executable, "-m", "pytest_psweep.cli", "merge", str(calc)]
    _, peak = bench_shards.timed(command, tmp_path)
    database = (calc / "results.pk").stat().st_size / 2**20
    assert not list((calc / "shards").glob("*.shard"))  # every file merged
    assert (peak - base) / database < 2.75, (peak, base, database)
