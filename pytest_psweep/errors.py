"""The one exception users see when they asked for something wrong."""

from __future__ import annotations


class PsweepError(Exception):
    """A mistake in params, a sweep, a calc dir or a database file.

    The message says what is wrong, where (sweep, pset, key or file) and what to do.
    """


class PsweepHashError(PsweepError, TypeError):
    """A pset value ``pset_hash`` cannot hash (psweep's name, a TypeError there too)."""
