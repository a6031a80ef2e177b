"""psweep 0.16's batch workflow (issue 25 item 7): FileTemplate, Machine, prep_batch,
run_<machine>.sh, simulate, and jobs that read their pset back from the database."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jinja2
import psweep
import pytest

import pytest_psweep as ps
from tests.processes import git

ROOT = Path(__file__).resolve().parents[1]

TEMPLATES = {
    # a job that reads its pset from the database by _pset_id, as psweep's
    # batch_templates_read_from_db example does
    "calc/run.py": textwrap.dedent(
        """\
        import pytest_psweep as ps

        pset = ps.df_extract_pset(ps.df_read("../results.pk"), "{{_pset_id}}")
        ps.file_write("out.txt", f"{pset['a'] * 10} {pset['b']}")
        """
    ),
    "calc/input.txt": "a={{a}} b={{b}} id={{_pset_id}}\n",
    "machines/local/info.yaml": "subcmd: sh\n",
    "machines/local/jobscript": "#!/bin/sh\npython3 run.py\n",
    "machines/cluster/info.yaml": "# a SLURM cluster\nsubcmd: sbatch  # submits\n",
    "machines/cluster/jobscript": "#!/bin/sh\n#SBATCH --job-name={{_pset_id}}\npython3 run.py\n",
}


@pytest.fixture
def templates(in_tmp):
    for name, text in TEMPLATES.items():
        path = in_tmp / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return in_tmp / "templates"


def test_file_template_fills_both_kinds_and_names_the_template(tmp_path):
    path = tmp_path / "t"
    pset = {"foo": "lala", "_bar": 23, "unused": None}
    path.write_text(" $foo $_bar")
    assert ps.FileTemplate(path).fill(pset, mode="dollar") == " lala 23"
    path.write_text(" {{ foo }} {{_bar}}")
    assert ps.FileTemplate(path).fill(pset) == " lala 23"
    path.write_text(" $foo $missing")
    with pytest.raises(KeyError, match="missing") as raised:
        ps.FileTemplate(path).fill(pset, mode="dollar")
    assert f"filling template {path} failed" in "".join(raised.value.__notes__)
    path.write_text(" {{missing}}")
    with pytest.raises(jinja2.exceptions.UndefinedError):
        ps.FileTemplate(path).fill(pset)
    with pytest.raises(ps.PsweepError, match="mode='x'"):
        ps.FileTemplate(path).fill(pset, mode="x")
    template = ps.FileTemplate(path, target_suffix="_local")
    assert (template.basename, template.targetname, template.dirname) == (
        "t",
        "t_local",
        str(tmp_path),
    )


def test_machines_read_info_yaml(templates):
    machines = {m.name: m for m in ps.gather_machines(templates / "machines")}
    assert {name: m.subcmd for name, m in machines.items()} == {"cluster": "sbatch", "local": "sh"}
    assert machines["cluster"].template.targetname == "jobscript_cluster"
    # without PyYAML: psweep's flat key: value lines all the same
    code = (
        "import sys; sys.modules['yaml'] = None; import pytest_psweep as ps; "
        f"print(ps.Machine({str(templates / 'machines' / 'cluster')!r}).subcmd)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "sbatch"


def _script_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if "run_seq=" in line]


def test_prep_batch_writes_jobs_scripts_and_rows(templates):
    params = ps.pgrid(ps.plist("a", [1, 2, 3]), ps.plist("b", ["x", "y"]))
    first = ps.prep_batch(params, write_pset=True)
    assert len(first) == 6 and "_pset_runtime" in first
    for row in first.to_dict("records"):
        folder = Path("calc") / row["_pset_id"]
        assert sorted(p.name for p in folder.iterdir()) == [
            "input.txt",
            "jobscript_cluster",
            "jobscript_local",
            "pset.pk",
            "run.py",
        ]
        # jinja2 drops the final newline, in psweep too
        assert (
            folder / "input.txt"
        ).read_text() == f"a={row['a']} b={row['b']} id={row['_pset_id']}"
        assert ps.pickle_read(folder / "pset.pk")["a"] == row["a"]
    second = ps.prep_batch(ps.pgrid(ps.plist("a", [4]), ps.plist("b", ["z"])))
    assert len(second) == 7
    lines = _script_lines(Path("calc/run_cluster.sh"))
    ids = second["_pset_id"].tolist()
    assert lines[:6] == [
        f"# cd $here/{pset_id}; sbatch jobscript_cluster  # run_seq=0 pset_seq={seq}"
        for seq, pset_id in enumerate(ids[:6])
    ]
    assert lines[6] == f"cd $here/{ids[6]}; sbatch jobscript_cluster  # run_seq=1 pset_seq=6"

    # the jobs run (here: run_local.sh) and read their pset from the database
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(["sh", "calc/run_local.sh"], check=True, env=env, capture_output=True)
    assert (Path("calc") / ids[6] / "out.txt").read_text() == "40 z"
    assert not (Path("calc") / ids[0] / "out.txt").exists()  # older runs: commented out


def test_prep_batch_simulate_fills_a_copy(templates):
    params = ps.pgrid(ps.plist("a", [1, 2]), ps.plist("b", ["x"]))
    done = ps.prep_batch(params)
    simulated = ps.prep_batch(ps.pgrid(ps.plist("a", [3]), ps.plist("b", ["x"])), simulate=True)
    assert len(ps.df_read("calc/results.pk")) == 2
    assert len(simulated) == len(ps.df_read("calc.simulate/results.pk")) == 3
    new_id = simulated["_pset_id"].iloc[-1]
    assert (Path("calc.simulate") / new_id / "jobscript_local").exists()
    assert not (Path("calc") / new_id).exists()
    for pset_id in done["_pset_id"]:
        assert not (Path("calc.simulate") / pset_id).exists()
    assert len(_script_lines(Path("calc.simulate/run_local.sh"))) == 3


def test_prep_batch_writes_what_psweeps_writes(templates):
    params = ps.pgrid(ps.plist("a", [1, 2]), ps.plist("b", ["x"]))
    theirs = psweep.prep_batch(params, calc_dir="theirs")
    ours = ps.prep_batch(params, calc_dir="ours")
    for name in ("run_local.sh", "run_cluster.sh"):
        mine = (Path("ours") / name).read_text()
        for their_id, our_id in zip(theirs["_pset_id"], ours["_pset_id"]):
            mine = mine.replace(our_id, their_id)
        assert mine.split() == (Path("theirs") / name).read_text().split(), name
    for their_id, our_id in zip(theirs["_pset_id"], ours["_pset_id"]):
        for name in ("input.txt", "jobscript_local", "jobscript_cluster"):
            text = (Path("ours") / our_id / name).read_text().replace(our_id, their_id)
            assert text == (Path("theirs") / their_id / name).read_text(), name


def test_prep_batch_refuses_a_missing_template_folder(in_tmp):
    with pytest.raises(FileNotFoundError, match="templates"):
        ps.prep_batch(ps.plist("a", [1]))
    with pytest.raises(ps.PsweepError, match="template_mode='x'"):
        ps.prep_batch(ps.plist("a", [1]), template_mode="x")


def test_prep_batch_git_commits_the_jobs_and_scripts(templates):
    in_tmp = templates.parent
    git(in_tmp, "init", "-q")
    git(in_tmp, "add", "templates")
    git(in_tmp, "commit", "-qm", "templates")
    df = ps.prep_batch([{"a": 1, "b": "x"}], git=True)
    assert git(in_tmp, "status", "--porcelain") == ""
    committed = git(in_tmp, "show", "--name-only", "--format=", "HEAD~1", "HEAD")
    assert "calc/run_local.sh" in committed and "calc/results.pk" in committed
    assert df["_git_commit"].notna().all()
