"""PeerTube's REST JSON shapes — Video, VideoDetails, VideoChannel, Account — from Shoal models.

The single place these shapes are built: pure functions of a model (plus counts loaded by
the service) to a dict, so every route that answers a video answers the same keys. Field
names and value forms are PeerTube's (``packages/models`` and its OpenAPI document); Shoal
adds ``progress`` (0–100) and ``failureReason`` to videos.

URLs of local files: HLS keys ``hls/<uuid>/<file>`` are served at
``/static/streaming-playlists/hls/<uuid>/<file>`` (or at the bucket's public URL when
``s3_public_url`` is set), and at ``…/hls/private/<uuid>/<file>`` (which needs a
``videoFileToken``) for private, internal and hidden videos. Thumbnails, previews and
torrents (keys ``thumbnails/<file>`` …) are at ``/lazy-static/<folder>/<file>``. Remote
videos carry absolute URLs, used as is.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlsplit

from ..core import Shoal
from ..models import Actor, Rendition, Video, VideoState
from ..services.videos import ActorStats, VideoView
from ..storage import keys
from ..vocab import CATEGORIES, LANGUAGES, LICENCES, PRIVACIES, labelled
from ..web.media import (
    media_url,
    needs_file_token,
    remote_tracker_urls,
    tracker_urls,
    video_file,
    video_image,
)
from ..web.responses import iso

HLS_TYPE = 1
TRUNCATED_DESCRIPTION = 250
NO_STATS = ActorStats()


def page(items: list[dict[str, Any]], total: int) -> dict[str, Any]:
    """PeerTube's list envelope."""
    return {"total": total, "data": items}


# ---------------------------------------------------------------- actors


def actor_host(shoal: Shoal, actor: Actor) -> str:
    """The host part of an actor's handle (this instance's public host for local actors)."""
    return actor.host or shoal.settings.public_host


def _image(shoal: Shoal, actor: Actor, value: str | None, folder: str) -> list[dict[str, Any]]:
    if not value:
        return []
    if "://" in value:
        file_url, path = value, urlsplit(value).path
    else:
        path = f"/lazy-static/{folder}/{quote(posixpath.basename(value))}"
        file_url = shoal.url(path)
    return [
        {
            "path": path,
            "fileUrl": file_url,
            "width": None,
            "height": None,
            "createdAt": iso(actor.updated_at),
            "updatedAt": iso(actor.updated_at),
        }
    ]


def _actor_summary(shoal: Shoal, actor: Actor) -> dict[str, Any]:
    avatars = _image(shoal, actor, actor.avatar_url, "avatars")
    return {
        "id": actor.id,
        "name": actor.preferred_username,
        "displayName": actor.display_name or actor.preferred_username,
        "url": actor.ap_id,
        "host": actor_host(shoal, actor),
        "avatars": avatars,
        "avatar": avatars[0] if avatars else None,
    }


def account_summary(shoal: Shoal, account: Actor) -> dict[str, Any]:
    """PeerTube's ``AccountSummary`` (embedded in videos)."""
    return _actor_summary(shoal, account)


def channel_summary(shoal: Shoal, channel: Actor) -> dict[str, Any]:
    """PeerTube's ``VideoChannelSummary`` (embedded in videos)."""
    return _actor_summary(shoal, channel)


def _actor(shoal: Shoal, actor: Actor, stats: ActorStats) -> dict[str, Any]:
    return {
        **_actor_summary(shoal, actor),
        "description": actor.summary or None,
        "followersCount": stats.followers.get(actor.id, 0),
        "followingCount": stats.following.get(actor.id, 0),
        "createdAt": iso(actor.created_at),
        "updatedAt": iso(actor.updated_at),
        "isLocal": actor.is_local,
    }


def account(shoal: Shoal, actor: Actor, stats: ActorStats = NO_STATS) -> dict[str, Any]:
    """PeerTube's ``Account``; ``userId`` only for local accounts."""
    data = _actor(shoal, actor, stats)
    data["userId"] = stats.user_ids.get(actor.id)
    return data


def channel(shoal: Shoal, actor: Actor, stats: ActorStats = NO_STATS) -> dict[str, Any]:
    """PeerTube's ``VideoChannel`` with its full ``ownerAccount`` (``actor.owner`` loaded)."""
    data = _actor(shoal, actor, stats)
    data["support"] = actor.support or None
    data["banners"] = _image(shoal, actor, actor.banner_url, "banners")
    data["ownerAccount"] = account(shoal, actor.owner, stats) if actor.owner is not None else None
    return data


# ---------------------------------------------------------------- videos


def _owner_of(video: Video) -> Actor:
    # A channel always has an owner locally; a remote one might not be stored yet.
    return video.channel.owner or video.channel


def streaming_playlists(
    shoal: Shoal, video: Video, renditions: list[Rendition], redundancies: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """The one HLS playlist (``type`` 1) with a file per rendition, or ``[]`` before there are any.

    ``redundancies`` are the base URLs of other instances' live mirrors (PeerTube's
    ``[{baseUrl}]``): the same file names are served there.
    """
    if not renditions:
        return []
    ordered = sorted(renditions, key=lambda r: r.height, reverse=True)
    return [
        {
            "id": video.id,
            "type": HLS_TYPE,
            "playlistUrl": media_url(shoal, video, video.master_playlist),
            "segmentsSha256Url": media_url(shoal, video, video.segments_sha256),
            "redundancies": [{"baseUrl": url} for url in redundancies],
            "files": [video_file(shoal, video, r) for r in ordered],
        }
    ]


def _state(video: Video) -> dict[str, Any]:
    state_id, label = VideoState(video.state).peertube
    return {"id": state_id, "label": label}


def video(shoal: Shoal, video: Video) -> dict[str, Any]:
    """PeerTube's ``Video`` (list item). ``video.channel`` and its owner must be loaded."""
    description = video.description or ""
    truncated = description[:TRUNCATED_DESCRIPTION]
    if len(description) > TRUNCATED_DESCRIPTION:
        truncated = truncated[: TRUNCATED_DESCRIPTION - 3] + "..."
    published = video.state == VideoState.PUBLISHED
    return {
        "id": video.id,
        "uuid": video.uuid,
        "shortUUID": video.short_uuid,
        "url": shoal.url(f"/videos/watch/{video.uuid}") if video.is_local else video.remote_url,
        "name": video.name,
        "category": labelled(CATEGORIES, video.category),
        "licence": labelled(LICENCES, video.licence),
        "language": labelled(LANGUAGES, video.language),
        "privacy": labelled(PRIVACIES, video.privacy),
        "description": description or None,
        "truncatedDescription": truncated or None,
        "duration": round(video.duration or 0),
        "aspectRatio": video.aspect_ratio,
        "isLocal": video.is_local,
        "isLive": False,
        "thumbnailPath": video_image(video, video.thumbnail, keys.THUMBNAILS),
        "previewPath": video_image(video, video.preview, keys.PREVIEWS),
        "embedPath": f"/videos/embed/{video.uuid}",
        "views": video.views,
        "viewers": 0,
        "likes": video.likes,
        "dislikes": video.dislikes,
        "nsfw": video.nsfw,
        "waitTranscoding": video.wait_transcoding,
        "state": _state(video),
        "progress": 100 if published else max(0, min(100, video.progress)),
        "failureReason": video.failure_reason if video.state == VideoState.FAILED else None,
        # Shoal's addition beside PeerTube's sentence: what failed, for programs (e.g. invalid_media).
        "failureCode": video.failure_code if video.state == VideoState.FAILED else None,
        "scheduledUpdate": None,
        "blacklisted": video.hidden,
        "blacklistedReason": video.hidden_reason if video.hidden else None,
        "createdAt": iso(video.created_at),
        "updatedAt": iso(video.updated_at),
        "publishedAt": iso(video.published_at),
        "originallyPublishedAt": iso(video.originally_published_at),
        "account": account_summary(shoal, _owner_of(video)),
        "channel": channel_summary(shoal, video.channel),
    }


def video_details(shoal: Shoal, view: VideoView) -> dict[str, Any]:
    """PeerTube's ``VideoDetails``: the list item plus tags, flags, full channel and account,
    and the HLS playlist with one file per rendition."""
    item = view.video
    data = video(shoal, item)
    data.update(
        {
            "descriptionPath": f"/api/v1/videos/{item.uuid}/description",
            "support": item.support or None,
            "tags": list(item.tags or []),
            "commentsEnabled": item.comments_enabled,
            "commentsPolicy": {"id": 1, "label": "Enabled"}
            if item.comments_enabled
            else {"id": 2, "label": "Disabled"},
            "downloadEnabled": item.download_enabled,
            "inputFileUpdatedAt": None,
            "trackerUrls": (tracker_urls(shoal) if item.is_local else remote_tracker_urls(shoal, item))
            if not needs_file_token(item)
            else [],
            "files": [],
            "streamingPlaylists": streaming_playlists(shoal, item, view.renditions, view.redundancies),
            "channel": channel(shoal, item.channel, view.stats),
            "account": account(shoal, _owner_of(item), view.stats),
        }
    )
    return data
