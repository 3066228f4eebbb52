"""Which tests pytest-xdist's workers may run side by side: all but the live ones.

The tests that start servers (gunicorn, nginx, a browser, RabbitMQ clients: marker ``e2e``) load
the machine and some wait for timeouts, so two at once would make each other slow or flaky. Under
``-n`` they form one unit of work, ``live``, that a single worker runs one after another as without
xdist; every other test is scheduled on its own. What the live tests name (ports, databases,
queues, directories) is per run anyway.

The unit is chosen by path, in the controlling process, which sees node ids only: every file under
``tests/deploy/`` and every ``*_live.py`` (tests/test_xdist_live.py checks that each e2e test is
in one). ``xdist_group`` marks cannot do it: with pytest 9.2 xdist's ``--dist loadgroup`` loses the
group it writes into the node id and spreads the tests anyway (pytest-xdist issue 1386).
"""

from __future__ import annotations

import pytest

LIVE = "live"


def is_live(nodeid: str) -> bool:
    """Whether the test of ``nodeid`` belongs to the ``live`` unit."""
    path = nodeid.split("::", 1)[0]
    return path.startswith("tests/deploy/") or path.endswith("_live.py")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """With ``--dist loadgroup`` (pyproject.toml's default) the live tests are one unit of work."""
    if config.getvalue("dist") != "loadgroup":
        return None  # another distribution asked for by name: xdist's own
    from xdist.scheduler import LoadScopeScheduling

    class LiveTogether(LoadScopeScheduling):
        """xdist's scheduling by scope (a scope's tests go to one worker, in order), with one
        scope for all the live tests and one per test for the rest."""

        def _split_scope(self, nodeid: str) -> str:
            return LIVE if is_live(nodeid) else nodeid

    return LiveTogether(config, log)
