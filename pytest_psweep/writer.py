"""The process that writes a pytest session's database: ``python -m pytest_psweep.writer``.

The session's controller starts it at session start (``WriterProcess``). It imports
pandas and reads the database while the session collects and runs, on another core,
reads the session's journal as it grows, and at the end appends the journal's rows
in one atomic write. pytest's processes then never import pandas (0.3-0.5 s, and its
objects walked by each of pytest's garbage collections at exit) nor keep rows in
memory. If it dies, the journal stays for the next run, as after a killed session.
It ignores Ctrl-C: an interrupted session still has it write every finished row.

The messages are JSON objects, one a line, each with an ``"op"``; they travel on two
pipes of their own (never stdout, which the user's modules may print to when the
writer imports them to decode rows):

session -> writer
    ``start``  (calc_dir, journal, path, lock_timeout): read the database; answers
               ``ready``
    ``append`` (records, path): append the journal, which holds ``records`` rows;
               ``path`` is ``sys.path`` as collection left it, for the rows' classes;
               answers ``written``
writer -> session
    ``ready``   (): the database could be read
    ``written`` (written, recovered, notes): rows appended, rows of interrupted
                runs merged, what happened to journals of interrupted runs that
                could not be merged whole (kept for later, or quarantined)
    ``error``   (message): what went wrong; the writer then ends
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from .calcdir import CalcDir, Database
from .errors import PsweepError
from .journal import JournalTail, Undecodable

MESSAGES: dict[str, tuple[str, ...]] = {
    "start": ("calc_dir", "journal", "path", "lock_timeout"),
    "append": ("records", "one_more", "path"),
    "ready": (),
    "written": ("written", "recovered", "notes"),
    "error": ("message",),
}
_TAIL_SECONDS = 0.1  # how often the writer reads what was journaled since


def send(stream: IO[str], op: str, **fields: Any) -> None:
    """Write one message (its fields checked against ``MESSAGES``)."""
    if tuple(sorted(fields)) != tuple(sorted(MESSAGES[op])):
        raise ValueError(f"message {op!r} takes {MESSAGES[op]}, got {sorted(fields)}")
    stream.write(json.dumps({"op": op, **fields}) + "\n")
    stream.flush()


def receive(stream: IO[str], *expected: str) -> dict[str, Any] | None:
    """The next message, which must be one of ``expected``; None at the end of the
    stream. Anything else is a PsweepError that shows it."""
    line = stream.readline()
    if not line:
        return None
    try:
        message = json.loads(line)
        op = message["op"]
        fields = MESSAGES[op]
    except (ValueError, KeyError, TypeError):
        raise PsweepError(f"psweep writer: unknown message {line.strip()[:200]!r}") from None
    if op not in expected or set(message) != {"op", *fields}:
        raise PsweepError(
            f"psweep writer: unexpected message {line.strip()[:200]!r}; "
            f"expected one of {', '.join(expected)}"
        )
    return dict(message)


class WriterProcess:
    """The session's side of the writer: start it, wait until it has read the
    database, have it append the journal, end it."""

    def __init__(self, calc_dir: CalcDir, journal: Path, lock_timeout: float) -> None:
        self.database = calc_dir.database
        self.recovered = 0  # rows of interrupted runs it merged at the end
        self.notes: list[str] = []  # journals of interrupted runs it could not merge whole
        to_writer_read, to_writer = os.pipe()
        from_writer, from_writer_write = os.pipe()
        env = dict(os.environ)
        # the package's own folder, so that -m finds it even when it is not installed
        package_root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        # started with Ctrl-C ignored (kept across exec, and Python then installs no
        # handler of its own): a Ctrl-C while it starts must not kill it either
        ignoring = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if ignoring else None
        try:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pytest_psweep.writer",
                    str(to_writer_read),
                    str(from_writer_write),
                ],
                pass_fds=(to_writer_read, from_writer_write),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=env,
            )
        except OSError as exc:
            for fd in (to_writer_read, to_writer, from_writer, from_writer_write):
                os.close(fd)
            raise PsweepError(
                f"cannot start the process that writes {self.database}: {exc}"
            ) from exc
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        os.close(to_writer_read)
        os.close(from_writer_write)
        self._commands: IO[str] = os.fdopen(to_writer, "w")
        self._answers: IO[str] = os.fdopen(from_writer, "r")
        self._ready = False
        self._given = False  # told to append the journal
        # the writer's sys.path is this process's: rows may hold objects of classes
        # from the session's modules
        self._send(
            "start",
            calc_dir=str(calc_dir.path),
            journal=str(journal),
            path=sys.path,
            lock_timeout=lock_timeout,
        )

    @property
    def pid(self) -> int:
        return self._process.pid

    def wait_ready(self) -> None:
        """Wait until the database has been read; PsweepError if it cannot be."""
        if not self._ready:
            self._answer("ready")
            self._ready = True

    def append_journal(
        self, records: int, import_roots: Sequence[str] = (), one_more: bool = False
    ) -> int:
        """Append the journal's rows (``records`` of them, all written; ``one_more``:
        or one more, whose append a Ctrl-C cut short after its write) to the database
        in one atomic write; the number of rows written. ``import_roots``: folders
        the rows' classes import from that this process's ``sys.path`` may lack."""
        self.wait_ready()
        self._given = True
        # sys.path as collection left it: the modules the rows' objects come from
        path = [*sys.path, *(root for root in import_roots if root not in sys.path)]
        self._send("append", records=records, one_more=one_more, path=path)
        answer = self._answer("written")
        self._end_commands()  # it exits by itself; close() reaps it
        self.recovered = answer["recovered"]
        self.notes = answer["notes"]
        return int(answer["written"])

    def close(self) -> None:
        """End the process and reap it. One that was not told to append is stopped at
        once: it has only read, and a session without sweeps need not wait for it."""
        if not self._given and self._process.poll() is None:
            self._process.kill()
        self._end_commands()
        self._process.wait()
        self._answers.close()

    def _send(self, op: str, **fields: Any) -> None:
        try:
            send(self._commands, op, **fields)
        except OSError:
            pass  # it died: _answer says how

    def _end_commands(self) -> None:
        try:
            self._commands.close()
        except OSError:
            pass

    def _answer(self, op: str) -> dict[str, Any]:
        try:
            answer = receive(self._answers, op, "error")
        except PsweepError:
            self._process.kill()
            raise
        if answer is not None and answer["op"] == op:
            return answer
        self._end_commands()  # it has ended or is ending: reap it for its exit code
        self._process.wait()
        if answer is None:
            raise PsweepError(
                f"the process that writes {self.database} ended (exit code "
                f"{self._process.returncode}) before it answered"
            )
        raise PsweepError(answer["message"])


def main(commands: IO[str], answers: IO[str]) -> None:
    """The writer: read the database, answer, read the journal as it grows, append
    its rows when told how many there are."""
    start = receive(commands, "start")
    if start is None:
        return  # the session ended before it started us properly
    sys.path[:] = start["path"]
    # the database read now, while the session runs, is read again at the end only
    # if another session has written it meanwhile
    database = Database(start["calc_dir"], keep_read=True, lock_timeout=start["lock_timeout"])
    try:
        import pandas  # noqa: F401  the slow import, while the session runs

        database.read()
    except PsweepError as exc:
        # a class of a value that cannot be imported before the session has collected
        # its modules is not a broken database: read again at the end
        if not isinstance(exc.__cause__, (ImportError, AttributeError)):
            send(answers, "error", message=str(exc))
            return
    send(answers, "ready")
    tail = JournalTail(start["journal"])
    stop = threading.Event()

    def keep_reading() -> None:
        while not stop.wait(_TAIL_SECONDS):
            try:
                tail.read()
            except Undecodable:
                return  # a class not importable yet: read at the end

    reader = threading.Thread(target=keep_reading, daemon=True)
    reader.start()
    try:
        message = receive(commands, "append")
    except PsweepError as exc:
        send(answers, "error", message=str(exc))
        return
    finally:
        stop.set()
        reader.join()
    if message is None:
        return  # the session ended without rows: nothing to write
    try:
        sys.path[:0] = [entry for entry in message["path"] if entry not in sys.path]
        try:
            tail.read(final=True)
        except Undecodable as exc:
            raise PsweepError(
                f"journal {tail.path} holds objects whose classes cannot be imported "
                f"here ({exc}); make their modules importable and run 'psweep recover'"
            ) from exc
        extra = tail.decoder.records - message["records"]  # 1: an append cut short
        if not (extra == 0 or (extra == 1 and message["one_more"])):
            raise PsweepError(
                f"journal {tail.path} holds {tail.decoder.records} whole records, the "
                f"session wrote {message['records']}"
            )
        recovery = database.recover()  # those the session could not decode at its start
        _, new = database.append(tail.rows.frame())
    except Exception as exc:
        problem = str(exc) if isinstance(exc, PsweepError) else f"{type(exc).__name__}: {exc}"
        send(answers, "error", message=problem)
        return
    send(answers, "written", written=len(new), recovered=recovery.saved, notes=recovery.notes)
    # the database is written and renamed, the answer flushed: skip the interpreter's
    # teardown of pandas (about 0.1 s) that the session would otherwise wait for
    os._exit(0)


if __name__ == "__main__":
    # a Ctrl-C at the terminal reaches the whole process group: the session handles
    # it and still has the finished rows written, so the writer must not die of it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        main(os.fdopen(int(sys.argv[1]), "r"), os.fdopen(int(sys.argv[2]), "w"))
    except BrokenPipeError:
        # the session died (a pset's os._exit, a kill) before it read our answer: its
        # journal keeps every row for the next run, and there is nobody to tell
        os._exit(0)
