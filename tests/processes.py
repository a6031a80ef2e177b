"""Starting, stopping and waiting for real processes: pytest sessions and scripts that
the fault tests interrupt. One place, so every test kills and reaps the same way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def wait_for(path: Path, timeout: float = 60.0) -> None:
    """Wait until a marker file that a pset writes exists."""
    end = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < end, f"{path} did not appear within {timeout} s"
        time.sleep(0.05)


def start_session(
    pytester: Any, *args: str, output: bool = False, **popen: Any
) -> subprocess.Popen[Any]:
    """A ``pytest --psweep`` session in the background, in pytester's folder.

    Its output goes nowhere unless ``output`` (then read ``proc.stdout``): a pipe
    nobody reads would block a chatty session. ``popen``: more of Popen's arguments.
    """
    command = [sys.executable, "-m", "pytest", "--psweep", "-p", "no:cacheprovider", *args]
    if not output:
        popen.update(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return pytester.popen(command, **popen)  # type: ignore[no-any-return]


def start_script(*argv: str) -> subprocess.Popen[str]:
    """A Python script in the background whose printed lines the test reads."""
    return subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE, text=True)


def wait_for_line(proc: subprocess.Popen[str], line: str) -> None:
    """Read the process's output up to a line it prints when it is ready."""
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == line


def stop(proc: subprocess.Popen[Any], sig: int = signal.SIGKILL, timeout: float = 60) -> int:
    """Send a signal, reap the process, close its pipes; its exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
    code = proc.wait(timeout=timeout)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    return code


def kill_group(proc: subprocess.Popen[Any], sig: int = signal.SIGINT) -> None:
    """Send a signal to the process's whole group, as a terminal's Ctrl-C does."""
    os.killpg(os.getpgid(proc.pid), sig)
