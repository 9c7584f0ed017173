"""The OpenAPI 3.1 description of the local API, served at ``/api/v1/openapi.json``,
generated from the route tables (``node.routes.Route``) and their models
(``node.contract``): nothing here is written by hand but the document's frame.

``tests/node/test_contract.py`` checks that every served route is described and
every description served; ``tests/e2e/test_openapi.py`` runs schemathesis
against a real node so a generated request never produces a server error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec

from node.contract import Error, schemas
from node.routes import JSON, Route

ERROR_REF = {"$ref": "#/components/schemas/Error"}
_PARAM = re.compile(r"{(\w+)}")


def document(routes: Iterable[Route]) -> dict[str, Any]:
    """The description of ``routes`` (the tables ``node.local_api`` registers)."""
    table = list(routes)
    models = [Error, *(m for r in table for m in (r.body, r.answer) if m is not None)]
    refs, components = schemas(models)
    schema_of = dict(zip(map(id, models), refs, strict=True))
    paths: dict[str, Any] = {}
    for route in table:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, schema_of)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Amparo local API",
            "version": "1",
            "description": "The node's local listener (127.0.0.1). Bearer token from the node's api.token file.",
        },
        "servers": [{"url": "/"}],
        "security": [{"token": []}],
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
            "schemas": components,
        },
        "paths": paths,
    }


def _operation(route: Route, schema_of: dict[int, Any]) -> dict[str, Any]:
    error = {"description": Error.__doc__, "content": {JSON: {"schema": ERROR_REF}}}
    answer = (
        schema_of[id(route.answer)]
        if route.answer is not None
        else {"type": "string" if route.media != JSON else "object"}
    )
    responses: dict[str, Any] = {
        str(route.status): {"description": route.summary, "content": {route.media: {"schema": answer}}},
        "400": error,
        **{str(status): error for status in route.refusals},
    }
    op: dict[str, Any] = {"summary": route.summary, "operationId": _operation_id(route)}
    if route.public:
        op["security"] = []
    else:
        responses["401"] = error
    params = _parameters(route)
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": schema_of[id(route.body)]}}}
    op["responses"] = dict(sorted(responses.items()))
    return op


def _parameters(route: Route) -> list[dict[str, Any]]:
    out = []
    for where, model in (("path", route.path_params), ("query", route.query), ("header", route.headers)):
        if model is None:
            continue
        schema = msgspec.json.schema(model)
        body = schema["$defs"][model.__name__]
        for name, prop in body["properties"].items():
            prop = {k: v for k, v in prop.items() if k != "default"}
            if "anyOf" in prop:  # optional: the parameter is left out, never sent as null
                prop = next(p for p in prop["anyOf"] if p.get("type") != "null")
            required = where == "path" or name in body.get("required", ())
            out.append({"name": name, "in": where, "required": required, "schema": prop})
    named = {p["name"] for p in out if p["in"] == "path"}
    missing = set(_PARAM.findall(route.path)) - named
    if missing:
        raise ValueError(f"{route.method} {route.path}: no model for path parameters {sorted(missing)}")
    return out


def _operation_id(route: Route) -> str:
    """``post_api_v1_alerts_id_ack``: unique, since a path takes each method once."""
    return re.sub(r"[^a-z0-9]+", "_", f"{route.method} {route.path}".lower()).strip("_")
