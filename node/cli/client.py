"""The CLI's client for the running node's local API (token auth, JSON).

Commands that change the mesh (send an alert, pair) go through the running node
so there is one writer; the CLI only needs the home for the address and token.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from node.config import TOKEN_FILE, ConfigError, load, parse_hostport

TIMEOUT_S = 30


class NodeUnavailable(ConfigError):
    """The node is not running (or not reachable on its local address)."""


class ApiError(ConfigError):
    """The node refused the request; the message is the node's explanation and
    ``code`` its stable machine code (``not-found``, ``not-author``, …; see
    docs/operators.md), for scripts and tests that branch on the reason."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class LocalClient:
    def __init__(self, home: Path) -> None:
        config = load(home)
        host, port = parse_hostport(config.local, "local")
        self.base = f"http://{host}:{port}"
        self.token = (home / TOKEN_FILE).read_text("ascii").strip()  # as node.provision.api_token, without its TLS imports
        self.timeout: float = TIMEOUT_S  # seconds; longer for a request that waits on peers (wipe --alert)

    def get(self, path: str, **params: Any) -> Any:
        query = "&".join(
            f"{k}={urllib.parse.quote(str(v))}" for k, v in params.items() if v not in (None, "")
        )
        return self._request("GET", path + (f"?{query}" if query else ""), None)

    def post(self, path: str, payload: dict[str, Any] | None = None) -> Any:
        return self._request("POST", path, payload or {})

    def delete(self, path: str) -> Any:
        return self._request("DELETE", path, None)

    def get_text(self, path: str) -> str:
        """A non-JSON document (CAP XML, Atom) as text."""
        raw: bytes = self._request("GET", path, None, as_json=False)
        return raw.decode("utf-8")

    def _request(self, method: str, path: str, payload: dict[str, Any] | None, as_json: bool = True) -> Any:
        data = json.dumps(payload).encode("utf-8") if payload is not None else None
        # What people type into a path (names with spaces, accents, pasted ids) is
        # percent-encoded here once, so no argument can make an invalid URL;
        # already-encoded text (a quoted segment, a query) passes unchanged.
        safe_path = urllib.parse.quote(path, safe="/?&=%:+,@")
        request = urllib.request.Request(  # noqa: S310 - the URL is the node's own http://127.0.0.1 address
            self.base + safe_path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:  # noqa: S310
                body = resp.read()
                return json.loads(body or b"null") if as_json else body
        except urllib.error.HTTPError as exc:
            raise ApiError(*_refusal(exc)) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            raise NodeUnavailable(
                f"cannot reach the node at {self.base} ({getattr(exc, 'reason', exc)}); is `amparo run` running?"
            ) from None


def _refusal(exc: urllib.error.HTTPError) -> tuple[str, str]:
    """(message, code) from the node's ``{"error": {"code", "message"}}``."""
    try:
        error = json.loads(exc.read())["error"]
        return str(error["message"]), str(error["code"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {exc.code}", f"http-{exc.code}"
