"""Look before you leap: simulate a run first, then run it for real.

    $ pytest --psweep sweep_simulate.py --psweep-calc-dir=calc/simulate --psweep-simulate
    $ psweep show calc/simulate.simulate --cols a b _outcome
    $ pytest --psweep sweep_simulate.py --psweep-calc-dir=calc/simulate

The simulate run copies only the database to ``calc/simulate.simulate/`` and adds the
rows there without calling the function (no ``result``); its summary says how many
psets are new or already done. The real run writes ``calc/simulate/``.
"""

import time

import pytest_psweep as ps


@ps.sweep(ps.grid(a=[1, 2], b=[0.1, 0.2]))
def sweep_expensive(pset):
    time.sleep(0.2)  # stands for an expensive computation
    return {"result": pset["a"] / pset["b"]}
