"""The ``psweep`` command: look at, export and recover a database without pandas code.

psweep show [CALC_DIR_OR_DB] [--cols A B ...] [--query EXPR] [--last-run]
psweep export DB OUT            (.csv, .json or .parquet by OUT's suffix)
psweep recover CALC_DIR         (merge journals left by killed runs)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .calcdir import CALC_DIR, Database, database_file
from .database import df_read, df_write
from .errors import PsweepError

# shown by default next to the parameters and results
SHOWN_BOOKKEEPING = ["_run_seq", "_pset_seq", "_outcome", "_sweep"]


def database_path(path: str | Path) -> Path:
    """A calc dir means its database; a missing file is a PsweepError."""
    path = database_file(path)
    if not path.is_file():
        raise PsweepError(f"database {path} does not exist")
    return path


def show(args: argparse.Namespace) -> None:
    import pandas as pd

    df = df_read(database_path(args.database))
    if args.last_run and "_run_seq" in df and len(df):
        df = df[df["_run_seq"] == df["_run_seq"].max()]
    if args.query:
        try:
            df = df.query(args.query)
        except Exception as exc:
            raise PsweepError(f"--query {args.query!r}: {type(exc).__name__}: {exc}") from None
    if args.cols:
        unknown = [col for col in args.cols if col not in df]
        if unknown:
            raise PsweepError(
                f"--cols: no column {', '.join(map(repr, unknown))}; "
                f"the database has {', '.join(df.columns)}"
            )
        cols = args.cols
    else:
        cols = [c for c in df if not c.startswith("_")] + [c for c in SHOWN_BOOKKEEPING if c in df]
    with pd.option_context(
        "display.max_rows", None, "display.max_columns", None, "display.width", 200
    ):
        print(df[cols].to_string(index=False))
    print(f"[{len(df)} rows]")


def export(args: argparse.Namespace) -> None:
    df = df_read(database_path(args.database))
    out = Path(args.out)
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
    print(f"wrote {len(df)} rows to {out}")


def recover(args: argparse.Namespace) -> None:
    calc_dir = Path(args.calc_dir)
    if not calc_dir.is_dir():
        raise PsweepError(f"calc dir {calc_dir} does not exist")
    database = Database(calc_dir)
    recovery = database.recover(strict=True)
    for problem in recovery.quarantined:
        print(f"psweep: {problem}", file=sys.stderr)
    print(f"recovered {recovery.saved} rows into {database.path}")


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="psweep", description=__doc__.split("\n\n")[0])
    commands = main.add_subparsers(dest="command", required=True)

    cmd = commands.add_parser("show", help="Print the database as a table.")
    cmd.add_argument("database", nargs="?", default=CALC_DIR, metavar="CALC_DIR_OR_DB")
    cmd.add_argument("--cols", nargs="+", help="Show these columns.")
    cmd.add_argument("--query", help="Keep rows matching a pandas query, e.g. 'a > 1'.")
    cmd.add_argument("--last-run", action="store_true", help="Show only the newest run.")
    cmd.set_defaults(handler=show)

    cmd = commands.add_parser("export", help="Write the database as CSV, JSON or Parquet.")
    cmd.add_argument("database", metavar="DB")
    cmd.add_argument("out", metavar="OUT")
    cmd.set_defaults(handler=export)

    cmd = commands.add_parser("recover", help="Merge rows left by killed runs.")
    cmd.add_argument("calc_dir", metavar="CALC_DIR")
    cmd.set_defaults(handler=recover)
    return main


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.handler(args)
    except PsweepError as exc:
        print(f"psweep: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
