"""Panels of the status page (``/status/``) that higher apps add: the status app cannot import its
siblings, so they register a title and a function here in ``AppConfig.ready`` (as ``/metrics``
learns of their figures through ``mediastore.metrics.register_scrape``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Row:
    text: str
    bad: bool = False


PanelRows = Callable[[], list[Row]]
_panels: dict[str, tuple[PanelRows, str]] = {}


def register_status_panel(title: str, rows: PanelRows, permission: str) -> None:
    """Show ``title`` on the status page, to users with ``permission``, with the rows ``rows()``
    gives at each view."""
    _panels[title] = (rows, permission)


def status_panels(user) -> list[dict]:
    """``[{"title", "slug", "rows"}]`` of the panels ``user`` may see, in the order registered."""
    return [
        {"title": title, "slug": title.lower().replace(" ", "-"), "rows": rows()}
        for title, (rows, permission) in _panels.items()
        if user.has_perm(permission)
    ]
