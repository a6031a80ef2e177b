"""The wire record (``pytest_psweep.wire``) through pytest's own report
serialization and execnet's, as xdist sends it: with the pytest installed here, and
in a fresh virtual environment with the oldest pytest the package supports."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_psweep.wire import PsetRecord, SweepCount, attach_counts, take_counts

ROOT = Path(__file__).resolve().parents[1]
OLDEST_PYTEST = "8.3.0"  # pyproject.toml: pytest>=8.3

# what the check runs, here and in the oldest pytest's environment
ROUND_TRIP = textwrap.dedent(
    """
    import execnet.gateway_base as base
    import pytest
    from _pytest.reports import TestReport
    from pytest_psweep.wire import PsetRecord, SweepCount, attach_counts, take_counts

    record = PsetRecord(
        "sweep_a.py::sweep_a", "h" * 40, "", "passed", "id-1", b"\\x00PSWJ\\xff",
        None, "differs", (("err", 0.5, None),),
    )
    counts = [SweepCount("sweep_a.py::sweep_a", "sweep_a.py", 10, 2, None, "/abs/own")]
    report = TestReport("sweep_a.py::sweep_a[a=1]", ("sweep_a.py", 1, "sweep_a"), {},
                        "passed", None, "call", [])
    record.attach(report)
    attach_counts(report, counts)
    # what xdist does: pytest's serializable form, through execnet's serializer
    from _pytest.reports import _report_to_json, _report_kwargs_from_json
    data = base.loads_internal(base.dumps_internal(_report_to_json(report)))
    back = TestReport(**_report_kwargs_from_json(data))
    assert PsetRecord.take(back) == record, "record"
    assert take_counts(back) == counts, "counts"
    assert PsetRecord.take(back) is None and take_counts(back) is None, "taken once"
    print("round trip ok with pytest", pytest.__version__)
    """
)


def test_the_record_crosses_pytest_and_execnet_serialization():
    pytest.importorskip("execnet")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", ROUND_TRIP], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "round trip ok" in done.stdout


def test_a_record_is_taken_off_its_report():
    report = pytest.TestReport("x", ("x.py", 0, "x"), {}, "passed", None, "call", [])
    record = PsetRecord("s", "d", "c", "started", "p", b"", None)
    record.attach(report)
    assert PsetRecord.take(report) == record
    assert not hasattr(report, "psweep_record")
    attach_counts(report, [SweepCount("s", "m", 1, 1, 3, None)])
    assert take_counts(report) == [SweepCount("s", "m", 1, 1, 3, None)]
    assert PsetRecord.take(report) is None


def test_the_record_crosses_with_the_oldest_supported_pytest(tmp_path):
    """A fresh venv with pytest==8.3.0 (the lower bound in pyproject.toml) and execnet
    from PyPI; without PyPI this skips locally and fails in CI."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"pytest=={OLDEST_PYTEST}", "execnet"],
        capture_output=True,
        text=True,
    )
    if install.returncode != 0:
        reason = f"pip cannot install pytest=={OLDEST_PYTEST}: {install.stderr[-300:]}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([str(python), "-c", ROUND_TRIP], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert f"round trip ok with pytest {OLDEST_PYTEST}" in done.stdout
