"""One row per local API route, and the one way a handler reads its request body.

Every route module (``node.response.api``, ``node.allies.api``, ``node.pairing``,
…) exports ``ROUTES``, a tuple of ``Route``: method, path, handler, the typed
models of what it takes and answers (``node.contract``), and a summary.
``node.local_api`` registers the tables and ``node.openapi`` describes the same
tables, so a route cannot be served without being described or described
without being served (``tests/node/test_contract.py`` checks both ways).

``read_body`` decodes a JSON body straight into the route's model (msgspec
validates in C as it parses): anything that does not fit is refused as
``invalid-input`` with a message that names the field, never a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from node.errors import Refused
from node.service import NodeService

SERVICE: web.AppKey[NodeService] = web.AppKey("service", NodeService)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=msgspec.Struct)
JSON = "application/json"
_JSON_TYPE = re.compile(r"^application/(?:[\w.+-]+?\+)?json$")
_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<where>[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")


@dataclass(frozen=True)
class Route:
    """One route of the local API: what serves it and what it takes and answers.

    ``body`` is the request model (``read_body``), ``answer`` the model of a
    JSON answer (or ``None`` for one not described field by field); ``media``
    is the answer's content type when it is not JSON. ``path_params``,
    ``query`` and ``headers`` are models whose fields are the route's
    parameters. ``public`` routes need no API token; ``refusals`` are the
    statuses it may answer besides 400 and 401."""

    method: str
    path: str
    handler: Handler
    summary: str
    body: type[msgspec.Struct] | None = None
    answer: Any = None
    status: int = 200
    media: str = JSON
    path_params: type[msgspec.Struct] | None = None
    query: type[msgspec.Struct] | None = None
    headers: type[msgspec.Struct] | None = None
    public: bool = False
    refusals: tuple[int, ...] = ()


def service(request: web.Request) -> NodeService:
    return request.app[SERVICE]


async def read_body(request: web.Request, model: type[M]) -> M:
    """The request's JSON body as ``model``, or ``Refused`` naming what is wrong."""
    if not _JSON_TYPE.match(request.content_type):
        raise Refused("the request body must be JSON (Content-Type: application/json)", code="bad-json")
    raw = await request.read()
    try:
        return msgspec.json.decode(raw, type=model)
    except msgspec.ValidationError as exc:
        raise Refused(refusal_text(str(exc)), code=_code(str(exc))) from None
    except msgspec.DecodeError:
        raise Refused("the request body must be JSON", code="bad-json") from None


def refusal_text(message: str) -> str:
    """msgspec's ``Expected `str`, got `int` - at `$.headline``` as a person
    reads it: ``headline: expected `str`, got `int```."""
    found = _AT.match(message)
    assert found is not None  # the pattern matches any text
    what, where = found["what"], (found["where"] or "").lstrip(".")
    missing = _MISSING.match(what)
    if missing:
        return f"{where + '.' if where else ''}{missing['name']}: required"
    if not where:
        return "the request body must be a JSON object" if "`object`" in what else what
    return f"{where}: {what[:1].lower()}{what[1:]}"


def _code(message: str) -> str:
    """A body that is not an object at all is ``bad-json``; a field that does not fit, ``invalid-input``."""
    return (
        "bad-json"
        if message.startswith("Expected `object`") and " - at `$" not in message
        else "invalid-input"
    )


def given(model: msgspec.Struct) -> dict[str, Any]:
    """The fields a client gave (not null), as plain JSON values: what the use
    cases that read a person's input as a mapping (``node.incidents``, the
    subscriptions desk) take, so an absent field means their default as before."""
    doc: dict[str, Any] = msgspec.to_builtins(model)
    return {k: v for k, v in doc.items() if v is not None}
