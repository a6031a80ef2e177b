"""A study of three varied parameters: numerical quadrature, method x integrand x n.

Three rules (midpoint, trapezoid, Simpson) integrate three functions over their
interval with n intervals, n from 1 to 100000. Simpson's rule needs an even n: for
odd n it raises a ValueError (the same message each time, n aside); a result
farther than 0.1 from the exact integral fails its assert.

    $ pytest --psweep study_quadrature.py --psweep-calc-dir=calc/quadrature -n 2
    $ psweep report calc/quadrature -o quadrature.html

Afterwards: 3 x 3 x 21 = 189 rows, 12 failed by the ValueError and 8 by the
assert (pytest exits 1: the failures are part of the study; its name keeps it out of
the all-at-once run of this folder). The report draws err against n on log-log axes, a line per method and a
panel per integrand, and groups the failures by their message.
"""

import math

import pytest_psweep as ps

INTEGRANDS = {  # name: (f, a, b, exact integral)
    "sin": (math.sin, 0.0, math.pi, 2.0),
    "exp": (math.exp, 0.0, 1.0, math.e - 1.0),
    "sqrt": (math.sqrt, 0.0, 1.0, 2.0 / 3.0),
}


def midpoint(f, a, b, n):
    h = (b - a) / n
    return h * sum(f(a + (i + 0.5) * h) for i in range(n))


def trapezoid(f, a, b, n):
    h = (b - a) / n
    return h * (0.5 * f(a) + sum(f(a + i * h) for i in range(1, n)) + 0.5 * f(b))


def simpson(f, a, b, n):
    if n % 2:
        raise ValueError(f"simpson needs an even number of intervals, got {n}")
    h = (b - a) / n
    odd = sum(f(a + i * h) for i in range(1, n, 2))
    even = sum(f(a + i * h) for i in range(2, n, 2))
    return h / 3 * (f(a) + 4 * odd + 2 * even + f(b))


METHODS = {"midpoint": midpoint, "trapezoid": trapezoid, "simpson": simpson}
N = [1, 2, 3, 4, 5, 7, 8, 10, 16, 20, 32, 50, 64, 100, 128, 256, 1000, 1024, 4096, 10000, 100000]

params = ps.pgrid(
    ps.plist("method", list(METHODS)),
    ps.plist("integrand", list(INTEGRANDS)),
    ps.plist("n", N),
)


@ps.sweep(params)
def sweep_quadrature(pset):
    f, a, b, exact = INTEGRANDS[pset["integrand"]]
    value = METHODS[pset["method"]](f, a, b, pset["n"])
    err = abs(value - exact)
    assert err < 0.1, f"{pset['method']} is off by {err:.3g} with n={pset['n']}"
    return {"value": value, "err": err}
