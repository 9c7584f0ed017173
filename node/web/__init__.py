"""The responders' dashboard (SPEC §5.5): server-rendered pages on the local
listener under ``/ui``, tested in headless Chromium."""

from node.web.views import PREFIX, add_routes

__all__ = ["PREFIX", "add_routes"]
