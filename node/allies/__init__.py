"""Allies (SPEC §5.4): subscriptions by region, delivery to where people are
(webhooks, Apprise channels, the SSE stream), CAP 1.2 documents and Atom feeds."""
