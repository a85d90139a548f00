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
from urllib.parse import quote, urlencode, urlsplit

from ..core import Shoal
from ..models import Actor, Privacy, Rendition, Video, VideoState
from ..services.videos import ActorStats, VideoView
from ..vocab import CATEGORIES, LANGUAGES, LICENCES, PRIVACIES, labelled
from .registry import iso

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


def _video_image(video: Video, value: str | None, folder: str) -> str | None:
    """Local images by their key; a remote video's by the local copy made on first request.

    Images are served as immutable, and a thumbnail the uploader replaces keeps its key: its URL
    carries the video's last change (``?v=``) so browsers and caches fetch the new picture.
    """
    if value and video.remote_url is not None and "://" in value:
        return f"/lazy-static/{folder}/remote-{video.uuid}.jpg"
    path = _image_path(value, folder)
    if path is not None and video.custom_thumbnail and video.updated_at is not None:
        path += f"?v={int(video.updated_at.timestamp() * 1000):x}"
    return path


def _image_path(value: str | None, folder: str) -> str | None:
    if not value:
        return None
    return f"/lazy-static/{folder}/{quote(posixpath.basename(urlsplit(value).path or value))}"


def _hls_key(video: Video, value: str) -> str:
    return value if "/" in value else f"hls/{video.uuid}/{value}"


def needs_file_token(video: Video) -> bool:
    """Private, internal and hidden videos' files are served under ``hls/private/`` with a token."""
    return video.privacy in (Privacy.PRIVATE, Privacy.INTERNAL) or video.hidden


def media_url(shoal: Shoal, video: Video, value: str | None) -> str | None:
    """The URL of one of a video's HLS files (given as a storage key, a file name or a URL)."""
    if not value:
        return None
    if "://" in value:
        return value
    key = _hls_key(video, value)
    if needs_file_token(video):
        name = key.removeprefix(f"hls/{video.uuid}/")
        return shoal.url(f"/static/streaming-playlists/hls/private/{video.uuid}/{quote(name)}")
    if shoal.settings.s3_public_url:
        public = shoal.storage.public_url(key)
        if public:
            return public
    return shoal.url("/static/streaming-playlists/" + quote(key))


def _lazy_url(shoal: Shoal, value: str | None, folder: str) -> str | None:
    if not value:
        return None
    if "://" in value:
        return value
    return shoal.url(f"/lazy-static/{folder}/{quote(posixpath.basename(value))}")


def tracker_urls(shoal: Shoal) -> list[str]:
    """This instance's trackers, WebSocket then HTTP (``[]`` when P2P is disabled)."""
    if not shoal.settings.p2p_enabled:
        return []
    base = shoal.settings.public_url
    # http://host → ws://host, https://host → wss://host
    return ["ws" + base.removeprefix("http") + "/tracker/socket", base + "/tracker/announce"]


def remote_tracker_urls(shoal: Shoal, video: Video) -> list[str]:
    """The trackers a remote video's Video object names (PeerTube's ``tracker-websocket`` and
    ``tracker-http`` links), WebSocket first: its viewers everywhere share one swarm there.

    Only trackers on the video's own host are kept, so a document cannot send our viewers'
    players to announce to a third party. ``[]`` when P2P is off here.
    """
    raw = video.remote_data if isinstance(video.remote_data, dict) else {}
    links = raw.get("url")
    if not shoal.settings.p2p_enabled or not video.remote_url or not isinstance(links, list):
        return []
    host = urlsplit(video.remote_url).netloc.lower()
    found: list[str] = []
    for link in links:
        rel = link.get("rel") if isinstance(link, dict) else None
        if not isinstance(rel, list) or "tracker" not in rel:
            continue
        href = link.get("href")
        if not isinstance(href, str) or len(href) > 2048:
            continue
        parts = urlsplit(href)
        if parts.scheme in ("ws", "wss", "http", "https") and parts.netloc.lower() == host:
            found.append(href)
    return sorted(dict.fromkeys(found), key=lambda url: not url.startswith(("ws://", "wss://")))


def _has_torrent(shoal: Shoal, video: Video, rendition: Rendition) -> bool:
    # Never for private, internal or hidden videos, whatever rows linger.
    if not rendition.info_hash or not rendition.torrent_path or not shoal.settings.p2p_enabled:
        return False
    return not (video.is_local and needs_file_token(video))


def _magnet(
    shoal: Shoal, video: Video, rendition: Rendition, torrent_url: str | None, file_url: str | None
) -> str | None:
    """PeerTube's magnet: ``xs`` (the .torrent), ``xt``, ``dn``, ``tr`` (the trackers), ``ws`` (web seed)."""
    if not rendition.info_hash:
        return None
    params: list[tuple[str, str]] = []
    if torrent_url:
        params.append(("xs", torrent_url))
    params += [("xt", f"urn:btih:{rendition.info_hash}"), ("dn", video.name)]
    if video.is_local:
        # HTTP tracker first, as in our torrents (p2p.torrents.announce_order): libtorrent puts
        # each ``tr`` in a tier of its own and stops at the first tier that answers.
        trackers = sorted(tracker_urls(shoal), key=lambda url: url.startswith(("ws://", "wss://")))
        params += [("tr", url) for url in trackers]
    if file_url:
        params.append(("ws", file_url))
    return "magnet:?" + urlencode(params, safe=":", quote_via=quote)


def _resolution(height: int) -> dict[str, Any]:
    return {"id": height, "label": f"{height}p" if height else "Audio only"}


def video_file(shoal: Shoal, video: Video, rendition: Rendition) -> dict[str, Any]:
    """PeerTube's ``VideoFile`` for one fragmented-MP4 rendition of the HLS playlist."""
    file_url = media_url(shoal, video, rendition.file_path)
    has_torrent = _has_torrent(shoal, video, rendition)
    torrent_url = _lazy_url(shoal, rendition.torrent_path, "torrents") if has_torrent else None
    file_name = posixpath.basename(rendition.file_path or "")
    torrent_name = posixpath.basename(rendition.torrent_path or "") if has_torrent else ""
    return {
        "id": rendition.id,
        "resolution": _resolution(rendition.height),
        "size": rendition.size,
        "width": rendition.width,
        "height": rendition.height,
        "fps": round(rendition.fps),
        "hasAudio": True,
        "hasVideo": rendition.height > 0,
        "fileUrl": file_url,
        "fileDownloadUrl": shoal.url(f"/download/streaming-playlists/hls/videos/{quote(file_name)}")
        if video.is_local and file_name
        else file_url,
        "playlistUrl": media_url(shoal, video, rendition.playlist_path),
        "torrentUrl": torrent_url,
        "torrentDownloadUrl": shoal.url(f"/download/torrents/{quote(torrent_name)}")
        if video.is_local and torrent_name
        else torrent_url,
        "magnetUri": _magnet(shoal, video, rendition, torrent_url, file_url) if has_torrent else None,
        "metadataUrl": shoal.url(f"/api/v1/videos/{video.uuid}/metadata/{rendition.id}")
        if video.is_local
        else None,
    }


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
        "thumbnailPath": _video_image(video, video.thumbnail, "thumbnails"),
        "previewPath": _video_image(video, video.preview, "previews"),
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
