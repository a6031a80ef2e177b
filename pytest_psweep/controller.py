"""The controller: the one process of a pytest session that owns the calc dirs.

Serially that is the pytest process; under xdist the controller, which runs no
items. Three plugins work there, as xdist splits its ``DSession`` from its
reporter: the ``RowSink`` (rows into journals and databases), the ``Reporter``
(what the session says) and, under xdist, the ``XdistBridge`` (what workers are
handed and what is heard of them).
"""

from __future__ import annotations

import pytest

from . import integrations
from .bridge import XdistBridge
from .provenance import provenance
from .reporter import Reporter
from .settings import Options, State
from .sink import RowSink


def register(config: pytest.Config, options: Options, state: State) -> None:
    """Register the controller's plugins of a session with --psweep."""
    state.provenance = provenance(config.rootpath)
    if options.shard is not None:
        state.provenance["_shard"] = options.shard.label
    state.provenance.update(integrations.randomly_seed(config))
    sink = RowSink(config, options, state)
    sink.reporter = Reporter(config, options, sink)
    plugins = config.pluginmanager
    plugins.register(sink, "psweep-sink")
    plugins.register(sink.reporter, "psweep-reporter")
    if plugins.hasplugin("xdist"):
        plugins.register(XdistBridge(config, options, state, sink), "psweep-xdist")
    if options.html and plugins.hasplugin("html"):
        plugins.register(integrations.HtmlColumns(), "psweep-html")
