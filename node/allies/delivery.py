"""The delivery desk: every new alert this node can read goes to each matching
subscription's channel exactly once, through a persistent outbox.

An alert is queued (subscription, envelope id) in the same moment it is stored,
so a crash or a restart loses nothing; a row leaves the queue only when the
receiver said 2xx (``delivered``) or after ``GIVE_UP_MS`` of failures
(``failed``, visible in ``amparo status``). Failures back off (``RETRY``, the
one policy of ``mesh.backoff``) per subscription, so one dead receiver never delays the others. The
text is rendered from the stored envelope at send time and never written down.

Exactly once while the node runs; at least once across a stop. Successes of
all subscriptions are committed together, ``COMMIT_EVERY_S`` after the first of
them (or at ``COMMIT_MAX``), so a node that crashes between a receiver's 2xx and
that commit sends what was answered in those last moments again after the
restart; a clean stop commits what was answered, and only the requests in
flight then may go again. While the node runs, the desk remembers per
subscription the last row answered and its workers read past it, so nothing
goes twice and no worker waits for a commit (a commit that fails forgets the
mark: those rows go again).
Every request carries an ``Amparo-Delivery`` id, the same on every attempt, for
receivers to deduplicate on (docs/allies.md tells them they must).

Queueing is batched too: while the worker runs, the rows an ingested batch
queues are written in one transaction at the next turn of the event loop, and
the workers of the subscriptions concerned start at once (no polling). The mark
(``MARK_KEY``) never passes a row that is not written yet, so a crash before
that write loses nothing: ``catch_up`` queues it again at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Mapping
from typing import Any

import aiohttp

from mesh.backoff import Backoff
from node.alerts import alert_json, open_row, phone_text
from node.all_clear import FOLLOW_UPS, FollowUp, change_json, describe, notice_text, sender_name
from node.allies import messages
from node.allies.subscriptions import Subscription, SubscriptionError, parse
from node.catalogs import translations
from node.config import public_base
from node.host import Host
from node.outbound import OutboundPolicy, OutboundRefused, apprise_understands, send_apprise
from node.response import sms
from node.store import Delivery, StoredEnvelope
from protocol import Alert, fingerprint

log = logging.getLogger("amparo.allies")

FIRST_RETRY_MS = 2_000
MAX_RETRY_MS = 10 * 60_000
GIVE_UP_MS = 24 * 3600_000
SEND_TIMEOUT_S = 10.0
PARALLEL = 16
IDLE_WAKE_S = 5.0
MARK_KEY = "allies_seq"
BATCH = 64  # rows read from one subscription's queue at a time
WEBHOOK_BATCH = 64  # at most this many alerts in one request to a webhook with ``batch`` on
WEBHOOK_BATCH_BYTES = 512 * 1024  # ... and at most this many bytes (unless one alone is more)
COMMIT_EVERY_S = 0.05  # answered deliveries are written down together, at most this late
COMMIT_MAX = 512  # ... or as soon as this many are waiting
OPENED_CACHE = 1024  # alerts decoded once for all their subscriptions (ids and JSON, in memory only)
NAMES_FOR_S = 1.0  # organization names are looked up again at most this often


# an alert, its JSON, what a follow-up says, who sent it (its organization's name), the JSON encoded
Opened = tuple[Alert, dict[str, Any], FollowUp | None, str, bytes]

# The one backoff policy (mesh.backoff): 2 s, 4 s, 8 s … capped at 10 min, jittered.
RETRY = Backoff(FIRST_RETRY_MS, MAX_RETRY_MS)


class DeliveryDesk:
    def __init__(self, host: Host) -> None:
        self.s = host
        self.subs: dict[str, Subscription] = {}
        self.delivered = 0
        self.failures = 0
        self.gave_up = 0
        self._wake = asyncio.Event()
        self._busy: set[str] = set()
        self._rng = random.Random(os.urandom(16))  # noqa: S311 - jitter only
        self._http: aiohttp.ClientSession | None = None
        self._seen_seq = self._saved_seq = 0
        self._opened: dict[bytes, Opened] = {}
        self._rows: dict[bytes, StoredEnvelope] = {}  # queued just now, not opened yet
        self._gate: asyncio.Semaphore | None = None  # set while ``run`` runs
        self._intake: list[tuple[str, bytes, int]] = []  # queued, written at the loop's next turn
        self._intake_seq = 0  # the highest seq looked at: written, or in ``_intake``
        self._intake_soon = False
        self._answered: list[Delivery] = []  # receivers said 2xx; the commit is still to come
        self._sent: dict[str, int] = {}  # per subscription, the seq of the last row answered while running
        self._commit_timer: asyncio.TimerHandle | None = None
        self._committing: set[asyncio.Task[None]] = set()  # commits under way on worker threads
        self._off_loop = not host.store.single_connection
        self._names_cache: tuple[int, Mapping[bytes, str]] | None = None
        self._policy: tuple[tuple[str, ...], OutboundPolicy] | None = None
        self._url_ok: set[tuple[str, tuple[str, ...]]] = set()  # literal URLs the policy passed
        self._matching: dict[tuple[Any, ...], list[Subscription]] = {}  # what ``wants`` looks at → who wants it
        self.reload()

    @property
    def policy(self) -> OutboundPolicy:
        """The outbound policy of the current setting (parsed again only when it changes)."""
        setting = tuple(self.s.config.allow_private_targets)
        if self._policy is None or self._policy[0] != setting:
            self._policy = (setting, OutboundPolicy.from_setting(setting))
        return self._policy[1]

    def _check_url(self, url: str) -> None:
        """``OutboundPolicy.check_url`` once per URL and setting: what it checks is
        written in the URL (resolved addresses are checked at every connection)."""
        key = (url, tuple(self.s.config.allow_private_targets))
        if key not in self._url_ok:
            self.policy.check_url(url, plaintext=url.startswith("http:"))  # a literal address
            self._url_ok.add(key)

    # -- subscriptions --------------------------------------------------------------------
    def reload(self) -> None:
        self.subs = {}
        self._matching.clear()
        for doc in self.s.store.list_subscriptions():
            try:
                sub = Subscription.from_doc(doc)
            except (KeyError, TypeError, ValueError):
                log.warning("ignoring an unreadable subscription record %r", doc.get("id"))
                continue
            self.subs[sub.id] = sub

    def subscribe(self, doc: dict[str, Any]) -> Subscription:
        if not isinstance(doc, dict):
            raise SubscriptionError("body: a JSON object")
        sub = parse(
            doc, sub_id=os.urandom(6).hex(), secret=os.urandom(32).hex(), now=self.s.clock(), policy=self.policy
        )
        if sub.channel.kind == "apprise":
            _check_apprise(sub.channel.url)
        self.s.store.put_subscription(sub.id, sub.to_doc(), sub.created)
        self.subs[sub.id] = sub
        self._matching.clear()
        log.info("subscription %s added: %s via %s", sub.id, ",".join(sub.regions), sub.channel.kind)
        return sub

    def unsubscribe(self, sub_id: str) -> bool:
        self.subs.pop(sub_id, None)
        self._sent.pop(sub_id, None)
        self._matching.clear()
        return self.s.store.delete_subscription(sub_id)

    # -- intake ---------------------------------------------------------------------------
    def on_stored(self, row: StoredEnvelope) -> None:
        """A new envelope was stored: queue it for every subscription that wants it.
        While the worker runs, the rows wait for the loop's next turn, so a pushed
        batch of alerts is queued in one transaction (module docstring)."""
        wanted = [(sub_id, row.id, row.seq) for sub_id in self._wanted(row)]
        if self._gate is None:  # not running (catch-up before the start, the test grid): at once
            self.s.store.enqueue_deliveries(wanted, self.s.clock())
            self._seen_seq = max(self._seen_seq, row.seq)
            return
        self._intake.extend(wanted)
        if wanted:  # at hand now: the first send needs no read of it
            self._rows[row.id] = row
            if len(self._rows) > OPENED_CACHE:
                self._rows.pop(next(iter(self._rows)))
        self._intake_seq = max(self._intake_seq, row.seq)
        if not self._intake_soon:
            self._intake_soon = True
            asyncio.get_running_loop().call_soon(self._write_intake)

    def _wanted(self, row: StoredEnvelope) -> list[str]:
        if row.type != "alert" or not self.subs:
            return []
        alert = self.s.open(row).body
        if not isinstance(alert, Alert):
            return []  # sealed and not addressed to this node: nothing to tell anyone
        subs = [sub.id for sub in self._matching_subs(alert) if row.received_at >= sub.created]
        if alert.msg_type in FOLLOW_UPS and alert.references:
            subs = self._follow_up_subs(row, alert.references[0], subs)
        return subs

    def _matching_subs(self, alert: Alert) -> list[Subscription]:
        """``Subscription.wants`` of every subscription, remembered for what it
        depends on (a burst's alerts share a few regions: 100 subscriptions are
        judged once per kind of alert, not once per alert)."""
        key = (alert.scope, alert.status, alert.msg_type, alert.severity, tuple(a.region for a in alert.areas))
        if (hit := self._matching.get(key)) is None:
            if len(self._matching) >= OPENED_CACHE:
                self._matching.clear()
            hit = self._matching[key] = [sub for sub in self.subs.values() if sub.wants(alert)]
        return hit

    def _write_intake(self) -> None:
        """Write the queued rows in one transaction, then start the workers of the
        subscriptions that have new work. On a failure the rows stay for the next
        try (the mark waits for them)."""
        self._intake_soon = False
        rows, seq = self._intake, self._intake_seq
        if rows:
            try:
                self.s.store.enqueue_deliveries(rows, self.s.clock())
            except Exception:
                log.exception("could not queue %d deliveries; trying again at the next alert or tick", len(rows))
                return
            self._intake = self._intake[len(rows):]
        self._seen_seq = max(self._seen_seq, seq)
        for sub_id in dict.fromkeys(sub_id for sub_id, _, _ in rows):
            self._start(sub_id)

    def _follow_up_subs(self, row: StoredEnvelope, incident_id: bytes, matching: list[str]) -> list[str]:
        """An update or cancel goes to every subscription that got its alert, even
        when its regions or severity no longer match, and to those the incident
        matches now (an update that raises the severity reaches a ``severe`` one).
        Only the alert's author may change it: another author's goes to nobody."""
        if self.s.store.get(incident_id) is None:
            return matching  # its alert never reached this node: judged on its own
        if self._intake:
            self._write_intake()  # its alert may be among the rows not written yet
        follow = describe(self.s, row)
        if follow is None:
            return []
        got = self.s.store.queued_for(incident_id, list(self.subs))
        now = {s.id for s in self.subs.values() if row.received_at >= s.created and s.wants(follow.after)}
        return [sub_id for sub_id in self.subs if sub_id in got or sub_id in now]

    def catch_up(self) -> None:
        """Queue what arrived after the last saved mark: an alert stored just
        before a crash, but not yet queued, is queued now (queueing twice is
        harmless; the outbox keeps one row per pair)."""
        mark = int(self.s.store.get_meta(MARK_KEY) or 0)
        while batch := self.s.store.since_seq(mark):
            for row in batch:
                self.on_stored(row)
            mark = batch[-1].seq
        self.save_mark()

    def save_mark(self) -> None:
        """Called on the node's tick: one small write, only when something arrived.
        Never past a row still waiting to be queued."""
        if self._intake or self._intake_seq > self._seen_seq:
            self._write_intake()
        if self._seen_seq > self._saved_seq:
            self.s.store.set_meta(MARK_KEY, str(self._seen_seq))
            self._saved_seq = self._seen_seq

    # -- the worker -----------------------------------------------------------------------
    async def run(self) -> None:
        """Start the workers of subscriptions whose head is due: at the start, when
        a retry's time comes and every ``IDLE_WAKE_S`` as a safety net; new alerts
        start their workers themselves (``_write_intake``)."""
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT_S),
            connector=aiohttp.TCPConnector(resolver=self.policy.resolver()),  # checks every resolved address
        )
        self._gate = asyncio.Semaphore(PARALLEL)
        try:
            while True:
                self._wake.clear()
                for d in self.s.store.due_deliveries(self.s.clock()):
                    self._start(d.subscription_id)
                await self._sleep()
        finally:
            self._gate = None
            self._write_intake()
            if self._committing:
                await asyncio.wait(set(self._committing))
            self._commit_now()
            await self._http.close()

    def _start(self, sub_id: str) -> None:
        if self._gate is not None and sub_id not in self._busy:
            self._busy.add(sub_id)
            self.s.spawn(self._drain(sub_id, self._gate))

    async def _sleep(self) -> None:
        """Until the next retry is due (``IDLE_WAKE_S`` at most), or a worker ended
        on a failure; rows due now were started already, or their worker has them."""
        due = self.s.store.next_delivery_at(after=self.s.clock())
        wait = IDLE_WAKE_S if due is None else min(IDLE_WAKE_S, max(0.0, (due - self.s.clock()) / 1000))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(wait, 0.05))

    async def _drain(self, sub_id: str, gate: asyncio.Semaphore) -> None:
        """Deliver one subscription's queue in order until it is empty or a
        delivery fails (the rest then waits for that one's retry): one alert per
        request, or for a webhook with ``batch`` on, whatever is queued (up to
        ``WEBHOOK_BATCH``) in one request, so a backlog drains in a few. Successes are
        committed with every other subscription's (``_commit_soon``); the queue is
        read past what was answered (``_sent``, kept while the node runs), so a
        worker started later never sends it again, and none waits for a disk
        sync when its queue runs dry (which in a burst is once per pushed batch)."""
        last = self._sent.get(sub_id, -1)  # answered already, its commit may still be under way
        try:
            while True:
                if not (batch := self.s.store.pending_for(sub_id, self.s.clock(), BATCH, last)):
                    self._flush()  # what it sent is written down soon; no need to wait for the disk
                    return
                sub = self.subs.get(sub_id)
                lists = sub if sub is not None and sub.batch and sub.channel.kind == "webhook" else None
                while batch:
                    async with gate:
                        if lists is None:  # one alert per request
                            error, done = await self._send(batch[0]), 1
                        else:  # what is queued, several per request (``batch`` on)
                            error, done = await self._send_batch(lists, batch[:WEBHOOK_BATCH])
                    if error is not None:
                        await self._settle()
                        self._failed(batch[0], error)  # the rest wait behind it, in order
                        self._wake.set()  # the worker loop's next sleep ends at this retry
                        return
                    self._answered.extend(batch[:done])
                    self._commit_soon()
                    last = self._sent[sub_id] = batch[done - 1].seq
                    batch = batch[done:]
        except asyncio.CancelledError:  # a clean stop: what was answered stays answered
            self._commit_now()
            if self._committing:
                await asyncio.wait(set(self._committing))
            raise
        finally:
            self._busy.discard(sub_id)

    def _commit_soon(self) -> None:
        if len(self._answered) >= COMMIT_MAX:
            self._flush()
        elif self._commit_timer is None:
            self._commit_timer = asyncio.get_running_loop().call_later(COMMIT_EVERY_S, self._flush)

    def _flush(self) -> None:
        """Write down every answered delivery, all subscriptions in one
        transaction, on a worker thread: the fsync does not stop the loop. One
        such commit at a time (SQLite has one writer): what is answered while it
        runs goes in the next, started as it ends."""
        if not self._off_loop:
            self._commit_now()
            return
        if self._committing:
            if self._commit_timer is not None:
                self._commit_timer.cancel()
                self._commit_timer = None
            return  # ``_committed`` flushes again
        done = self._take_answered()
        if done:
            task = asyncio.get_running_loop().create_task(self._write_off_loop(done))
            self._committing.add(task)
            task.add_done_callback(self._committed)

    def _committed(self, task: asyncio.Task[None]) -> None:
        self._committing.discard(task)
        if self._answered and self._gate is not None:  # at a stop, ``run`` writes the rest itself
            self._flush()

    async def _write_off_loop(self, done: list[Delivery]) -> None:
        try:
            await asyncio.to_thread(self.s.store.finish_deliveries, done, "delivered", self.s.clock())
        except Exception:  # they stay pending: at least once, they go again
            log.exception("could not write down %d answered deliveries", len(done))
            for d in done:
                self._sent.pop(d.subscription_id, None)  # its next worker reads them again
            self._wake.set()  # ... started by the worker loop now
            return
        self.delivered += len(done)

    async def _settle(self) -> None:
        """Until every delivery answered so far is written down (or its commit failed)."""
        self._flush()
        while self._committing:
            await asyncio.wait(set(self._committing))  # ``wait``: a cancelled caller leaves them running
            self._flush()

    def _commit_now(self) -> None:
        """``_flush`` on the loop itself: at a stop, and for a store only one thread may use."""
        done = self._take_answered()
        if done:
            self.s.store.finish_deliveries(done, "delivered", self.s.clock())
            self.delivered += len(done)

    def _take_answered(self) -> list[Delivery]:
        if self._commit_timer is not None:
            self._commit_timer.cancel()
            self._commit_timer = None
        done, self._answered = self._answered, []
        return done

    def _failed(self, d: Delivery, error: str) -> None:
        now = self.s.clock()
        self.failures += 1
        if now - d.created >= GIVE_UP_MS:
            self.s.store.finish_deliveries([d], "failed", now, error)
            self.gave_up += 1
            log.warning("gave up delivering %s to subscription %s: %s", d.envelope_id.hex()[:12], d.subscription_id, error)
        else:
            self.s.store.retry_delivery(d, now + RETRY.delay_ms(d.attempts + 1, self._rng), error)

    async def _send(self, d: Delivery) -> str | None:
        """None when delivered, else a short reason (never alert content)."""
        sub = self.subs.get(d.subscription_id)
        opened = self._open(d.envelope_id)
        if sub is None or opened is None:
            return None  # unsubscribed meanwhile, or the alert is gone: nothing to send
        alert, doc, follow, sender, _encoded = opened
        try:
            if sub.channel.kind == "webhook":
                return await self._webhook(sub, d, opened)
            link = self.link(bytes.fromhex(str(doc.get("incident") or d.envelope_id.hex())))  # an update's: its incident
            footer = self._sms_footer(sub, str(doc.get("incident") or d.envelope_id.hex()))
            if follow is not None:  # who cancelled and why, or what changed (the row is the follow-up)
                title, body = notice_text(follow, link, sender=sender, lang=sub.lang, footer=footer)
            else:
                title, body = phone_text(alert, link=link, sender=sender, lang=sub.lang, footer=footer)
            ok = await asyncio.to_thread(send_apprise, [sub.channel.url], title, body, self.policy)
            return None if ok else "the Apprise channel refused or could not be reached (or the outbound policy)"
        except OutboundRefused as exc:
            return f"refused by the outbound policy: {exc}"
        except Exception as exc:  # one receiver's failure must never stop the desk
            return f"{type(exc).__name__}"

    def _sms_footer(self, sub: Subscription, incident_hex: str) -> tuple[str, ...]:
        """By SMS, for an incident this node is paging for: its short code and
        how to acknowledge by replying (``node.response.sms``)."""
        if not sms.is_sms_channel(sub.channel.url):
            return ()
        open_now = self.s.store.open_escalations()
        if incident_hex not in open_now:
            return ()
        code = sms.short_code(incident_hex, open_now)
        return (translations(sub.lang).gettext(sms.REPLY_LINE) % {"code": code},)

    def _open(self, envelope_id: bytes) -> Opened | None:
        """The alert, its JSON and, for an update or cancel, what it says
        (``node.all_clear``), decoded once for all the subscriptions that want it
        (kept in memory only, a few hundred at most)."""
        if (hit := self._opened.get(envelope_id)) is not None:
            return hit
        row = self._rows.pop(envelope_id, None) or self.s.store.get(envelope_id)
        if row is None:
            return None
        item = open_row(row, self.s.identity)
        if not isinstance(item.body, Alert):
            return None
        names = self._names()
        doc = alert_json(item, names, self.s.author_of)
        doc.pop("from_peer", None)  # which peer relayed it is mesh topology, not the ally's business
        if len(self._opened) >= OPENED_CACHE:
            self._opened.pop(next(iter(self._opened)))
        key = self.s.author_of(row.author)
        sender = names.get(key) or names.get(row.author) or fingerprint(key)  # as ``all_clear.sender_name``
        self._opened[envelope_id] = (item.body, doc, describe(self.s, row), sender, messages.encode(doc))
        return self._opened[envelope_id]

    def _webhook_body(self, sub: Subscription, d: Delivery, opened: Opened) -> tuple[str, bytes]:
        """One delivery's id and JSON (``messages.webhook_body``)."""
        _alert, doc, follow, sender, encoded = opened
        link = self.link(bytes.fromhex(str(doc.get("incident") or d.envelope_id.hex())))  # an update's: its incident
        delivery = f"{sub.id}-{d.envelope_id.hex()}"
        change = None if follow is None else change_json(follow, sender or sender_name(self.s, follow.row.author))
        body = messages.webhook_body(
            doc, delivery=delivery, subscription=sub.id, link=link, change=change, encoded=encoded
        )
        return delivery, body

    async def _webhook(self, sub: Subscription, d: Delivery, opened: Opened) -> str | None:
        delivery, body = self._webhook_body(sub, d, opened)
        return await self._post(sub, body, delivery, "alert")

    async def _send_batch(self, sub: Subscription, group: list[Delivery]) -> tuple[str | None, int]:
        """The first rows of ``group`` in one request (``messages.batch_body``),
        as many as ``WEBHOOK_BATCH_BYTES`` allows: a reason or None, and how many
        rows that request settled (rows whose alert is gone count, with nothing sent)."""
        if sub.id not in self.subs:
            return None, len(group)  # unsubscribed meanwhile: nothing to send
        items: list[bytes] = []
        first = ""
        size = taken = 0
        try:
            for d in group:
                opened = self._open(d.envelope_id)
                if opened is not None:
                    delivery, body = self._webhook_body(sub, d, opened)
                    if items and size + len(body) > WEBHOOK_BATCH_BYTES:
                        break
                    first = first or delivery
                    items.append(body)
                    size += len(body) + 1
                taken += 1
            if not items:
                return None, taken  # every alert of it is gone: nothing to send
            return await self._post(sub, messages.batch_body(items, subscription=sub.id), first, messages.BATCH_EVENT), taken
        except OutboundRefused as exc:
            return f"refused by the outbound policy: {exc}", taken
        except Exception as exc:  # one receiver's failure must never stop the desk
            return f"{type(exc).__name__}", taken

    async def _post(self, sub: Subscription, body: bytes, delivery: str, event: str) -> str | None:
        """POST signed JSON to a webhook: None when it answered 2xx, else a short reason."""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "amparo-webhook/1",
            messages.DELIVERY_HEADER: delivery,
            messages.EVENT_HEADER: event,
            messages.SIGNATURE_HEADER: messages.sign(bytes.fromhex(sub.secret), self.s.clock() // 1000, body),
        }
        assert self._http is not None
        self._check_url(sub.channel.url)
        try:
            async with self._http.post(sub.channel.url, data=body, headers=headers, allow_redirects=False) as resp:
                return None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, OutboundRefused):
                raise exc.os_error from None  # the resolved address is forbidden (DNS rebinding)
            return f"unreachable ({type(exc).__name__})"
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"unreachable ({type(exc).__name__})"

    # -- views ----------------------------------------------------------------------------
    def link(self, envelope_id: bytes) -> str:
        return f"{public_base(self.s.config)}/ui/alerts/{envelope_id.hex()}"

    def _names(self) -> Mapping[bytes, str]:
        """``author_names`` (a query), reused for ``NAMES_FOR_S``: a burst's
        thousands of alerts need it once, not once each."""
        now = self.s.clock()
        if self._names_cache is None or now - self._names_cache[0] >= NAMES_FOR_S * 1000:
            self._names_cache = (now, self.s.author_names())
        return self._names_cache[1]

    def summary(self) -> list[dict[str, Any]]:
        counts = self.s.store.delivery_counts()
        out = []
        for sub in self.subs.values():
            doc = sub.public_doc()
            doc["deliveries"] = counts.get(sub.id, {"pending": 0, "delivered": 0, "failed": 0})
            out.append(doc)
        return out

    def backlog(self) -> int:
        return sum(c.get("pending", 0) for c in self.s.store.delivery_counts().values())


def _check_apprise(url: str) -> None:
    if not apprise_understands(url):
        scheme = url.split("://", 1)[0]
        raise SubscriptionError(f"channel.url: Apprise does not understand {scheme}:// URLs")
