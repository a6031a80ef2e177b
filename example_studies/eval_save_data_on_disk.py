"""Post-processing of sweep_save_data_on_disk.py: read each pset's file via the database.

python eval_save_data_on_disk.py CALC_DIR
"""

import sys
from pathlib import Path

import numpy as np

import pytest_psweep as ps

calc_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "calc/on_disk")
df = ps.df_read(calc_dir / "results.pk")
df = df[df["_outcome"] == "passed"]
df["mean"] = [np.loadtxt(calc_dir / pset_id / "output.txt").mean() for pset_id in df["_pset_id"]]
print(df[["a", "mean", "_pset_id"]].to_string(index=False))
ps.df_write(df, calc_dir / "results_eval.pk")
