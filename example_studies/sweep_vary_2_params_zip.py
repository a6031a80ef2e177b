"""Vary two parameters together (zip), with a third held constant.

    $ pytest --psweep sweep_vary_2_params_zip.py --psweep-calc-dir=calc/zip
    $ psweep show calc/zip

Afterwards: two rows, (a=1, b="xx") and (a=2, b="yy"), both with const=1.23. A
constant is a plist of length one.
"""

import pytest_psweep as ps

a = ps.plist("a", [1, 2])
b = ps.plist("b", ["xx", "yy"])
const = ps.plist("const", [1.23])


@ps.sweep(ps.pgrid(zip(a, b), const))
def sweep_zip(pset):
    return {"label": f"{pset['b']}{pset['a'] * pset['const']:.2f}"}
