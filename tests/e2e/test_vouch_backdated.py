"""Vouches whose ``created`` is backdated (audit of issue 11, item 4).

A vouch's ``created`` is signed by the voucher, who picks it: a vouch dated 25
hours ago is as valid as one made now (vouches never expire). Neither the fresh
period of a vouched key nor the cap on new vouches may be measured by it."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from mesh.peers import Limits
from protocol import Envelope, Identity, Vouch, sign_envelope
from tests.e2e.harness import ScriptedPeer, now_ms
from tests.e2e.test_vouch_flood import count_by

pytestmark = pytest.mark.slow

HOUR = 3_600_000
BACKDATED = 25 * HOUR  # more than a day: older than the fresh period (Limits.fresh_vouch_ms)


def backdated_vouch(voucher: ScriptedPeer, key: Identity) -> Envelope:
    body = Vouch(subject=key.sign_public, enc=key.enc_public, name="Clave Nueva")
    return sign_envelope(voucher.identity, body, created=now_ms() - BACKDATED, expires=0)


def test_backdated_vouches_stay_fresh_after_a_restart(mesh_factory: Any) -> None:
    """Audit finding, fixed. At start the node rebuilt its trust graph with every
    stored vouch "seen" at its ``created``, so keys vouched for a minute before a
    restart with a backdated vouch came back established, each with a full author
    budget of its own: 2,213 of 2,700 flood alerts from 30 such keys were stored
    within 2 s of the restart (one live voucher budget allows about 300). The
    restart now counts each vouch from when this node received it."""
    mesh = mesh_factory(1)
    (a,) = mesh.nodes
    voucher = ScriptedPeer("Nodo Avalista")
    voucher.pair_with(a)
    fresh = [Identity.from_random(os.urandom(64)) for _ in range(10)]  # under the vouch cap
    reply = voucher.push(a, [backdated_vouch(voucher, key).raw for key in fresh])
    assert reply["accepted"] == len(fresh), reply
    a.stop()
    a.start()
    started = time.monotonic()
    for i, key in enumerate(fresh):
        voucher.push(a, [voucher.alert(f"Flood {i}-{n}", author=key).raw for n in range(90)])
    elapsed = time.monotonic() - started
    stored = count_by(a, "alert", [key.sign_public for key in fresh])
    limits = Limits()
    bound = limits.author_burst + limits.author_rate_per_s * elapsed
    print(
        f"after a restart: {stored} of {90 * len(fresh)} alerts of backdated-vouched keys stored (bound {bound:.0f})"
    )
    assert stored <= bound, f"{stored} stored in {elapsed:.0f} s; the voucher's budget allows {bound:.0f}"


def test_backdated_vouches_meet_the_cap_on_new_vouches(mesh_factory: Any) -> None:
    """Audit finding, KNOWN FAILING, not fixed. ``MeshNode._budget`` calls a vouch
    new, and so capped (``vouch_burst``, then ``vouches_per_hour``), only when its
    ``created`` is within ``fresh_vouch_ms``: a voucher that backdates its vouches
    by a day introduces as many as it likes. Against a real node, 40 of 40
    backdated vouches were accepted in one push (the cap is 20). What "new" should
    mean instead (a vouch this node does not hold yet, perhaps exempting old
    vouches fetched in catch-up) is a policy choice left to the item's owner."""
    mesh = mesh_factory(1)
    (a,) = mesh.nodes
    voucher = ScriptedPeer("Nodo Avalista")
    voucher.pair_with(a)
    fresh = [Identity.from_random(os.urandom(64)) for _ in range(40)]
    reply = voucher.push(a, [backdated_vouch(voucher, key).raw for key in fresh])
    limits = Limits()
    print(f"backdated vouches accepted in one push: {reply['accepted']} of {len(fresh)}")
    assert reply["accepted"] <= limits.vouch_burst, reply
    assert len(reply["deferred"]) == len(fresh) - reply["accepted"], reply
