"""The one exception users see when they asked for something wrong."""

from __future__ import annotations


class PsweepError(Exception):
    """A mistake in params, a sweep, a calc dir or a database file.

    The message says what is wrong, where (sweep, pset, key or file) and what to do.
    """


class PsweepHashError(PsweepError, TypeError):
    """A pset value ``pset_hash`` cannot hash (psweep's name, a TypeError there too)."""


class PsweepDuplicateKeyError(PsweepError, ValueError, AssertionError):
    """A key set twice where each may come once (``merge_dicts(...,
    allow_dup_keys=False)``, a pset built by ``pgrid``). psweep asserts there, so
    ``except AssertionError`` written for psweep still catches it."""
