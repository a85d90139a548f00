"""PeerTube's ``CacheFile``: announcing our mirrors of remote videos, hearing of mirrors of ours.

Sending (the ``announce_mirror`` port, :func:`federation.install`): the Application actor tells the
video's origin (its channel and account inboxes) ``Create`` when a mirror is made, ``Update``
when it is renewed (a later ``expires``), and ``Undo`` of the Create when it is dropped::

    {"id": "https://mirror/redundancy/streaming-playlists/hls/<uuid>", "type": "CacheFile",
     "object": "<video URL>", "expires": "<ISO date>",
     "url": {"type": "Link", "mediaType": "application/x-mpegURL",
             "href": "https://mirror/static/redundancy/hls/<uuid>"}}

Receiving (inbox handlers, routed by :func:`install_routes`): a CacheFile for one
of our public or unlisted videos, whose id and URL live on the sender's host, is stored until
it expires and its URL becomes an extra web seed of the video's torrents; ``Undo`` or
``Delete`` by the same sender removes it. CacheFiles for other videos are ignored.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from instance.core import Shoal
from instance.models import Actor, Video, VideoMirror
from p2p import redundancy, urls

from .ap import host_of, id_of
from .context import PUBLIC, context_for
from .tables import Tables
from .videos import HLS_MEDIA_TYPE

log = logging.getLogger("shoal.federation.cachefile")

# PeerTube's terms for CacheFile (sc: schema.org, pt: PeerTube's namespace).
TERMS = {
    "sc": "http://schema.org/",
    "pt": "https://joinpeertube.org/ns#",
    "CacheFile": "pt:CacheFile",
    "expires": "sc:expires",
}


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def cachefile_to_ap(shoal: Shoal, video: Video, mirror: VideoMirror) -> dict[str, Any]:
    """Our CacheFile for a mirrored remote video."""
    expires = mirror.expires_at or datetime.now(UTC)
    return {
        "id": urls.cachefile_id(shoal, video.uuid),
        "type": "CacheFile",
        "object": video.remote_url,
        "expires": _iso(expires),
        "url": {
            "type": "Link",
            "mediaType": HLS_MEDIA_TYPE,
            "href": urls.mirror_base_url(shoal, video.uuid),
        },
    }


async def send_cachefile(shoal: Shoal, video: Video, mirror: VideoMirror, verb: str) -> None:
    """Create, Update or Undo(Create) of our CacheFile, to the video's origin (channel and account)."""
    from .delivery import deliver
    from .fanout import account_of, load_video
    from .instance_actor import application_actor

    loaded = await load_video(shoal, video.id)
    if loaded is None or loaded[0].is_local:
        return
    remote = loaded[0]
    app_actor = await application_actor(shoal)
    cache = cachefile_to_ap(shoal, remote, mirror)
    create = {
        "type": "Create",
        "id": f"{cache['id']}/activity",
        "actor": app_actor.ap_id,
        "object": cache,
        "to": [PUBLIC],
        "cc": [],
    }
    if verb == "Create":
        activity = create
    elif verb == "Update":
        activity = {**create, "type": "Update", "id": f"{cache['id']}/updates/{_iso(datetime.now(UTC))}"}
    else:
        activity = {
            "type": "Undo",
            "id": f"{create['id']}/undo",
            "actor": app_actor.ap_id,
            "object": create,
            "to": [PUBLIC],
            "cc": [],
        }
    async with shoal.db.write() as session:
        signer = await session.get(Actor, app_actor.id)
        assert signer is not None
        document = {"@context": [*context_for(None), TERMS], **activity}
        await deliver(shoal, session, document, signer=signer,
                      recipients=[remote.channel, account_of(remote)])  # fmt: skip
    log.info("%s CacheFile %s sent to %s", verb, cache["id"], host_of(remote.remote_url))


def _expires(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _hls_href(url: Any) -> str | None:
    for link in url if isinstance(url, list) else [url]:
        is_hls = isinstance(link, dict) and link.get("mediaType") == HLS_MEDIA_TYPE
        if is_hls and isinstance(link.get("href"), str):
            return link["href"]
    return None


async def on_cachefile(shoal: Shoal, activity: dict[str, Any], actor: Actor) -> None:
    """Create/Update CacheFile: a mirror of one of our videos, stored until ``expires``."""
    from p2p.service import may_have_torrents

    from .video_store import video_by_url

    obj = activity.get("object")
    if not isinstance(obj, dict):
        return
    cache_id, href, expires = id_of(obj), _hls_href(obj.get("url")), _expires(obj.get("expires"))
    sender = host_of(actor.ap_id)
    if not cache_id or not href or expires is None or host_of(cache_id) != sender or host_of(href) != sender:
        log.info("refusing CacheFile %s from %s: incomplete or not on its host", cache_id, actor.ap_id)
        return
    async with shoal.db.read() as session:
        video = await video_by_url(session, shoal, id_of(obj.get("object")) or "")
        if video is not None:
            session.expunge_all()
    if video is None or not video.is_local or not may_have_torrents(video):
        log.info("ignoring CacheFile %s: not a public video of ours", cache_id)
        return
    if expires <= datetime.now(UTC):
        return
    await redundancy.record_redundancy(
        shoal,
        video_id=video.id,
        actor_id=actor.id,
        ap_id=cache_id,
        base_url=href,
        expires_at=expires,
        create=activity.get("type") == "Create",
    )
    log.info("%s mirrors video %s until %s", sender, video.uuid, _iso(expires))


async def on_undo_cachefile(shoal: Shoal, activity: dict[str, Any], actor: Actor) -> None:
    """Undo(Create CacheFile): the sender dropped its mirror."""
    inner = activity.get("object")
    if not isinstance(inner, dict):
        return
    obj = inner.get("object")
    if isinstance(obj, dict) and obj.get("type") not in (None, "CacheFile"):
        return
    cache_id = id_of(obj)
    if cache_id and await redundancy.drop_redundancy(shoal, actor_id=actor.id, ap_id=cache_id):
        log.info("%s dropped its mirror %s", host_of(actor.ap_id), cache_id)


async def on_delete_cachefile(shoal: Shoal, activity: dict[str, Any], actor: Actor) -> None:
    """Delete of a CacheFile (some implementations delete rather than undo)."""
    cache_id = id_of(activity.get("object"))
    if cache_id:
        await redundancy.drop_redundancy(shoal, actor_id=actor.id, ap_id=cache_id)


def install_routes(tables: Tables) -> None:
    """Route the CacheFile activities (Create, Update, Undo of the Create, Delete) here."""
    for kind in ("Create", "Update"):
        tables.route(kind, on_cachefile, object_type="CacheFile")
    tables.route("Undo", on_undo_cachefile, object_type="Create")
    tables.route("Delete", on_delete_cachefile, object_type="CacheFile")


async def refresh_video(shoal: Shoal, url: str) -> None:
    """Fetch a remote video again (a mirror needs the origin's current torrents)."""
    from .errors import FetchError
    from .video_store import get_or_fetch_video

    try:
        await get_or_fetch_video(shoal, url, refresh=True)
    except FetchError as exc:
        log.info("cannot refresh %s: %s", url, exc)

