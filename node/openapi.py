"""The OpenAPI 3.1 description of the local API, served at ``/api/v1/openapi.json``.

Written as data next to the routes it describes; ``tests/e2e/test_openapi.py``
checks every route is described and runs schemathesis against a real node so a
generated request can never produce a server error.
"""

from __future__ import annotations

from typing import Any

from node.errors import CODES
from protocol import CERTAINTIES, EVENTS, SCOPES, SEVERITIES, STATUSES, URGENCIES

_ERROR = {
    "description": "Refused; `error.code` says why for a program, `error.message` for a person",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_HEX_ID = {"type": "string", "pattern": "^[0-9a-f]{8,64}$"}


def _ok(schema: dict[str, Any] | None = None, description: str = "OK") -> dict[str, Any]:
    body = {"schema": schema or {"type": "object"}}
    return {"description": description, "content": {"application/json": body}}


def _json_body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": {**responses, "400": _ERROR, "401": _ERROR}, **extra}


ALERT_INPUT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "headline": {"type": "string", "maxLength": 160},
        "regions": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 32},
        "severity": {"enum": list(SEVERITIES)},
        "urgency": {"enum": list(URGENCIES)},
        "certainty": {"enum": list(CERTAINTIES)},
        "event": {"enum": list(EVENTS)},
        "scope": {"enum": list(SCOPES)},
        "status": {"enum": list(STATUSES)},
        "exercise": {"type": "boolean"},
        "description": {"type": "string", "maxLength": 8000},
        "instruction": {"type": "string", "maxLength": 2000},
        "contact": {"type": "string", "maxLength": 500},
        "language": {"type": "string"},
        "expires": {"type": "string", "description": "e.g. 6h, 2d"},
        "to": {"type": "array", "items": {"type": "string"}, "description": "recipient peers (restricted)"},
    },
}


# A peer as `NodeService.peer_json` writes it; `name` and the addresses are the peer's own words.
PEER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "self-chosen by the peer"},
        "key": {"type": "string"},
        "fingerprint": {"type": "string"},
        "addresses": {"type": "array", "items": {"type": "string"}},
        "tls_fingerprint": {"type": "string"},
        "last_seen": {"type": ["integer", "null"], "description": "ms since the epoch"},
        "up": {"type": "boolean"},
        "cut_off": {"type": ["string", "null"], "description": "why this node refuses the peer now"},
        "mark": {"type": "integer"},
        "status": {"type": "string"},
        "last_failure": {
            "description": "the last failed call to the peer since this node started, or null; "
            "`text` ends by saying whose side failed: `(local side)` or `(remote side)`",
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "properties": {"at": {"type": "integer"}, "text": {"type": "string"}},
                    "required": ["at", "text"],
                },
            ],
        },
    },
    "required": ["name", "key", "fingerprint", "up", "last_failure"],
}


# The ``peers`` list that ``/api/v1/peers`` and ``/api/v1/status`` share (one peer_json).
_WITH_PEERS = {
    "type": "object",
    "properties": {"peers": {"type": "array", "items": {"$ref": "#/components/schemas/Peer"}}},
    "required": ["peers"],
}


def _paths() -> dict[str, Any]:
    alert_id = [{"name": "id", "in": "path", "required": True, "schema": _HEX_ID}]
    return {
        "/healthz": {"get": {"summary": "Liveness", "security": [], "responses": {"200": _ok()}}},
        "/api/v1/openapi.json": {
            "get": {"summary": "This description", "security": [], "responses": {"200": _ok()}}
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (text format)",
                "security": [],
                "responses": {
                    "200": {
                        "description": "text/plain",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/api/v1/status": {"get": _op("Node health for humans and monitors", {"200": _ok(_WITH_PEERS)})},
        "/api/v1/id": {"get": _op("This node's name, keys and fingerprints", {"200": _ok()})},
        "/api/v1/alerts": {
            "get": _op(
                "Alerts held by this node, newest first",
                {"200": _ok()},
                parameters=[
                    {"name": "region", "in": "query", "schema": {"type": "string"}},
                    {"name": "since", "in": "query", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                ],
            ),
            "post": _op(
                "Sign and broadcast a new alert", {"201": _ok()}, requestBody=_json_body(ALERT_INPUT)
            ),
        },
        "/api/v1/alerts/{id}": {
            "get": _op("One alert with its timeline", {"200": _ok(), "404": _ERROR}, parameters=alert_id)
        },
        "/api/v1/alerts/{id}/update": {
            "post": _op(
                "Update an alert this node sent",
                {"201": _ok(), "403": _ERROR, "404": _ERROR},
                parameters=alert_id,
                requestBody=_json_body(ALERT_INPUT),
            )
        },
        "/api/v1/alerts/{id}/cancel": {
            "post": _op(
                "Cancel an alert this node sent",
                {"201": _ok(), "403": _ERROR, "404": _ERROR},
                parameters=alert_id,
                requestBody=_json_body({"type": "object", "properties": {"reason": {"type": "string"}}}),
            )
        },
        "/api/v1/alerts/{id}/ack": {
            "post": _op(
                "Acknowledge an alert for this organization (sealed like the alert)",
                {"201": _ok(), "404": _ERROR},
                parameters=alert_id,
                requestBody=_json_body(
                    {
                        "type": "object",
                        "properties": {
                            "state": {"enum": ["responding", "seen", "unable"]},
                            "note": {"type": "string"},
                            "by": {"type": "string"},
                        },
                    }
                ),
            )
        },
        "/api/v1/stream": {
            "get": _op(
                "Server-sent events, one per alert; resume with Last-Event-ID",
                {
                    "200": {
                        "description": "text/event-stream",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    }
                },
                parameters=[
                    {"name": "region", "in": "query", "schema": {"type": "string"}},
                    {"name": "severity", "in": "query", "schema": {"enum": list(SEVERITIES)}},
                    {"name": "exercises", "in": "query", "schema": {"enum": ["0", "1"]}},
                    {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}},
                ],
            )
        },
        "/api/v1/keys/compromised": {
            "post": _op(
                "Declare this node's key compromised (irreversible)",
                {"201": _ok(), "409": _ERROR},
                requestBody=_json_body(
                    {
                        "type": "object",
                        "properties": {"confirm": {"type": "string"}, "reason": {"type": "string"}},
                    }
                ),
            )
        },
        "/api/v1/keys/rotate": {
            "post": _op(
                "Publish a key rotation built by `amparo keys rotate` and sign with the new key at once: "
                "`record` is the new key's node record with the old key's hand-over (hex), `seed` the "
                "new signing seed sealed (SealedBox) to this node's X25519 key (hex)",
                {"201": _ok(), "400": _ERROR, "409": _ERROR},
                requestBody=_json_body(
                    {
                        "type": "object",
                        "properties": {"record": {"type": "string"}, "seed": {"type": "string"}},
                        "required": ["record", "seed"],
                    }
                ),
            )
        },
        "/api/v1/peers": {"get": _op("Peers with fingerprints and state", {"200": _ok(_WITH_PEERS)})},
        "/api/v1/peers/invite": {
            "post": _op(
                "Make a one-time invite token",
                {"200": _ok()},
                requestBody=_json_body({"type": "object", "properties": {"expires": {"type": "string"}}}),
            )
        },
        "/api/v1/peers/accept": {
            "post": _op(
                "Pair using another node's invite token",
                {"201": _ok()},
                requestBody=_json_body(
                    {
                        "type": "object",
                        "properties": {"token": {"type": "string"}, "verified": {"type": "boolean"}},
                        "required": ["token"],
                    }
                ),
            )
        },
        "/api/v1/peers/{peer}": {
            "delete": _op(
                "Stop peering and revoke this node's vouch",
                {"200": _ok(), "404": _ERROR},
                parameters=[{"name": "peer", "in": "path", "required": True, "schema": {"type": "string"}}],
            )
        },
    }


def _obj(**props: Any) -> dict[str, Any]:
    return _json_body({"type": "object", "properties": props})


_NAME = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
_ID = [{"name": "id", "in": "path", "required": True, "schema": _HEX_ID}]
_DRILL = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
_S = {"type": "string"}

RESPONSE_PATHS: dict[str, Any] = {
    "/api/v1/responders": {
        "get": _op("Local responders (no secrets)", {"200": _ok()}),
        "post": _op(
            "Add or replace a responder",
            {"201": _ok()},
            requestBody=_obj(
                name=_S,
                role={"enum": ["admin", "responder", "viewer"]},
                channels={"type": "array", "items": _S},
                password=_S,
                drills={"type": "boolean"},
                lang={"enum": ["en", "es"], "description": "the language of this person's pages"},
            ),
        ),
    },
    "/api/v1/responders/{name}": {"delete": _op("Remove a responder", {"200": _ok()}, parameters=_NAME)},
    "/api/v1/drills": {
        "get": _op("The running drill (or null) and the reports kept, newest first", {"200": _ok()}),
        "post": _op(
            "Run a drill scenario inside the node: its exercise alerts on time, then the report",
            {"202": _ok(description="Running; `id` names it for GET /api/v1/drills/{id}")},
            requestBody=_json_body(
                {
                    "type": "object",
                    "required": ["scenario"],
                    "properties": {
                        "scenario": {"type": "string", "description": "the scenario's TOML text"},
                        "wait": {"type": "string", "description": "replaces the scenario's wait, e.g. 30s"},
                    },
                }
            ),
        )
    },
    "/api/v1/drills/{id}": {
        "get": _op(
            "A drill's progress while it runs (`state` running), then its report (done or failed)",
            {"200": _ok(), "404": _ERROR},
            parameters=_DRILL,
        )
    },
    "/api/v1/drills/{id}/finish": {
        "post": _op(
            "Stop waiting for acknowledgements: the report is written once the last step is sent",
            {"202": _ok(), "404": _ERROR},
            parameters=_DRILL,
        )
    },
    "/api/v1/oncall": {"get": _op("Who is on call now, upcoming shifts, gaps, hand-overs", {"200": _ok()})},
    "/api/v1/oncall/shifts": {
        "post": _op(
            "Schedule a shift (max 24 h unless override)",
            {"201": _ok()},
            requestBody=_obj(
                responder=_S, start=_S, hours={"type": "number"}, backup=_S, override={"type": "boolean"}
            ),
        )
    },
    "/api/v1/oncall/handoff": {
        "post": _op(
            "Hand over the on-call role now; both people are notified on their channels"
            " (the outcome is on the hand-over record in GET /api/v1/oncall)",
            {"201": _ok()},
            requestBody=_obj(to=_S, note=_S),
        )
    },
    "/api/v1/alerts/{id}/note": {
        "post": _op(
            "Add a debrief note to an alert's timeline",
            {"201": _ok(), "404": _ERROR},
            parameters=_ID,
            requestBody=_obj(text=_S, author=_S),
        )
    },
}

_TOKEN = [{"name": "token", "in": "path", "required": True, "schema": _S}]
_HTML = {"description": "HTML page", "content": {"text/html": {"schema": _S}}}
_PLAN = [{"name": "id", "in": "path", "required": True, "schema": _S}]
CHECKIN_PATHS: dict[str, Any] = {
    "/api/v1/checkins": {
        "get": _op("Check-in plans", {"200": _ok()}),
        "post": _op(
            "Start a check-in plan; returns the phone link once",
            {"201": _ok()},
            requestBody=_obj(
                who=_S,
                region=_S,
                note=_S,
                grace=_S,
                to={"type": "array", "items": _S},
                **{"in": _S, "every": _S},
            ),
        ),
    },
    "/api/v1/checkins/{id}/ok": {"post": _op("Check in", {"200": _ok()}, parameters=_PLAN)},
    "/api/v1/checkins/{id}/stop": {"post": _op("End a plan", {"200": _ok()}, parameters=_PLAN)},
    "/checkin/{token}": {
        "get": {
            "summary": "The one-tap phone page",
            "security": [],
            "parameters": _TOKEN,
            "responses": {"200": _HTML, "404": {"description": "unknown link"}},
        },
        "post": {
            "summary": "Check in from the phone page",
            "security": [],
            "parameters": _TOKEN,
            "responses": {"200": _HTML, "404": {"description": "unknown link"}},
        },
    },
}

_CHANNEL = {
    "type": "object",
    "properties": {"kind": {"enum": ["webhook", "apprise"]}, "url": {"type": "string", "maxLength": 2000}},
    "required": ["kind", "url"],
}
SUBSCRIPTION_INPUT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "regions": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 64},
        "channel": _CHANNEL,
        "min_severity": {"enum": list(SEVERITIES)},
        "exercises": {"type": "boolean"},
        "scopes": {"type": "array", "items": {"enum": list(SCOPES)}, "minItems": 1},
        "label": {"type": "string", "maxLength": 80},
    },
    "required": ["regions", "channel"],
}
ALLY_PATHS: dict[str, Any] = {
    "/api/v1/subscriptions": {
        "get": _op("Subscriptions and their delivery counts", {"200": _ok()}),
        "post": _op(
            "Subscribe a webhook or Apprise channel to regions (a webhook's signing secret is returned once)",
            {"201": _ok(description="Created")},
            requestBody=_json_body(SUBSCRIPTION_INPUT),
        ),
    },
    "/api/v1/subscriptions/{id}": {
        "delete": _op(
            "Remove a subscription and its pending deliveries",
            {"200": _ok(), "404": _ERROR},
            parameters=_DRILL,
        )
    },
    "/api/v1/drills/{id}/finish": {
        "post": _op(
            "Stop waiting for acknowledgements: the report is written once the last step is sent",
            {"202": _ok(), "404": _ERROR},
            parameters=_DRILL,
        )
    },
    "/api/v1/regions": {
        "get": _op(
            "Find region codes by name in any language",
            {"200": _ok()},
            parameters=[{"name": "q", "in": "query", "required": True, "schema": {"type": "string"}}],
        )
    },
}

_XML = {"application/cap+xml": {"schema": {"type": "string"}}}
_ATOM = {"application/atom+xml": {"schema": {"type": "string"}}}
_NOT_FOUND = {"description": "No such (public) alert or region", "content": _ERROR["content"]}
CAP_PATHS: dict[str, Any] = {
    "/api/v1/alerts/{id}/cap": {
        "get": _op(
            "The alert as an OASIS CAP 1.2 document",
            {"200": {"description": "CAP 1.2 XML", "content": _XML}, "404": _ERROR},
            parameters=[{"name": "id", "in": "path", "required": True, "schema": _HEX_ID}],
        )
    },
    "/api/v1/alerts/import": {
        "post": _op(
            "Re-publish a CAP 1.2 Alert, Update or Cancel from an outside source, signed by this node"
            " (an Update or Cancel must reference a CAP message this node imported)",
            {"201": _ok(description="Created")},
            requestBody=_json_body(
                {
                    "type": "object",
                    "properties": {
                        "cap": {"type": "string", "description": "the CAP XML document"},
                        "region": {"type": "string"},
                        "scope": {"enum": ["public", "members"]},
                        "expires": {"type": "string", "description": "e.g. 6h"},
                    },
                    "required": ["cap"],
                }
            ),
        )
    },
    "/feeds/{region}.atom": {
        "get": {
            "summary": "Atom feed of public alerts for a region (all = everywhere); no token needed",
            "security": [],
            "parameters": [{"name": "region", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "Atom 1.0", "content": _ATOM}, "404": _NOT_FOUND},
        }
    },
    "/feeds/cap/{id}.xml": {
        "get": {
            "summary": "CAP 1.2 document of a public alert (what feed entries link to); no token needed",
            "security": [],
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "CAP 1.2 XML", "content": _XML}, "404": _NOT_FOUND},
        }
    },
}

EXTRA_PATHS: dict[str, Any] = RESPONSE_PATHS | CHECKIN_PATHS | ALLY_PATHS | CAP_PATHS
"""Routes registered by other modules (delivery, CAP, feeds) add their descriptions here."""


def document() -> dict[str, Any]:
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
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {
                                "code": {
                                    "type": "string",
                                    "description": "; ".join(f"`{c}`: {why}" for c, why in CODES.items()),
                                },
                                "message": {"type": "string"},
                            },
                            "required": ["code", "message"],
                        }
                    },
                    "required": ["error"],
                },
                "Peer": PEER,
            },
        },
        "paths": _paths() | EXTRA_PATHS,
    }
