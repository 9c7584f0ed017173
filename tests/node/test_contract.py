"""The local API's contract, without a node process: every route the listener
registers is in the generated OpenAPI document and every described operation is
registered (the dashboard's HTML pages are left out on purpose, by name); a body
that breaks a model is refused with 400 and a message naming the field; the
models take their limits from ``protocol/``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from node import contract, openapi
from node.config import TOKEN_FILE, Config
from node.local_api import api_routes, make_app
from node.routes import refusal_text
from protocol.alert import MAX_AREAS, MAX_HEADLINE, SEVERITIES
from protocol.regions import MAX_REGION_CHARS

TOKEN = "contract-test-token"

# The dashboard (node/web/): HTML pages for people behind a session cookie, tested
# in a browser (tests/browser), deliberately not in the JSON API's description.
# A page added there is added here, so nothing leaves the document by accident.
UNDOCUMENTED = {
    ("GET", "/ui"),
    ("GET", "/ui/"),
    ("GET", "/ui/login"),
    ("POST", "/ui/login"),
    ("POST", "/ui/logout"),
    ("GET", "/ui/alerts"),
    ("GET", "/ui/stream"),
    ("GET", "/ui/regions"),
    ("GET", "/ui/alerts/{id}"),
    ("GET", "/ui/alerts/{id}/responses"),
    ("GET", "/ui/alerts/{id}/receipts"),
    ("GET", "/ui/alerts/{id}/item"),
    ("GET", "/ui/alerts/{id}/cap"),
    ("POST", "/ui/alerts/{id}/update"),
    ("POST", "/ui/alerts/{id}/cancel"),
    ("POST", "/ui/alerts/{id}/ack"),
    ("POST", "/ui/alerts/{id}/note"),
    ("GET", "/ui/compose"),
    ("POST", "/ui/compose"),
    ("GET", "/ui/proposals"),
    ("POST", "/ui/proposals/{id}/endorse"),
    ("POST", "/ui/proposals/{id}/object"),
    ("GET", "/ui/oncall"),
    ("POST", "/ui/oncall/handoff"),
    ("GET", "/ui/checkins"),
    ("POST", "/ui/checkins"),
    ("POST", "/ui/checkins/{id}/stop"),
    ("GET", "/ui/peers"),
    ("GET", "/ui/drills"),
    ("POST", "/ui/drills"),
    ("GET", "/ui/static"),  # the static files (aiohttp names the resource by its prefix)
}


def _registered(app: web.Application) -> set[tuple[str, str]]:
    return {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None and r.method != "HEAD"  # aiohttp adds HEAD to every GET
    }


def _described(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}


def _service(home: Path) -> Any:
    (home / TOKEN_FILE).write_text(TOKEN, "ascii")
    return SimpleNamespace(config=Config(name="contract"), home=home)


def test_every_route_is_described_and_every_description_is_served(tmp_path: Path) -> None:
    registered = _registered(make_app(_service(tmp_path)))
    described = _described(openapi.document(api_routes()))
    assert registered - UNDOCUMENTED - described == set(), "served but not described"
    assert described - registered == set(), "described but not served"
    assert UNDOCUMENTED - registered == set(), "listed as undocumented but no longer served: drop it from the list"
    assert described & UNDOCUMENTED == set()
    assert ("POST", "/api/v1/alerts") in described and ("GET", "/healthz") in described


def test_the_served_document_is_the_generated_one(tmp_path: Path) -> None:
    """The listener serves the document generated from the same tables it registers."""
    import asyncio

    async def fetch() -> dict[str, Any]:
        async with TestClient(TestServer(make_app(_service(tmp_path)))) as client:
            response = await client.get("/api/v1/openapi.json")
            assert response.status == 200
            doc: dict[str, Any] = await response.json()
            return doc

    assert asyncio.run(fetch()) == openapi.document(api_routes())


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(TestServer(make_app(_service(tmp_path)))) as c:
        yield c


async def _refusal(client: TestClient[web.Request, web.Application], path: str, body: Any) -> tuple[int, dict[str, Any]]:
    response = await client.post(path, json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    doc: dict[str, Any] = await response.json()
    return response.status, doc["error"]


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/api/v1/alerts", {"headline": 5, "regions": ["MX-OAX"]}, "headline: expected `str | null`, got `int`"),
        ("/api/v1/alerts", {"headline": "x" * (MAX_HEADLINE + 1)}, f"headline: expected `str` of length <= {MAX_HEADLINE}"),
        ("/api/v1/alerts", {"regions": ["MX-OAX"], "severity": "apocalyptic"}, "severity: invalid enum value 'apocalyptic'"),
        ("/api/v1/alerts", {"regions": ["MX-OAX"] * (MAX_AREAS + 1)}, f"regions: expected `array` of length <= {MAX_AREAS}"),
        ("/api/v1/peers/accept", {"verified": True}, "token: required"),
        ("/api/v1/drills", {"wait": "10m"}, "scenario: required"),
        (
            "/api/v1/subscriptions",
            {"regions": ["MX"], "channel": {"kind": "pigeon", "url": "https://example.org/"}},
            "channel.kind: invalid enum value 'pigeon'",
        ),
        ("/api/v1/oncall/shifts", {"responder": "ana", "hours": True}, "hours: expected `int | float`, got `bool`"),
    ],
)
async def test_a_body_that_breaks_its_model_is_refused_naming_the_field(
    client: TestClient[web.Request, web.Application], path: str, body: dict[str, Any], message: str
) -> None:
    status, error = await _refusal(client, path, body)
    assert (status, error) == (400, {"code": "invalid-input", "message": message})


async def test_a_body_that_is_not_a_json_object_is_bad_json(client: TestClient[web.Request, web.Application]) -> None:
    assert await _refusal(client, "/api/v1/alerts", ["MX-OAX"]) == (
        400,
        {"code": "bad-json", "message": "the request body must be a JSON object"},
    )
    response = await client.post(
        "/api/v1/alerts",
        data=b"{not json",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert response.status == 400
    assert (await response.json())["error"] == {"code": "bad-json", "message": "the request body must be JSON"}


async def test_public_rows_need_no_token_and_the_rest_do(client: TestClient[web.Request, web.Application]) -> None:
    """A row marked public in its table is served without the token; every other API route wants it."""
    health = await client.get("/healthz")
    assert (health.status, await health.json()) == (200, {"ok": True, "name": "contract"})
    refused = await client.get("/api/v1/peers")
    assert refused.status == 401
    assert (await refused.json())["error"]["code"] == "unauthorized"
    public = {(r.method, r.path) for r in api_routes() if r.public}
    assert public == {
        ("GET", "/healthz"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/metrics"),
        ("GET", "/checkin/{token}"),
        ("POST", "/checkin/{token}"),
        ("GET", "/checkin-phone.js"),
        ("GET", "/checkin-phone.css"),
        ("GET", "/checkin-sw.js"),
        ("GET", "/feeds/cap/{id}.xml"),
        ("GET", "/feeds/{region}.atom"),
        ("POST", "/sms/v1/inbound"),  # signed with the gateway key instead (node.response.sms_routes)
    }


def test_limits_come_from_protocol() -> None:
    _, components = contract.schemas([contract.AlertInput])
    props = components["AlertInput"]["properties"]
    assert props["headline"]["anyOf"][0]["maxLength"] == MAX_HEADLINE
    assert props["regions"]["anyOf"][0]["maxItems"] == MAX_AREAS
    assert props["regions"]["anyOf"][0]["items"]["maxLength"] == MAX_REGION_CHARS
    assert set(props["severity"]["anyOf"][0]["enum"]) == set(SEVERITIES)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("Object missing required field `token`", "token: required"),
        ("Expected `str`, got `int` - at `$.channel.url`", "channel.url: expected `str`, got `int`"),
        ("Expected `str` of length <= 10 - at `$.regions[0]`", "regions[0]: expected `str` of length <= 10"),
        ("Expected `object`, got `array`", "the request body must be a JSON object"),
    ],
)
def test_msgspec_messages_are_told_field_first(raw: str, message: str) -> None:
    assert refusal_text(raw) == message


def test_the_real_message_for_a_missing_nested_field() -> None:
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.json.decode(b'{"regions": ["MX"], "channel": {"kind": "webhook"}}', type=contract.SubscriptionInput)
    assert refusal_text(str(caught.value)) == "channel.url: required"
