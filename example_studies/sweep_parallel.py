"""A parallel run with pytest-xdist: the same database as a serial run, faster.

    $ pytest --psweep sweep_parallel.py --psweep-calc-dir=calc/parallel -n 2
    $ psweep show calc/parallel --cols n primes _exec_host

Each pset runs in a worker process; its row travels back to the controller with the
test report, and only the controller writes the calc dir. One ``_run_id`` for the
whole session.
"""

import pytest_psweep as ps


def count_primes(n):
    sieve = bytearray([1]) * (n + 1)
    sieve[:2] = b"\x00\x00"
    for i in range(2, int(n**0.5) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytearray(len(sieve[i * i :: i]))
    return sum(sieve)


@ps.sweep(ps.plist("n", [10**k for k in range(2, 7)]))
def sweep_parallel(pset):
    return {"primes": count_primes(pset["n"])}
