"""Admin routes of redundancy, in PeerTube's paths: mirrors of remote videos and allowed hosts.

Declared on the core's API registry (so they are in the OpenAPI document) when the P2P
extension sets itself up; :func:`add_routes` adds them to an app that was built before.
"""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from instance.api import api
from instance.api.registry import BODY, QUERY
from instance.errors import NotFound
from instance.models import Video, VideoMirror
from instance.web.context import shoal_of
from instance.web.responses import iso, json_response, no_content
from instance.web.validation import Body, Query

from . import mirrors, redundancy
from .urls import mirror_base_url

NO_CONTENT = {"204": {"description": "Done"}}
TAGS = ("redundancy",)


class MirrorBody(Body):
    """The remote video to mirror."""

    videoId: int = Field(gt=0)


class AllowBody(Body):
    """Whether this instance may mirror the videos of a followed instance."""

    redundancyAllowed: bool


class MirrorsQuery(Query):
    """``remote-videos``: our mirrors of other instances' videos; ``my-videos``: their mirrors of ours."""

    target: Literal["remote-videos", "my-videos"] = "remote-videos"


def mirror_json(shoal: Any, mirror: VideoMirror, video: Video) -> dict[str, Any]:
    """PeerTube's ``VideoRedundancy`` (HLS only) for one of our mirrors."""
    return {
        "id": mirror.id,
        "name": video.name,
        "url": video.remote_url,
        "uuid": video.uuid,
        "redundancies": {
            "files": [],
            "streamingPlaylists": [
                {
                    "id": mirror.id,
                    "fileUrl": mirror_base_url(shoal, video.uuid),
                    "strategy": mirror.strategy,
                    "state": mirror.state,
                    "size": mirror.size,
                    "error": mirror.last_error,
                    "createdAt": iso(mirror.created_at),
                    "updatedAt": iso(mirror.updated_at),
                    "expiresOn": iso(mirror.expires_at),
                }
            ],
        },
    }


@api.route(
    "GET",
    "/api/v1/server/redundancy/videos",
    summary="List mirrors: ours of remote videos, or other instances' of ours",
    auth="admin",
    query=MirrorsQuery,
    tags=TAGS,
)
async def list_mirrors(request: web.Request) -> web.Response:
    """``target=remote-videos`` (default) lists our mirrors; ``my-videos`` the CacheFiles we received."""
    shoal = shoal_of(request)
    if request[QUERY].target == "my-videos":
        rows = await redundancy.received_redundancies(shoal)
        return json_response({"total": len(rows), "data": rows})
    data = [mirror_json(shoal, mirror, video) for mirror, video in await mirrors.list_mirrors(shoal)]
    return json_response({"total": len(data), "data": data})


@api.route(
    "POST",
    "/api/v1/server/redundancy/videos",
    summary="Mirror a remote video",
    auth="admin",
    body=MirrorBody,
    tags=TAGS,
    responses=NO_CONTENT,
)
async def add_mirror(request: web.Request) -> web.Response:
    """Start mirroring a remote video of an instance allowed for redundancy (the copy is a job).
    409 ``already_mirrored``; 400 ``video_not_mirrorable`` or ``redundancy_not_allowed``."""
    await mirrors.add_mirror(shoal_of(request), request[BODY].videoId)
    return no_content()


@api.route(
    "DELETE",
    "/api/v1/server/redundancy/videos/{redundancyId}",
    summary="Stop mirroring a remote video",
    auth="admin",
    tags=TAGS,
    responses=NO_CONTENT,
)
async def remove_mirror(request: web.Request) -> web.Response:
    """Undo the mirror's CacheFile and delete our copy; 404 ``redundancy_not_found``."""
    raw = request.match_info["redundancyId"]
    if not raw.isdigit() or not await mirrors.remove_mirror(shoal_of(request), int(raw)):
        raise NotFound("No such mirror.", code="redundancy_not_found")
    return no_content()


@api.route(
    "PUT",
    "/api/v1/server/redundancy/{host}",
    summary="Allow or forbid mirroring a followed instance's videos",
    auth="admin",
    body=AllowBody,
    tags=TAGS,
    responses=NO_CONTENT,
)
async def allow_host(request: web.Request) -> web.Response:
    """Set ``redundancyAllowed`` for ``host``; forbidding it drops our mirrors of its videos."""
    host = request.match_info["host"]
    await mirrors.set_host_allowed(shoal_of(request), host, request[BODY].redundancyAllowed)
    return no_content()


ROUTES = (list_mirrors, add_mirror, remove_mirror, allow_host)


def add_routes(app: web.Application) -> None:
    """Add this module's routes to ``app`` unless the registry already did (apps built after import)."""
    present = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None}
    for spec in api.routes:
        if spec.handler is None or getattr(spec, "path", "").find("/server/redundancy") < 0:
            continue
        if (spec.method, spec.path) not in present:
            app.router.add_route(spec.method, spec.path, spec.handler)
