"""A regression sweep: CI fails when results drift from a baseline kept in git.

    $ pytest --psweep sweep_regression.py --psweep-calc-dir=calc/regression --psweep-baseline=baselines/regression.json

Each pset's results are compared with its latest passed row (same sweep, same
``_pset_hash``) in ``baselines/regression.json``; numbers within ``rtol`` (here set
per sweep), arrays element-wise. Change the model and the item fails with a table of
key, baseline, new value and difference. To accept new results as the baseline:

    pytest --psweep sweep_regression.py --psweep-calc-dir=calc/regression
    psweep export calc/regression baselines/regression.json
"""

import numpy as np

import pytest_psweep as ps


@ps.sweep(ps.grid(damping=[0.0, 0.1, 0.5], omega=[1.0, 2.0]), rtol=1e-9)
def sweep_damped_oscillator(pset):
    """Position of a damped oscillator at a few times (closed-form solution)."""
    zeta, omega = pset["damping"], pset["omega"]
    t = np.linspace(0, 5, 6)
    omega_d = omega * np.sqrt(1 - zeta**2)
    x = np.exp(-zeta * omega * t) * np.cos(omega_d * t)
    return {"x": x, "x_end": float(x[-1]), "omega_d": float(omega_d)}
