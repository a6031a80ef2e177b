"""Small edges of options and values (issue 21, item 13): each refused with a message
naming what to do, or handled, never a hang or a traceback."""

from __future__ import annotations

import pytest

SWEEP = """
    import pytest_psweep as ps

    @ps.sweep(ps.grid(a=[1, 2]))
    def sweep_a(pset):
        return {"r": pset["a"]}
"""


@pytest.mark.parametrize(
    "option, message",
    [
        ("--psweep-run-id=..", "*--psweep-run-id='..': use letters, digits*not '.' first*"),
        ("--psweep-run-id=.", "*--psweep-run-id='.': use letters*"),
        ("--psweep-run-id=.hidden", "*--psweep-run-id='.hidden': use letters*"),
        ("--psweep-lock-timeout=nan", "*lock timeout 'nan' is not a number of seconds >= 0*"),
        ("--psweep-lock-timeout=-1", "*lock timeout '-1' is not a number of seconds >= 0*"),
    ],
)
def test_options_that_are_no_plain_values_are_refused(pytester, option, message):
    pytester.makepyfile(sweep_a=SWEEP)
    result = pytester.runpytest_subprocess("--psweep", option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert not (pytester.path / "calc").exists()


BAD_REPR = """
    import pytest_psweep as ps

    class Odd:
        def __init__(self, n):
            self.n = n

        def __repr__(self):
            raise ValueError("no repr today")

    @ps.sweep([{"a": 1, "odd": Odd(1)}, {"a": 2, "odd": Odd(2)}])
    def sweep_odd(pset):
        return {"r": pset["a"]}
"""


def test_a_parameter_whose_repr_raises_names_sweep_and_pset(pytester):
    pytester.makepyfile(sweep_odd=BAD_REPR)
    result = pytester.runpytest_subprocess("--psweep")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error
    result.stdout.fnmatch_lines(
        [
            "*sweep sweep_odd.py::sweep_odd: pset 0 (counting from 0), parameter 'odd': "
            "repr() of its Odd raised ValueError: no repr today; *__repr__*"
        ]
    )
    assert "Traceback" not in result.stdout.str()
