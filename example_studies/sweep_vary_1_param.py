"""Vary one parameter: the smallest study.

    $ pytest --psweep sweep_vary_1_param.py --psweep-calc-dir=calc/vary_1_param
    $ psweep show calc/vary_1_param

Afterwards: three rows, one per value of ``a``, each with ``result`` and the
book-keeping columns (``_run_id``, ``_pset_id``, ``_pset_hash``, ...).
"""

import math

import pytest_psweep as ps


@ps.sweep(ps.plist("a", [1, 2, 3]))
def sweep_vary_1_param(pset):
    # the returned dict is merged into the pset's row
    return {"result": math.sqrt(pset["a"])}
