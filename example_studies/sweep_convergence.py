"""A real study: how fast do explicit ODE solvers converge with the step size?

The harmonic oscillator y'' = -y, y(0) = 1, y'(0) = 0 has the exact solution
y = cos t. We integrate it to T = 2 pi with explicit Euler (order 1), Heun (order 2)
and classical Runge-Kutta (order 4) at step sizes h = T / n and record the error at
T. Theory says error ~ h^p; the plot shows whether p is what the textbook says.

    $ pytest --psweep sweep_convergence.py --psweep-calc-dir=calc/convergence -n 2
    $ python plot_convergence.py calc/convergence convergence.png

Afterwards: 3 methods x 7 step sizes = 21 rows with ``error``, ``h`` and ``steps``;
``convergence.png`` shows error against h on log-log axes with the fitted order of
each method in the legend (1.0, 2.0 and 4.0 come out).
"""

import math

import numpy as np

import pytest_psweep as ps

T = 2 * math.pi


def f(y):
    """y = (position, velocity) of the oscillator."""
    return np.array([y[1], -y[0]])


def step_euler(y, h):
    return y + h * f(y)


def step_heun(y, h):
    k1 = f(y)
    k2 = f(y + h * k1)
    return y + h / 2 * (k1 + k2)


def step_rk4(y, h):
    k1 = f(y)
    k2 = f(y + h / 2 * k1)
    k3 = f(y + h / 2 * k2)
    k4 = f(y + h * k3)
    return y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


STEPPERS = {"euler": step_euler, "heun": step_heun, "rk4": step_rk4}
ORDER = {"euler": 1, "heun": 2, "rk4": 4}

params = ps.pgrid(
    ps.plist("method", list(STEPPERS)),
    ps.plist("steps", [2**k for k in range(5, 12)]),
)


@ps.sweep(params)
def sweep_ode(pset):
    step, n = STEPPERS[pset["method"]], pset["steps"]
    h = T / n
    y = np.array([1.0, 0.0])
    for _ in range(n):
        y = step(y, h)
    error = float(np.abs(y - np.array([math.cos(T), -math.sin(T)])).max())
    assert math.isfinite(error)
    return {"h": h, "error": error, "order": ORDER[pset["method"]]}
