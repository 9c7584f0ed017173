"""Local API routes for allies: subscriptions, their delivery state, and finding
a region code by name."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node.allies.delivery import DeliveryDesk
from node.allies.subscriptions import SubscriptionError
from node.errors import Refused
from node.service import NodeService
from protocol import regions

MAX_SEARCH_CHARS = 100


def add_routes(app: web.Application, service_key: web.AppKey[NodeService], body: Any) -> None:
    def allies(request: web.Request) -> DeliveryDesk:
        return request.app[service_key].allies

    async def list_subscriptions(request: web.Request) -> web.Response:
        return web.json_response({"subscriptions": allies(request).summary()})

    async def add_subscription(request: web.Request) -> web.Response:
        sub = allies(request).subscribe(await body(request))
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
        return web.json_response({"regions": [{"code": c, "name": n} for c, n in found]})

    r = app.router
    r.add_get("/api/v1/subscriptions", list_subscriptions)
    r.add_post("/api/v1/subscriptions", add_subscription)
    r.add_delete("/api/v1/subscriptions/{id}", remove_subscription)
    r.add_get("/api/v1/regions", search_regions)
