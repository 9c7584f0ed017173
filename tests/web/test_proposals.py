"""The dashboard's Proposals page (docs/joint.md), in process: a proposal naming
this organization waits for it with Endorse and Object buttons; an objection's
reason is shown to the named organizations; when this node is not the proposer
it releases only after its turn (the proposer first, then each endorser a minute
later), and the page links the released alert."""

from __future__ import annotations

from node import records
from node.joint import RELEASE_STAGGER_MS
from protocol import Alert, Area, Endorsement, Identity, Objection, Proposal, seal_envelope
from tests.strategies import deterministic_random
from tests.web.conftest import T0, US, Dashboard, text_of

ALLY = Identity.from_random(bytes(range(64, 128)))
THIRD = Identity.from_random(bytes(range(128, 192)))
HOUR = 3_600_000


def known(d: Dashboard, *others: Identity) -> None:
    """This node vouches for the others: they are inside its horizon, their keys known."""
    for i, other in enumerate(others):
        d.node.author(
            records.vouch(US, other.sign_public, other.enc_public, f"Aliada {i}", T0, verified=True)
        )


def proposed_by_ally(d: Dashboard) -> bytes:
    """ALLY proposes to ALLY, THIRD and this node, 2 of 3, and endorses it."""
    alert = Alert(headline="Denuncia conjunta por la radio comunitaria", areas=(Area("MX-OAX"),),
                  scope="public", severity="severe")  # fmt: skip
    everyone = (ALLY, THIRD, US)
    proposal = Proposal(alert, tuple(i.sign_public for i in everyone), 2, 6 * HOUR)
    to = [i.enc_public for i in everyone]
    env = seal_envelope(ALLY, proposal, created=T0, expires=T0 + 2 * HOUR, recipients=to,
                        random=deterministic_random(b"p"))  # fmt: skip
    statement = proposal.statement(env.id, env.expires)
    vote = seal_envelope(ALLY, Endorsement(env.id, statement.alert, statement.sign(ALLY.signing_key)),
                         created=T0 + 1, expires=env.expires, recipients=to, random=deterministic_random(b"e"))  # fmt: skip
    d.node.ingest([env.raw, vote.raw], from_peer=None)
    return env.id


async def test_a_proposal_waits_for_this_organization_and_releases_on_its_turn(dashboard: Dashboard) -> None:
    d = dashboard
    known(d, ALLY, THIRD)
    pid = proposed_by_ally(d).hex()
    html = await d.page("/ui/proposals")
    assert "Waiting for this organization" in html and f'action="/ui/proposals/{pid}/endorse"' in html
    assert "1 of 2 endorsements needed" in text_of(html)

    status, _ = await d.post(f"/ui/proposals/{pid}/endorse", {})
    assert status == 200  # followed the redirect back to the page
    listed = d.node.joint.listing()[0]
    assert listed["endorsed"] == 2 and not listed["releases"], (
        "not this node's turn yet: the proposer's first"
    )

    d.clock[0] += RELEASE_STAGGER_MS * 2  # THIRD's turn is before ours; neither released meanwhile
    d.node.joint.consider()
    released = d.node.joint.listing()[0]["releases"]
    assert len(released) == 1
    alert = d.node.store.get(bytes.fromhex(released[0]))
    assert alert is not None and alert.author == US.sign_public
    html = await d.page("/ui/proposals")
    assert "Released" in html and f'href="/ui/alerts/{released[0]}"' in html and "Waiting for" not in html
    page = text_of(await d.page(f"/ui/alerts/{released[0]}", lang="es"))
    assert "Alerta conjunta Respaldada por Aliada 0, Brigada Ejemplo (2 de 2 necesarias)" in page


async def test_an_objection_and_its_reason_are_shown_in_both_languages(dashboard: Dashboard) -> None:
    d = dashboard
    known(d, ALLY, THIRD)
    pid = proposed_by_ally(d)
    statement = d.node.joint.joints[pid].statement
    objection = seal_envelope(
        THIRD, Objection(pid, statement.alert, "Faltan testimonios"), created=T0 + 2, expires=T0 + 2 * HOUR,
        recipients=[i.enc_public for i in (ALLY, THIRD, US)], random=deterministic_random(b"o"),
    )  # fmt: skip
    d.node.ingest([objection.raw], from_peer=None)
    english = text_of(await d.page("/ui/proposals"))
    assert "objected — Faltan testimonios" in english
    spanish = text_of(await d.page("/ui/proposals", lang="es"))
    assert "Propuestas" in spanish and "Faltan testimonios" in spanish

    status, _ = await d.post(f"/ui/proposals/{pid.hex()}/object", {"reason": "No estamos de acuerdo"})
    assert status == 200
    assert d.node.joint.listing()[0]["objected"] == 2
    status, page = await d.post(f"/ui/proposals/{pid.hex()}/endorse", {})
    assert status == 409 and "already objected" in page
