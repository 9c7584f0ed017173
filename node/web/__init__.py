"""The responders' dashboard (SPEC §5.5): server-rendered pages on the local
listener under ``/ui``, tested in headless Chromium.

``PREFIX`` and ``add_routes`` load the pages (aiohttp, Jinja2) on first use, so
the command line can say things from the dashboard's catalogs (``node.web.i18n``,
``node.web.labels``) without loading the dashboard."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from node.web.views import PREFIX, add_routes

__all__ = ["PREFIX", "add_routes"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'node.web' has no attribute {name!r}")
    from node.web import views

    return getattr(views, name)
