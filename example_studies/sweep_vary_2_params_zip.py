"""Vary two parameters together (zip), with a third held constant.

    $ pytest --psweep sweep_vary_2_params_zip.py --psweep-calc-dir=calc/zip
    $ psweep show calc/zip

Afterwards: two rows, (a=1, name="xx") and (a=2, name="yy"), both with const=1.23.
A constant is a plist of length one. (Not ``b``, as in the other studies: there it
is a number, and one database column should hold one kind of value.)
"""

import pytest_psweep as ps

a = ps.plist("a", [1, 2])
name = ps.plist("name", ["xx", "yy"])
const = ps.plist("const", [1.23])


@ps.sweep(ps.pgrid(zip(a, name), const))
def sweep_zip(pset):
    return {"label": f"{pset['name']}{pset['a'] * pset['const']:.2f}"}
