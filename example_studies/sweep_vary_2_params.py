"""Vary two parameters in a grid: every a with every b.

    $ pytest --psweep sweep_vary_2_params.py --psweep-calc-dir=calc/vary_2_params -v
    $ psweep show calc/vary_2_params --cols a b result

Afterwards: 3 x 2 = 6 rows. The ids (``sweep_grid[a=1-b=88]``) come from the values,
so ``-m "pset(a=2)"`` runs just the psets with a=2.
"""

import pytest_psweep as ps

a = ps.plist("a", [1, 2, 3])
b = ps.plist("b", [88, 99])


@ps.sweep(ps.pgrid(a, b))  # same as ps.grid(a=[1, 2, 3], b=[88, 99])
def sweep_grid(pset):
    return {"result": pset["a"] * pset["b"]}
