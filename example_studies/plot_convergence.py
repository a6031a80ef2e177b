"""Plot error against step size from the convergence study's database.

    python plot_convergence.py CALC_DIR OUT.png

Reads the database with pandas, fits the observed order p (error ~ h^p) per method
on the smallest half of the step sizes, and draws a log-log plot with matplotlib.
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no screen needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import pytest_psweep as ps  # noqa: E402

calc_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "calc/convergence")
out = Path(sys.argv[2] if len(sys.argv) > 2 else "convergence.png")

df = ps.df_read(calc_dir / "results.pk")
df = df[(df["_sweep"] == "sweep_convergence.py::sweep_ode") & (df["_outcome"] == "passed")]
# a repeated study has several rows per pset: the newest one counts
df = df.sort_values("_pset_seq").drop_duplicates("_pset_hash", keep="last")

fig, ax = plt.subplots(figsize=(6, 4.5))
for method, rows in df.groupby("method", sort=False):
    rows = rows.sort_values("h")
    small = rows.iloc[: max(2, len(rows) // 2)]
    order = np.polyfit(np.log(small["h"]), np.log(small["error"]), 1)[0]
    print(f"{method}: observed order {order:.2f} (theory {int(rows['order'].iloc[0])})")
    ax.loglog(rows["h"], rows["error"], "o-", label=f"{method}: p = {order:.2f}")
ax.set_xlabel("step size h")
ax.set_ylabel("max error at t = 2 pi")
ax.set_title("Convergence of explicit ODE solvers (pytest --psweep)")
ax.grid(True, which="both", alpha=0.3)
ax.legend()
fig.tight_layout()
fig.savefig(out, dpi=100)
print(f"wrote {out}")
