"""Local API routes for allies: subscriptions, their delivery state, and finding
a region code by name."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node import contract as c
from node.allies.delivery import DeliveryDesk
from node.allies.subscriptions import SubscriptionError
from node.contract import MAX_SEARCH_CHARS
from node.errors import Refused
from node.routes import Route, given, read_body, service
from protocol import regions


def allies(request: web.Request) -> DeliveryDesk:
    return service(request).allies


async def list_subscriptions(request: web.Request) -> web.Response:
    return web.json_response({"subscriptions": allies(request).summary()})


async def add_subscription(request: web.Request) -> web.Response:
    wanted = await read_body(request, c.SubscriptionInput)
    sub = allies(request).subscribe(given(wanted))
    doc = sub.public_doc()
    if sub.secret:
        doc["secret"] = sub.secret  # shown once, so the receiver can verify signatures
    return web.json_response(doc, status=201)


async def remove_subscription(request: web.Request) -> web.Response:
    sub_id = request.match_info["id"]
    if not allies(request).unsubscribe(sub_id):
        raise Refused(f"no subscription {sub_id!r}", code="not-found", status=404)
    return web.json_response({"removed": sub_id})


async def search_regions(request: web.Request) -> web.Response:
    text = request.query.get("q", "")
    if not text.strip() or len(text) > MAX_SEARCH_CHARS:
        raise SubscriptionError(f"q: a name or code to look for, at most {MAX_SEARCH_CHARS} characters")
    found = regions.search(text, limit=20)
    return web.json_response({"regions": [{"code": code, "name": name} for code, name in found]})


ROUTES = (
    Route(
        "GET",
        "/api/v1/subscriptions",
        list_subscriptions,
        "Subscriptions and their delivery counts",
        answer=c.Subscriptions,
    ),
    Route(
        "POST",
        "/api/v1/subscriptions",
        add_subscription,
        "Subscribe a webhook or Apprise channel to regions (a webhook's signing secret is returned once)",
        body=c.SubscriptionInput,
        answer=dict[str, Any],
        status=201,
    ),
    Route(
        "DELETE",
        "/api/v1/subscriptions/{id}",
        remove_subscription,
        "Remove a subscription and its pending deliveries",
        answer=c.Removed,
        path_params=c.PlainIdPath,
        refusals=(404,),
    ),
    Route(
        "GET",
        "/api/v1/regions",
        search_regions,
        "Find region codes by name in any language",
        answer=c.Regions,
        query=c.RegionsQuery,
    ),
)
