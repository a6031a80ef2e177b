"""The report and export never harm a calc dir or a user's file (issue 21.6), keep
working with any value in the rows (21.8: markup in values; 21.9: ints beyond float
range), and a report problem never changes a session's exit status (21.9)."""

from __future__ import annotations

import pytest

import pytest_psweep as ps
from tests.processes import copy_study, make_study, psweep_here, run_session
from tests.report_browser import (  # noqa: F401
    browser,
    draw_all,
    open_page,
    psweep_cli,
)

STUDY = """
    import pytest_psweep as ps

    @ps.sweep(ps.plist("a", [1, 2, 3]))
    def sweep_a(pset):
        return {"r": pset["a"] * 2}
"""


def psweep(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``psweep ARGS`` in this process, in the current folder: its exit status and
    what it wrote to stderr. The tests here check what the commands refuse or write;
    each command runs as a process once (and in tests/test_cli.py)."""
    done = psweep_here(capsys, *args)
    return done.returncode, done.stderr


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """STUDY run once, its report asked to go over its own database (refused): the
    folder, the session's result and the rows the database held right after it. The
    tests that refuse or write files beside it each use a file of its own name and
    check the database is untouched; the backup test works in a copy."""
    folder = make_study(tmp_path_factory.mktemp("study"), sweep_study=STUDY)
    result = run_session(folder, "--psweep-report=calc/results.pk")
    return folder, result, len(ps.df_read(folder / "calc" / "results.pk"))


@pytest.fixture
def calc(study, monkeypatch):
    """The study's calc dir; the test runs in the folder that holds it."""
    monkeypatch.chdir(study[0])
    return study[0] / "calc"


# the tests of the one study on one xdist worker (--dist loadgroup): it runs once
ONE_STUDY = pytest.mark.xdist_group("report_safety_study")


@ONE_STUDY
@pytest.mark.parametrize(
    "out",
    ["calc/results.pk", "calc/results.pk.lock", "calc/journal/r.html", "calc/shards/x.html"],
)
def test_psweep_report_refuses_a_calc_dirs_own_files(calc, capsys, out):
    before = (calc / "results.pk").read_bytes()
    code, stderr = psweep(capsys, "report", "calc", "-o", out, "--force")
    assert code == 1
    assert f"report {out}: that is a file of calc dir" in stderr
    assert (calc / "results.pk").read_bytes() == before
    assert len(ps.df_read(calc / "results.pk")) == 3


@ONE_STUDY
def test_psweep_export_refuses_the_database_and_the_calc_dirs_files(calc, capsys):
    before = (calc / "results.pk").read_bytes()
    for out in ("calc/results.pk", "calc/journal/x.json", "calc/backup_script/x.csv"):
        code, stderr = psweep(capsys, "export", "calc", out, "--force")
        assert code == 1 and f"export {out}" in stderr, stderr
    # a database outside a calc dir is not written over by its own export
    ps.df_write(ps.df_read(calc / "results.pk"), calc.parent / "db.pk")
    code, stderr = psweep(capsys, "export", "db.pk", "db.pk", "--force")
    assert code == 1 and "is the database it is made from" in stderr
    assert (calc / "results.pk").read_bytes() == before


@ONE_STUDY
def test_a_file_that_is_not_ours_is_written_over_only_with_force(calc, capsys):
    notes = calc.parent / "notes.html"
    notes.write_text("my notes")
    done = psweep_cli(calc.parent, "report", "calc", "-o", "notes.html")  # as a process
    assert done.returncode == 1
    assert "report notes.html exists and was not written by psweep" in done.stderr
    assert "--force" in done.stderr and notes.read_text() == "my notes"
    assert psweep(capsys, "report", "calc", "-o", "notes.html", "--force")[0] == 0
    # our own report is written over without asking, also one of an older version
    assert psweep(capsys, "report", "calc", "-o", "notes.html")[0] == 0
    notes.write_text('<p class="muted">3 rows, 1 sweeps; made 2026 by pytest-psweep</p>')
    assert psweep(capsys, "report", "calc", "-o", "notes.html")[0] == 0

    table = calc.parent / "table.csv"
    table.write_text("x,y\n1,2\n")
    done = psweep_cli(calc.parent, "export", "calc", "table.csv")  # as a process
    assert done.returncode == 1 and "export table.csv exists" in done.stderr
    assert table.read_text() == "x,y\n1,2\n"
    assert psweep(capsys, "export", "calc", "table.csv", "--force")[0] == 0
    for suffix in ("csv", "json"):  # an export of ours is written over again
        for _ in range(2):
            code, stderr = psweep(capsys, "export", "calc", f"again.{suffix}")
            assert code == 0, stderr


@ONE_STUDY
def test_psweep_report_option_never_writes_over_the_database(study):
    folder, result, rows = study
    result.assert_outcomes(passed=3)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["psweep: no report: *calc/results.pk: that is a file of calc*"])
    assert rows == 3


MARKUP = "<!--<script>"

MARKUP_STUDY = f"""
    import pytest_psweep as ps

    @ps.sweep(ps.plist("tag", ["plain", "{MARKUP}", "</script><b>x"]))
    def sweep_markup(pset):
        if pset["tag"] == "plain":
            raise ValueError("bad {MARKUP} value </script>")
        return {{"note": "{MARKUP}" + pset["tag"], "x": len(pset["tag"])}}
"""


def test_markup_in_values_errors_and_titles_leaves_the_page_whole(pytester, browser, capsys):  # noqa: F811
    pytester.makepyfile(sweep_study=MARKUP_STUDY)
    pytester.runpytest_subprocess("--psweep").assert_outcomes(passed=2, failed=1)
    title = f"study {MARKUP} </script>"
    code, stderr = psweep(capsys, "report", "calc", "-o", "r.html", "--title", title)
    assert code == 0, stderr
    errors: list[str] = []
    page = open_page(browser, pytester.path / "r.html", errors)
    assert page.title() == title
    rows = page.locator("table.rows tbody tr")
    assert rows.count() == 3
    cells = page.locator("table.rows tbody td").all_inner_texts()
    assert MARKUP in cells and "</script><b>x" in cells
    assert f"{MARKUP}</script><b>x" in cells  # a result
    assert any(f"bad {MARKUP} value </script>" in c for c in cells)  # the error
    assert f"bad {MARKUP} value </script>" in page.locator("section.sweep").inner_text()
    draw_all(page)
    assert page.locator(".plot .main-svg").count() >= 1
    assert errors == []
    page.close()


BIG_STUDY = """
    import pytest_psweep as ps

    @ps.sweep(ps.plist("a", [1, 2]))
    def sweep_big(pset):
        return {"huge": 10**400 * pset["a"], "r": pset["a"]}
"""


def test_an_int_beyond_float_range_is_shown_as_text(pytester):
    pytester.makepyfile(sweep_study=BIG_STUDY)
    result = pytester.runpytest_subprocess("--psweep", "--psweep-report=r.html")
    result.assert_outcomes(passed=2)
    assert result.ret == 0
    result.stdout.fnmatch_lines([f"report: {pytester.path}/r.html"])
    page = (pytester.path / "r.html").read_text()
    assert '"1' + "0" * 400 + '"' in page and '"2' + "0" * 400 + '"' in page


def test_a_report_problem_warns_and_keeps_the_exit_status(pytester, read_db):
    pytester.makepyfile(sweep_study=STUDY)
    (pytester.path / "taken").mkdir()  # the report's path is a folder
    result = pytester.runpytest_subprocess("--psweep", "--psweep-report=taken")
    result.assert_outcomes(passed=3)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["psweep: no report: *taken is a folder*"])
    assert len(read_db()) == 3


SHARDED = """
    import pytest_psweep as ps

    @ps.sweep(ps.plist("a", list(range(8))))
    def sweep_a(pset):
        return {"r": pset["a"] * 2}
"""


def test_report_include_shards_shows_rows_not_merged_yet(pytester, capsys):
    pytester.makepyfile(sweep_study=SHARDED)
    shard = ["--psweep", "--psweep-run-id=array-1"]
    pytester.runpytest_subprocess(*shard, "--psweep-shard=0/2").assert_outcomes(passed=6)
    assert psweep(capsys, "merge", "calc")[0] == 0
    pytester.runpytest_subprocess(*shard, "--psweep-shard=1/2").assert_outcomes(passed=2)

    code, stderr = psweep(capsys, "report", "calc", "-o", "merged.html")
    assert code == 0, stderr
    assert '<span class="passed">6 passed</span>' in (pytester.path / "merged.html").read_text()
    code, stderr = psweep(capsys, "report", "calc", "-o", "all.html", "--include-shards")
    assert code == 0, stderr
    assert "2 rows not merged yet" in stderr
    page = (pytester.path / "all.html").read_text()
    assert '<span class="passed">8 passed</span>' in page and "8 rows, 1 sweeps" in page


@ONE_STUDY
def test_a_backup_inside_another_calc_dirs_own_files_is_refused(pytester, read_db, study):
    copy_study(study[0], pytester.path, "sweep_study.py", "calc")  # STUDY ran: 3 rows
    inner = ["--psweep", "--psweep-calc-dir=calc/journal/inner"]
    pytester.runpytest_subprocess(*inner).assert_outcomes(passed=3)
    result = pytester.runpytest_subprocess(*inner, "--psweep-backup")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*backup *calc/journal/inner_*: that is inside the own files*"])
    assert not list((pytester.path / "calc" / "journal").glob("inner_*"))
    assert len(read_db()) == 3 and len(read_db("calc/journal/inner")) == 3
