"""Prometheus metrics for the local listener's ``/metrics`` (text format 0.0.4).

A custom collector reads the node's live counters at scrape time, so there is
no global registry and no second bookkeeping path to drift from ``amparo
status``. Label values are reason codes and peer names — never keys, never
content.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

from node.routes import Route, service
from node.service import NodeService

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class NodeCollector(Collector):
    def __init__(self, service: NodeService) -> None:
        self.service = service

    def collect(self) -> Iterator[Any]:
        s = self.service
        c = s.counters
        yield _counter(
            "amparo_envelopes_received", "Envelopes received from peers or authored here", c.received
        )
        yield _counter("amparo_envelopes_stored", "Envelopes newly stored", c.stored)
        yield _counter("amparo_envelopes_forwarded", "Envelopes pushed to peers and acknowledged", c.pushed)
        yield _counter(
            "amparo_push_failures", "Pushes to peers that failed (retried with backoff)", c.push_failures
        )
        yield _counter(
            "amparo_push_deferred", "Envelopes peers deferred for a rate budget (sent again later)", c.push_deferred
        )
        yield _counter(
            "amparo_push_requests", "Push requests peers answered (a request carries one frame)", c.push_requests
        )
        yield _counter("amparo_reconcile_rounds", "Completed reconciliations with peers", c.reconciles)
        yield _counter(
            "amparo_reconcile_messages", "Reconciliation messages sent (one round trip each)", c.reconcile_messages
        )
        yield _counter("amparo_reconcile_bytes", "Reconciliation messages' bytes, both ways", c.reconcile_bytes)
        yield _counter("amparo_fetch_requests", "Fetch requests sent (one round trip each)", c.fetch_requests)
        yield _counter(
            "amparo_fetch_range_requests", "Of the fetch requests, those asking a range", c.range_fetch_requests
        )
        yield _counter(
            "amparo_fetch_request_bytes",
            "Bytes of the ids fetch requests asked for (by range: the request and the reply's next bound)",
            c.fetch_request_bytes,
        )
        yield _counter("amparo_envelopes_fetched", "Envelopes fetched from peers", c.fetched)
        yield _counter("amparo_envelopes_fetched_bytes", "Bytes of the envelopes fetched", c.fetched_bytes)
        allies = s.allies
        yield _counter("amparo_deliveries", "Alerts delivered to allies' channels", allies.delivered)
        yield _counter(
            "amparo_delivery_failures", "Failed delivery attempts to allies' channels (retried)", allies.failures
        )
        yield _counter("amparo_deliveries_given_up", "Deliveries abandoned after 24 h of failures", allies.gave_up)
        ack = SummaryMetricFamily(
            "amparo_time_to_ack_seconds",
            "Time from one of this node's alerts to an ally's acknowledgement",
            count_value=c.acks_for_ours,
            sum_value=c.ack_seconds,
        )
        yield ack
        rejected = CounterMetricFamily(
            "amparo_rejections", "Envelopes and requests refused, by reason code", labels=["reason"]
        )
        for reason, count in sorted(c.rejected.items()):
            rejected.add_metric([reason], count)
        yield rejected
        peers = s.store.list_peers()
        up = sum(1 for p in peers if s.peer_is_up(p.key))
        yield _gauge("amparo_peers", "Active peers", len(peers))
        yield _gauge("amparo_peers_up", "Peers heard from within the liveness window, with no failed call since", up)
        yield _gauge("amparo_envelopes_held", "Envelopes in the store", s.store.count())
        yield _gauge(
            "amparo_gc_frozen_objects",
            "Objects start-up made, frozen out of the garbage collector's sight (node.runner)",
            gc.get_freeze_count(),
        )
        yield _counter(
            "amparo_gc_full_collections", "Full (generation 2) garbage collections", gc.get_stats()[2]["collections"]
        )
        for name, help_text, value in s.extra_metrics():
            yield _gauge(name, help_text, value)


def _counter(name: str, help_text: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, help_text, value=value)


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


def render(service: NodeService) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(service))
    return generate_latest(registry)


async def serve(request: web.Request) -> web.Response:
    return web.Response(body=render(service(request)), headers={"Content-Type": CONTENT_TYPE})


ROUTES = (Route("GET", "/metrics", serve, "Prometheus metrics (text format)", media="text/plain", public=True),)
