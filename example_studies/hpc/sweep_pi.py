"""Monte Carlo estimates of pi: how the error falls with the number of samples.

A study large enough to spread over a cluster: 4 sample sizes x 50 seeds. Run it
from this folder (see README.md), e.g. on one machine:

    pytest --psweep -n 2
    psweep show calc --sort n seed
"""

import math
import random

import pytest_psweep as ps

params = ps.pgrid(
    ps.plist("n", [1_000, 10_000, 100_000, 300_000]),
    ps.plist("seed", range(50)),
)


@ps.sweep(params)
def sweep_pi(pset):
    rng = random.Random(pset["seed"])
    n = pset["n"]
    inside = sum(rng.random() ** 2 + rng.random() ** 2 <= 1.0 for _ in range(n))
    estimate = 4.0 * inside / n
    return {"pi": estimate, "error": abs(estimate - math.pi)}
