"""Local API routes of joint releases, k of n (``node.joint``; docs/joint.md)."""

from __future__ import annotations

from aiohttp import web

from node import contract as c
from node.routes import Route, given, read_body, service


async def _list(request: web.Request) -> web.Response:
    return web.json_response({"proposals": service(request).joint.listing()})


async def _show(request: web.Request) -> web.Response:
    desk = service(request).joint
    joint = desk.find(request.match_info["id"])
    return web.json_response(desk.to_json(joint, desk.host.clock()))


async def _propose(request: web.Request) -> web.Response:
    doc = await read_body(request, c.ProposalInput)
    return web.json_response(service(request).joint.propose(given(doc)), status=201)


async def _endorse(request: web.Request) -> web.Response:
    return web.json_response(service(request).joint.vote(request.match_info["id"], endorse=True), status=201)


async def _object(request: web.Request) -> web.Response:
    doc = await read_body(request, c.ObjectionInput)
    reason = doc.reason or ""
    return web.json_response(service(request).joint.vote(request.match_info["id"], endorse=False, reason=reason),
                             status=201)  # fmt: skip


ROUTES = (
    Route(
        "GET",
        "/api/v1/proposals",
        _list,
        "Joint proposals this organization is named in, newest first",
        answer=c.Proposals,
    ),
    Route(
        "POST",
        "/api/v1/proposals",
        _propose,
        "Propose a joint public alert to named organizations; released once `threshold` of them endorse it",
        body=c.ProposalInput,
        answer=c.Proposed,
        status=201,
        refusals=(409,),
    ),
    Route(
        "GET",
        "/api/v1/proposals/{id}",
        _show,
        "One proposal with every endorsement and objection",
        answer=c.ListedProposal,
        refusals=(404,),
        path_params=c.ProposalPath,
    ),
    Route(
        "POST",
        "/api/v1/proposals/{id}/endorse",
        _endorse,
        "Endorse a proposal for this organization",
        answer=c.Voted,
        status=201,
        refusals=(404, 409),
        path_params=c.ProposalPath,
    ),
    Route(
        "POST",
        "/api/v1/proposals/{id}/object",
        _object,
        "Object to a proposal for this organization",
        body=c.ObjectionInput,
        answer=c.Voted,
        status=201,
        refusals=(404, 409),
        path_params=c.ProposalPath,
    ),
)
