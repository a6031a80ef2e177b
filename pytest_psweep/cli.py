"""The ``psweep`` command: look at, export and recover a database without pandas code.

psweep show [CALC_DIR_OR_DB] [--cols A B ...] [--last-run] [SELECTION]
psweep export CALC_DIR_OR_DB OUT [--absolute-paths] [--all-columns] [SELECTION]
                                (.csv, .json or .parquet by OUT's suffix)
SELECTION: --latest --failed --sweep NAME --query EXPR --sort COL ... --reverse
psweep recover CALC_DIR         (merge journals left by killed runs)
psweep migrate CALC_DIR         (convert a calc dir that psweep wrote, after a backup)
psweep merge CALC_DIR [--final] (put the rows of job-array shards into the database)
psweep status CALC_DIR [--watch] (where a running job array stands; reads, never writes)
psweep report CALC_DIR_OR_DB [-o report.html] [--title T] [--include-shards]
              [--baseline DB [--rtol R] [--atol A] [--ignore KEY ...]]
                                (one self-contained HTML page)

and psweep's own commands: psweep-db2json [-o ORIENT] DB, psweep-db2table [-a] [-i]
[-f FMT] DB [COLUMN ...].
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import shards, targets
from .calcdir import CalcDir, Database, database_file
from .database import Unimportable, df_read, df_to_json, df_write
from .errors import PsweepError
from .frames import require_columns
from .names import ATOL, CALC_DIR, DATABASE, LEGACY_DATABASE, RTOL, counted

# shown by default next to the parameters and results
SHOWN_BOOKKEEPING = ["_run_seq", "_pset_seq", "_outcome", "_sweep"]


def database_path(path: str | Path) -> Path:
    """A calc dir means its database; a missing file is a PsweepError."""
    path = database_file(path)
    if not path.is_file():
        calc_dir = CalcDir(path.parent)
        waiting = Database(calc_dir).waiting_rows() if path.name == DATABASE else []
        if waiting:
            raise PsweepError(
                f"database {path} does not exist yet, but {counted(len(waiting), 'row')} of an "
                f"interrupted run wait in {calc_dir.journal_dir}: merge them with "
                f"'psweep recover {calc_dir.path}'"
            )
        if path.name == DATABASE and shards.waiting_rows(calc_dir):
            raise PsweepError(
                f"database {path} does not exist yet, but job-array shards left rows in "
                f"{shards.folder(calc_dir)}: merge them with 'psweep merge {calc_dir.path}'"
            )
        if path.name == DATABASE and (path.parent / LEGACY_DATABASE).is_file():
            raise PsweepError(
                f"calc dir {path.parent} holds psweep's {LEGACY_DATABASE}, not {DATABASE}: "
                f"convert it once with 'psweep migrate {path.parent}' (it makes a backup "
                f"first), or name the file: psweep show {path.parent / LEGACY_DATABASE}"
            )
        raise PsweepError(f"database {path} does not exist")
    return path


def read(path: Path) -> Any:
    """A database file; rows holding objects of classes from the sweep modules are read
    with the folders those modules were imported from on ``sys.path``: those the calc
    dir's sessions and shards recorded, the calc dir's parent and this folder."""
    try:
        return df_read(path)
    except Unimportable:
        calc_dir = CalcDir(path.parent)
        recorded = calc_dir.import_roots() + shards.import_roots(calc_dir)
        candidates = [*recorded, str(path.parent.resolve().parent), os.getcwd()]
        roots = [r for r in dict.fromkeys(candidates) if r not in sys.path and os.path.isdir(r)]
        if not roots:
            raise
        sys.path[:0] = roots
        try:
            return df_read(path)
        except Unimportable as again:
            raise Unimportable(path, again.cause, tried=roots) from None
        finally:
            del sys.path[: len(roots)]


def _selected(args: argparse.Namespace) -> Any:
    """The rows the options of show/export choose (``frames.df_select``)."""
    from .frames import df_select

    df = read(database_path(args.database))
    if getattr(args, "last_run", False) and "_run_seq" in df and len(df):
        df = df[df["_run_seq"] == df["_run_seq"].max()]
    return df_select(
        df,
        latest=args.latest,
        failed=args.failed,
        sweep=args.sweep,
        query=args.query,
        sort=args.sort or (),
        reverse=args.reverse,
    )


def show(args: argparse.Namespace) -> None:
    import pandas as pd

    df = _selected(args)
    if args.cols:
        require_columns(df, args.cols, "--cols")
        cols = args.cols
    else:
        shown = SHOWN_BOOKKEEPING + ["_error"] if args.failed else SHOWN_BOOKKEEPING
        cols = [c for c in df if not c.startswith("_")] + [c for c in shown if c in df]
        # columns with no value in these rows (other sweeps' parameters) say nothing
        cols = [c for c in cols if df[c].notna().any()] if len(df) else cols
    with pd.option_context(
        "display.max_rows", None, "display.max_columns", None, "display.width", 200
    ):
        if len(df):
            print(df[cols].to_string(index=False))
    print(f"[{counted(len(df), 'row')}]")
    path = database_path(args.database)
    waiting = shards.waiting_files(CalcDir(path.parent)) if path.name == DATABASE else 0
    if waiting:  # rows the database does not show yet
        print(
            f"psweep: {counted(waiting, 'shard file')} in {shards.folder(CalcDir(path.parent))} "
            f"{'holds' if waiting == 1 else 'hold'} rows not shown here: "
            f"'psweep merge {path.parent}' puts them into the database",
            file=sys.stderr,
        )


def export_columns(df: Any) -> list[Any]:
    """What ``show`` shows, in its order: parameters and results that have a value in
    these rows, then the book-keeping (``show``'s first, then every other)."""
    public = [c for c in df if not str(c).startswith("_")]
    if len(df):  # other sweeps' parameters and results say nothing here
        public = [c for c in public if df[c].notna().any()]
    private = [c for c in df if str(c).startswith("_")]
    first = [c for c in SHOWN_BOOKKEEPING if c in private]
    return public + first + [c for c in private if c not in first]


def export(args: argparse.Namespace) -> None:
    out = Path(args.out)
    targets.check(out, "export", args.force, targets.EXPORT_MARKS, database_path(args.database))
    df = _selected(args)
    if not args.all_columns:
        df = df[export_columns(df)]
    if not args.absolute_paths and "_calc_dir" in df:
        # paths of this machine mean nothing elsewhere: relative to the calc dir's parent
        base = database_path(args.database).parent.parent
        df = df.copy()
        df["_calc_dir"] = [_relative(value, base) for value in df["_calc_dir"]]
    suffix = out.suffix.lower()
    if suffix == ".csv":
        df.to_csv(out, index=False)
    elif suffix == ".json":
        df_write(df, out, fmt="json")
    elif suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise PsweepError("export to Parquet needs pyarrow: pip install pyarrow") from None
        # values Parquet cannot hold as they are (arrays, paths, mixed objects) go as text
        frame = df.copy()
        for col in frame.select_dtypes(include="object").columns:
            frame[col] = frame[col].map(lambda v: v if v is None or isinstance(v, str) else str(v))
        frame.to_parquet(out, index=False)
    else:
        raise PsweepError(f"export: cannot tell the format of {out}; use .csv, .json or .parquet")
    print(f"wrote {counted(len(df), 'row')} to {out}")


def _relative(value: Any, base: Path) -> Any:
    if not isinstance(value, str) or not os.path.isabs(value):
        return value
    return os.path.relpath(value, base)


def _add_selection(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--latest", action="store_true", help="Only the newest row per sweep and pset."
    )
    cmd.add_argument(
        "--failed", action="store_true", help="Only failed and crashed rows (with _error)."
    )
    cmd.add_argument("--sweep", help="Only rows of sweeps whose _sweep contains this (or glob).")
    cmd.add_argument("--query", help="Keep rows matching a pandas query, e.g. 'a > 1'.")
    cmd.add_argument("--sort", nargs="+", metavar="COL", help="Sort by these columns.")
    cmd.add_argument("--reverse", action="store_true", help="Sort in descending order.")


def recover(args: argparse.Namespace) -> None:
    calc_dir = Path(args.calc_dir)
    if not calc_dir.is_dir():
        raise PsweepError(f"calc dir {calc_dir} does not exist")
    database = Database(calc_dir)
    recovery = database.recover(strict=True)
    for problem in recovery.quarantined:
        print(f"psweep: {problem}", file=sys.stderr)
    print(f"recovered {counted(recovery.saved, 'row')} into {database.path}")


def report(args: argparse.Namespace) -> None:
    from .report import write
    from .report_compare import Baseline

    if args.include_shards:
        path = database_file(args.database)
        database = _with_shard_rows(path)
    else:
        path = database_path(args.database)
        database = read(path)
    title = args.title or f"psweep: {path.parent.resolve().name}"
    baseline = Baseline(rtol=args.rtol, atol=args.atol, ignore=tuple(args.ignore or ()))
    if args.baseline is not None:
        baseline.frame = df_read(database_path(args.baseline))
        baseline.name = str(args.baseline)
    written = write(database, args.out, title, force=args.force, source=path, baseline=baseline)
    print(f"wrote {written} ({written.stat().st_size / 2**20:.1f} MiB; open it in a browser)")


def _with_shard_rows(path: Path) -> Any:
    """The database (if any) and the rows its calc dir's shard files hold that it
    does not (``--include-shards``: a study looked at before its final merge)."""
    from .database import concat, rows_to_frame

    database = read(path) if path.is_file() else None
    waiting = shards.waiting_rows(CalcDir(path.parent)) if path.name == DATABASE else []
    if database is not None and "_pset_id" in database:
        merged = set(database["_pset_id"])
        waiting = [row for row in waiting if row.get("_pset_id") not in merged]
    if not waiting:
        if database is None:
            raise PsweepError(f"database {path} does not exist and no shard file holds rows")
        return database
    rows = counted(len(waiting), "row")
    print(f"psweep: {rows} not merged yet, from shard files", file=sys.stderr)
    return concat(database, rows_to_frame(waiting))


def merge(args: argparse.Namespace) -> None:
    from .merge import merge as merge_shards

    calc_dir = CalcDir(Path(args.calc_dir))
    if not calc_dir.path.is_dir():
        raise PsweepError(f"calc dir {calc_dir.path} does not exist")
    report = merge_shards(calc_dir, final=args.final)
    print("\n".join(report.lines(calc_dir.path)))
    if report.problems:
        raise PsweepError(f"{len(report.problems)} shard files could not be merged (above)")


def status(args: argparse.Namespace) -> None:
    from .status import status as array_status
    from .status import watch

    calc_dir = CalcDir(Path(args.calc_dir))
    if not calc_dir.path.is_dir():
        raise PsweepError(f"calc dir {calc_dir.path} does not exist")
    if args.watch is not None:
        watch(calc_dir, args.watch, args.times)
    else:
        print("\n".join(array_status(calc_dir).lines(calc_dir.path)))


def migrate(args: argparse.Namespace) -> None:
    from .migrate import migrate as convert

    print(convert(args.calc_dir, args.params, args.fill_times))


_FORCE = "Write over OUT even if it is a file psweep did not write (never a calc dir's own)."


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="psweep", description=__doc__.split("\n\n")[0])
    commands = main.add_subparsers(dest="command", required=True)

    cmd = commands.add_parser("show", help="Print the database as a table.")
    cmd.add_argument("database", nargs="?", default=CALC_DIR, metavar="CALC_DIR_OR_DB")
    cmd.add_argument("--cols", nargs="+", help="Show these columns.")
    cmd.add_argument("--last-run", action="store_true", help="Show only the newest run.")
    _add_selection(cmd)
    cmd.set_defaults(handler=show)

    cmd = commands.add_parser("export", help="Write the database as CSV, JSON or Parquet.")
    cmd.add_argument("database", metavar="CALC_DIR_OR_DB")
    cmd.add_argument("out", metavar="OUT")
    _add_selection(cmd)
    cmd.add_argument(
        "--absolute-paths",
        action="store_true",
        help="Keep _calc_dir as stored (default: relative to the calc dir's parent).",
    )
    cmd.add_argument("--force", action="store_true", help=_FORCE)
    cmd.add_argument(
        "--all-columns",
        action="store_true",
        help="Every column in the database's order (default: as show orders them, "
        "parameters and results without a value in these rows left out).",
    )
    cmd.set_defaults(handler=export)

    cmd = commands.add_parser("recover", help="Merge rows left by killed runs.")
    cmd.add_argument("calc_dir", metavar="CALC_DIR")
    cmd.set_defaults(handler=recover)

    cmd = commands.add_parser(
        "report",
        help="Write the database as one self-contained HTML page: per sweep counts, "
        "failures, a sortable table, pass/fail map and result plots (report extra).",
    )
    cmd.add_argument("database", nargs="?", default=CALC_DIR, metavar="CALC_DIR_OR_DB")
    cmd.add_argument("-o", dest="out", default="report.html", help="default: report.html")
    cmd.add_argument("--title", help="the page's title (default: psweep: <folder>)")
    cmd.add_argument(
        "--baseline",
        metavar="PATH",
        help="Compare each pset's newest results with this database or calc dir "
        "(default: the psets that failed by --psweep-compare, with their previous rows).",
    )
    cmd.add_argument("--rtol", type=float, default=RTOL, help=f"default: {RTOL:g}")
    cmd.add_argument("--atol", type=float, default=ATOL, help=f"default: {ATOL:g}")
    cmd.add_argument(
        "--ignore", nargs="+", metavar="KEY", help="Result keys not to compare (e.g. wall)."
    )
    cmd.add_argument(
        "--include-shards",
        action="store_true",
        help="Also the rows that job-array shards left and 'psweep merge' has not merged yet.",
    )
    cmd.add_argument("--force", action="store_true", help=_FORCE)
    cmd.set_defaults(handler=report)

    cmd = commands.add_parser(
        "merge",
        help="Put the rows that job-array shards (--psweep-shard) left in CALC_DIR/shards/ "
        "into the database, and say per sweep what is done, failed, crashed and missing.",
    )
    cmd.add_argument("calc_dir", metavar="CALC_DIR")
    cmd.add_argument(
        "--final",
        action="store_true",
        help="Every shard task has ended (e.g. a job with --dependency=afterany): a pset "
        "that started and has no row died with its task and gets a 'crashed' row.",
    )
    cmd.set_defaults(handler=merge)

    cmd = commands.add_parser(
        "status",
        help="Where the newest job array in CALC_DIR stands: per sweep psets passed, "
        "failed, crashed, running and missing, rows waiting to be merged, running tasks "
        "and an estimate of the time left. Reads small files only, takes no lock.",
    )
    cmd.add_argument("calc_dir", metavar="CALC_DIR")
    cmd.add_argument(
        "--watch",
        nargs="?",
        type=float,
        const=2.0,
        metavar="SECONDS",
        help="Show it again every SECONDS (default 2) until Ctrl-C.",
    )
    cmd.add_argument("--times", type=int, help=argparse.SUPPRESS)  # --watch this often
    cmd.set_defaults(handler=status)

    cmd = commands.add_parser(
        "migrate", help="Convert a calc dir that psweep wrote (results.pk, database.pk)."
    )
    cmd.add_argument("calc_dir", metavar="CALC_DIR")
    cmd.add_argument(
        "--params",
        nargs="+",
        metavar="COLUMN",
        help="the parameter columns, hashed into _pset_hash (default: psweep's "
        "convention: the columns that neither start nor end with _)",
    )
    cmd.add_argument(
        "--fill-times",
        action="store_true",
        help="give rows whose _time_utc is no time the time of the row before (the text "
        "is kept in _psweep_time_utc)",
    )
    cmd.set_defaults(handler=migrate)
    return main


def main(argv: Sequence[str] | None = None) -> int:
    return _run(parser(), argv)


def _run(command: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    args = command.parse_args(argv)
    try:
        args.handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
    except PsweepError as exc:
        print(f"{command.prog}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader left (| head): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:  # a file of the command's own (an export's target, ...)
        where = exc.filename if exc.filename is not None else "a file"
        print(
            f"{command.prog}: error: {where} cannot be used ({exc.strerror or exc}); make "
            "it readable and writable (or name another path) and run the command again",
            file=sys.stderr,
        )
        return 1
    return 0


# -- psweep's commands ------------------------------------------------------------------


def _read_any(path: str) -> Any:
    """A database file, or a calc dir's database (ours, or psweep's database.pk)."""
    given = Path(path)
    if given.is_dir() and not (given / DATABASE).exists():
        given = given / LEGACY_DATABASE
    return read(database_path(given))


def db2json(argv: Sequence[str] | None = None) -> int:
    """``psweep-db2json``, as psweep's: the database as JSON on stdout."""
    command = argparse.ArgumentParser(
        prog="psweep-db2json", description="Print a database as JSON (e.g. for jq)."
    )
    command.add_argument("database", metavar="DB")
    command.add_argument(
        "-o",
        dest="orient",
        default="records",
        choices=["split", "records", "index", "columns", "values"],
        help="DataFrame.to_json(orient=...) (default: records)",
    )

    def handler(args: argparse.Namespace) -> None:
        print(df_to_json(_read_any(args.database), orient=args.orient))

    command.set_defaults(handler=handler)
    return _run(command, argv)


def db2table(argv: Sequence[str] | None = None) -> int:
    """``psweep-db2table``, as psweep's: the database as a table on stdout."""
    command = argparse.ArgumentParser(
        prog="psweep-db2table", description="Print a database as a table."
    )
    command.add_argument("database", metavar="DB")
    command.add_argument("columns", nargs="*", metavar="COLUMN", help="only these columns")
    command.add_argument("-a", dest="all", action="store_true", help="all columns")
    command.add_argument("-i", dest="index", action="store_true", help="print the index")
    command.add_argument(
        "-f",
        dest="fmt",
        default="simple",
        help="a table format of the tabulate package (default: simple; formats other "
        "than simple and plain need tabulate installed)",
    )

    def handler(args: argparse.Namespace) -> None:
        df = _read_any(args.database)
        if not args.all:
            require_columns(df, args.columns, "COLUMN")
            df = df[args.columns or [c for c in df.columns if not str(c).startswith("_")]]
        try:
            from tabulate import tabulate
        except ImportError:
            if args.fmt not in ("simple", "plain"):
                raise PsweepError(f"-f {args.fmt} needs tabulate: pip install tabulate") from None
            print(df.to_string(index=args.index))
            return
        print(tabulate(df, headers="keys", tablefmt=args.fmt, showindex=args.index))

    command.set_defaults(handler=handler)
    return _run(command, argv)


if __name__ == "__main__":
    sys.exit(main())
