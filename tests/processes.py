"""Starting, stopping and waiting for real processes: pytest sessions and scripts that
the fault tests interrupt. One place, so every test kills and reaps the same way."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_psweep import cli, journal

# a ``pytest --psweep`` session as the tests start one: ``[*SESSION, *args]``
SESSION = (sys.executable, "-m", "pytest", "--psweep", "-p", "no:cacheprovider")


def wait_for(path: Path, timeout: float = 60.0) -> None:
    """Wait until a marker file that a pset writes exists."""
    end = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < end, f"{path} did not appear within {timeout} s"
        time.sleep(0.05)


def wait_for_marks(folder: Path, count: int, timeout: float = 60.0) -> None:
    """Wait until a folder holds at least ``count`` files (psets' markers)."""
    end = time.monotonic() + timeout
    while not folder.is_dir() or len(os.listdir(folder)) < count:
        assert time.monotonic() < end, f"{folder} has not {count} files within {timeout} s"
        time.sleep(0.05)


def journaled(calc_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows in a calc dir's journals so far: finished ones, and the psets started
    without a finished row (records still being written are left for later)."""
    finished: list[dict[str, Any]] = []
    running: list[dict[str, Any]] = []
    for path in sorted((calc_dir / "journal").glob("*" + journal.SUFFIX)):
        decoder = journal.Decoder()
        finished.extend(decoder.feed(path.read_bytes()))
        running.extend(decoder.crashed())
    return finished, running


def wait_for_journal(
    calc_dir: Path, finished: int, running: list[int] | None = None, timeout: float = 60.0
) -> None:
    """Wait until a running session's journals hold ``finished`` finished rows or more
    and, if given, the psets started without a finished row are exactly those whose
    parameter ``a`` is in ``running``: the session has written what it was sent."""
    end = time.monotonic() + timeout
    while True:
        rows, started = journaled(calc_dir)
        if len(rows) >= finished and (
            running is None or sorted(row["a"] for row in started) == running
        ):
            return
        seen = f"{len(rows)} finished rows, started a={[row['a'] for row in started]}"
        assert time.monotonic() < end, f"{calc_dir}/journal after {timeout} s: {seen}"
        time.sleep(0.05)


def processes_in(folder: Path) -> list[int]:
    """The pids of the processes other than this one whose working folder is
    ``folder`` (Linux)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if Path(os.readlink(entry / "cwd")) == folder:
                    pids.append(int(entry.name))
            except OSError:  # gone meanwhile, or another user's
                continue
    return pids


def wait_for_no_process_in(folder: Path, timeout: float = 60.0) -> None:
    """Wait until no process works in ``folder``: what a session started there (its
    writer, its workers) has exited."""
    folder = folder.resolve()
    end = time.monotonic() + timeout
    while pids := processes_in(folder):
        assert time.monotonic() < end, f"processes {pids} still run in {folder}"
        time.sleep(0.05)


def start_session(
    pytester: Any, *args: str, output: bool = False, **popen: Any
) -> subprocess.Popen[Any]:
    """A ``pytest --psweep`` session in the background, in pytester's folder.

    Its output goes nowhere unless ``output`` (then read ``proc.stdout``): a pipe
    nobody reads would block a chatty session. ``popen``: more of Popen's arguments.
    """
    command = [*SESSION, *args]
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


def git(folder: Path, *args: str) -> str:
    """A git command in folder (with an author, whatever the machine's config); its
    output."""
    return subprocess.run(
        ["git", "-C", str(folder), "-c", "user.email=a@b", "-c", "user.name=a", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def make_study(folder: Path, **files: str) -> Path:
    """Write a study's files (``name=source``, dedented; ``sweep_a`` is
    ``sweep_a.py``, a name with a dot is kept) into ``folder``, made if missing."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        path = folder / (name if "." in name else name + ".py")
        path.write_text(textwrap.dedent(source))
    return folder


def run_session(
    folder: Path, *args: str, env: dict[str, str] | None = None, python: tuple[str, ...] = ()
) -> pytest.RunResult:
    """``pytest --psweep ARGS`` run to its end in ``folder``, as pytester's
    ``runpytest_subprocess`` runs it, for a study that module-scoped fixtures run once
    for several tests (pytester is per test). The result has pytester's methods
    (``assert_outcomes``, ``stdout.fnmatch_lines``); ``env`` replaces os.environ;
    ``python``: the interpreter's options (``("-X", "dev")``)."""
    command = [SESSION[0], *python, *SESSION[1:], *args]
    began = time.monotonic()
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, env=env)
    return pytest.RunResult(
        done.returncode,
        done.stdout.splitlines(),
        done.stderr.splitlines(),
        time.monotonic() - began,
    )


def copy_study(source: Path, folder: Path, *names: str) -> Path:
    """Copy files and folders (a calc dir) of a study that a module fixture ran once
    into a test's own ``folder`` (all of them if no ``names``): the test changes and
    runs its copy as if it had run the study itself, and no test sees another's
    changes."""
    for name in names or sorted(os.listdir(source)):
        if (source / name).is_dir():
            shutil.copytree(source / name, folder / name)
        else:
            shutil.copy2(source / name, folder / name)
    return folder


def section(result: pytest.RunResult, title: str) -> pytest.LineMatcher:
    """The lines of one section of a session's output (``ERROR collecting x.py``): from
    its ``____ title ____`` line to the next section's."""
    lines = result.outlines
    starts = [i for i, line in enumerate(lines) if line.strip("_ ") == title]
    assert starts, f"no section {title!r} in the output:\n" + "\n".join(lines)
    start = starts[0]
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].startswith(("____", "===="))),
        len(lines),
    )
    return pytest.LineMatcher(lines[start:end])


def psweep_here(
    capsys: pytest.CaptureFixture[str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``psweep ARGS`` through ``cli.main`` in this process (in ``cwd`` if given), with
    what it printed, as the command's process would give them: for tests that check
    what an option selects or writes (0.3 CPU-s less than a process each; the command
    itself runs as a process in tests/test_cli.py)."""
    capsys.readouterr()  # what the test printed before
    before = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        code = cli.main(list(args))
    finally:
        os.chdir(before)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["psweep", *args], code, out, err)
