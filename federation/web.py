"""Federation routes: discovery, actor documents, collections and inboxes (thin handlers)."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from instance.core import Shoal
from instance.errors import ApiError, BadRequest, NotFound, PayloadTooLarge, Unauthorized
from instance.models import Actor, ActorKind
from instance.web.context import SHOAL

from . import collections, inbox, nodeinfo
from .actors import actor_to_ap, find_local
from .errors import SignatureError
from .webfinger import NotHere, host_meta, webfinger

log = logging.getLogger("shoal.federation.web")

AP_TYPE = "application/activity+json"


def _shoal(request: web.Request) -> Shoal:
    return request.app[SHOAL]


def wants_activitypub(request: web.Request) -> bool:
    """True when the client asks for ActivityPub JSON (activity+json, or ld+json)."""
    accept = request.headers.get("Accept", "").lower()
    return "application/activity+json" in accept or "application/ld+json" in accept


def ap_response(doc: dict[str, Any], status: int = 200) -> web.Response:
    """An ActivityPub document."""
    return web.Response(
        status=status,
        body=json.dumps(doc).encode(),
        content_type=AP_TYPE,
        charset="utf-8",
        headers={"Vary": "Accept", "Access-Control-Allow-Origin": "*"},
    )


async def _local_actor(request: web.Request, kind: ActorKind | None) -> Actor:
    name = request.match_info["name"]
    actor = await find_local(_shoal(request), name)
    if actor is None or (kind == ActorKind.GROUP and actor.kind != ActorKind.GROUP):
        raise NotFound(f"No actor '{name[:80]}'.", code="actor_not_found")
    if kind is not None and kind != ActorKind.GROUP and actor.kind == ActorKind.GROUP:
        raise NotFound(f"No account '{name[:80]}'.", code="actor_not_found")
    return actor


# ---------------------------------------------------------------- discovery


async def get_webfinger(request: web.Request) -> web.Response:
    """``/.well-known/webfinger?resource=acct:name@host``."""
    resource = request.query.get("resource", "")
    if not resource:
        raise BadRequest("Give the resource to look up (acct:name@host).", code="missing_resource")
    try:
        jrd = await webfinger(_shoal(request), resource)
    except NotHere as exc:
        raise ApiError(exc.reason, code="resource_not_found", status=exc.status) from None
    return web.Response(
        body=json.dumps(jrd).encode(),
        content_type="application/jrd+json",
        charset="utf-8",
        headers={"Access-Control-Allow-Origin": "*"},
    )


async def get_host_meta(request: web.Request) -> web.Response:
    """``/.well-known/host-meta`` (XRD)."""
    return web.Response(text=host_meta(_shoal(request)), content_type="application/xrd+xml")


async def get_nodeinfo_links(request: web.Request) -> web.Response:
    """``/.well-known/nodeinfo``."""
    return web.json_response(await nodeinfo.well_known(_shoal(request)))


async def get_nodeinfo(request: web.Request) -> web.Response:
    """``/nodeinfo/2.0.json`` and ``/nodeinfo/2.1.json``."""
    version = request.match_info["version"]
    if version not in nodeinfo.SCHEMAS:
        raise NotFound(f"No NodeInfo {version[:10]}.", code="nodeinfo_not_found")
    doc = await nodeinfo.nodeinfo(_shoal(request), version)
    profile = nodeinfo.SCHEMAS[version]
    return web.Response(
        body=json.dumps(doc).encode(),
        headers={
            "Content-Type": f'application/json; profile="{profile}#"',
            "Access-Control-Allow-Origin": "*",
        },
    )


# ---------------------------------------------------------------- actors and collections


def _web_page(actor: Actor) -> str:
    if actor.kind == ActorKind.GROUP:
        return f"/c/{actor.preferred_username}"
    if actor.kind == ActorKind.APPLICATION:
        return "/"
    return f"/a/{actor.preferred_username}"


async def get_actor(request: web.Request) -> web.StreamResponse:
    """An actor document, or a redirect to its web page for browsers."""
    kind = ActorKind.GROUP if request.path.startswith("/video-channels/") else ActorKind.PERSON
    actor = await _local_actor(request, kind)
    if not wants_activitypub(request):
        raise web.HTTPFound(_web_page(actor), headers={"Vary": "Accept"})
    return ap_response(actor_to_ap(_shoal(request), actor))


def _page(request: web.Request) -> int | None:
    try:
        return collections.page_number(request.query.get("page"))
    except ValueError as exc:
        raise BadRequest(str(exc), code="invalid_page", field="page") from None


async def get_collection(request: web.Request) -> web.Response:
    """An actor's outbox, followers, following or playlists."""
    kind = ActorKind.GROUP if request.path.startswith("/video-channels/") else ActorKind.PERSON
    actor = await _local_actor(request, kind)
    which = request.match_info["collection"]
    build = {
        "outbox": collections.outbox,
        "followers": collections.followers,
        "following": collections.following,
        "playlists": collections.playlists,
    }
    return ap_response(await build[which](_shoal(request), actor, _page(request)))


# ---------------------------------------------------------------- inboxes


async def _read_capped(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > inbox.MAX_BODY:
        raise PayloadTooLarge(f"An activity is at most {inbox.MAX_BODY} bytes.", code="activity_too_large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > inbox.MAX_BODY:
            raise PayloadTooLarge(
                f"An activity is at most {inbox.MAX_BODY} bytes.", code="activity_too_large"
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def post_inbox(request: web.Request) -> web.Response:
    """Verify and store one activity (202); 401 with the reason when the signature fails."""
    shoal = _shoal(request)
    if "name" in request.match_info:
        kind = ActorKind.GROUP if request.path.startswith("/video-channels/") else ActorKind.PERSON
        await _local_actor(request, kind)
    body = await _read_capped(request)
    try:
        activity, actor = await inbox.authenticate(
            shoal, method=request.method, path_qs=request.raw_path, headers=request.headers, body=body
        )
    except SignatureError as exc:
        log.warning("inbox %s refused from %s: %s", request.path, request.remote, exc.reason)
        raise Unauthorized(f"Signature refused: {exc.reason}.", code="invalid_signature") from None
    except inbox.Ignored as exc:
        log.info("inbox %s: %s", request.path, exc)
        return web.Response(status=202)
    except inbox.InboxRefused as exc:
        log.warning("inbox %s refused from %s: %s", request.path, request.remote, exc.reason)
        raise ApiError(exc.reason, code="invalid_activity", status=exc.status) from None
    signature = request.headers.get("Signature") or request.headers.get("Authorization", "")
    await inbox.store(shoal, activity, actor, signature=signature)
    return web.Response(status=202)


def add_routes(app: web.Application) -> None:
    """Register the federation routes on ``app``."""
    router = app.router
    router.add_get("/.well-known/webfinger", get_webfinger)
    router.add_get("/.well-known/host-meta", get_host_meta)
    router.add_get("/.well-known/nodeinfo", get_nodeinfo_links)
    router.add_get(r"/nodeinfo/{version:\d\.\d}.json", get_nodeinfo)
    router.add_get(r"/nodeinfo/{version:\d\.\d}", get_nodeinfo)
    for prefix in ("/accounts", "/video-channels"):
        router.add_get(prefix + "/{name}", get_actor)
        router.add_get(prefix + "/{name}/{collection:outbox|followers|following|playlists}", get_collection)
        router.add_post(prefix + "/{name}/inbox", post_inbox)
    router.add_post("/inbox", post_inbox)
