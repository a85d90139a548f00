"""The ActivityPub ``Video`` object we send: PeerTube's shape, field for field.

:func:`to_ap` builds the document a PeerTube receiver accepts (notes §3.5); the audience
helpers say who may receive a video. Reading a received ``Video`` is
:mod:`federation.video_parse`; storing and fetching remote videos is
:mod:`federation.video_store`.
"""

from __future__ import annotations

import posixpath
from typing import Any
from urllib.parse import quote

from instance.core import Shoal
from instance.models import Actor, Privacy, Rendition, Video
from instance.services.visibility import shared
from instance.vocab import CATEGORIES, LANGUAGES, LICENCES
from instance.web.media import media_url, tracker_urls, video_file
from instance.web.responses import iso

from .context import PUBLIC, with_context

THUMBNAIL_SIZE = (280, 157)
PREVIEW_SIZE = (850, 480)
HLS_MEDIA_TYPE = "application/x-mpegURL"
TORRENT_MEDIA_TYPE = "application/x-bittorrent"
MAGNET_MEDIA_TYPE = "application/x-bittorrent;x-scheme-handler/magnet"


def video_ap_id(shoal: Shoal, video: Video) -> str:
    """The ActivityPub id of a video: ``/videos/watch/<uuid>`` here, its origin's URL if remote."""
    return video.remote_url or shoal.url(f"/videos/watch/{video.uuid}")


def followers_urls(*actors: Actor | None) -> list[str]:
    """The followers collections of ``actors`` (duplicates and missing ones dropped)."""
    out: list[str] = []
    for actor in actors:
        url = actor.followers_url if actor is not None else None
        if url and url not in out:
            out.append(url)
    return out


def audience(video: Video) -> tuple[list[str], list[str]] | None:
    """``(to, cc)`` of a local video by privacy; None for videos that never federate.

    Public: Public in ``to``; unlisted: ``to`` empty, Public and the followers in ``cc``, as
    PeerTube sends it (audience.ts): PeerTube 6.3 reads any non-empty ``to`` as public. The
    followers of the channel and of its account are addressed either way.
    """
    followers = followers_urls(video.channel, video.channel.owner)
    if video.privacy == Privacy.PUBLIC:
        return [PUBLIC], followers
    if video.privacy == Privacy.UNLISTED:
        return [], [PUBLIC, *followers]
    return None


def federates(video: Video) -> bool:
    """Whether a local video is sent to other instances: published, not hidden, public or unlisted."""
    return video.is_local and shared(video)


def open_to_remote(video: Video) -> bool:
    """Whether remote actors may interact with a video (comment, rate, view, share, report):
    remote videos, and local ones that :func:`federates` allows out. A private, internal,
    unpublished or hidden local video is invisible to them, so it cannot be a target."""
    return not video.is_local or federates(video)


def _seconds(value: float | None) -> str:
    return f"PT{max(0, round(value or 0))}S"


def _peertube_text(value: str | None) -> str | None:
    # PeerTube refuses a whole Video whose content or support is a string of fewer than 3
    # characters (custom-validators/videos.ts: null, or 3 to the maximum): send null then.
    return value if value and len(value) >= 3 else None


def _labelled(table: dict[Any, str], key: Any) -> dict[str, str] | None:
    if key is None or key not in table:
        return None
    return {"identifier": str(key), "name": table[key]}


def _lazy(shoal: Shoal, value: str | None, folder: str) -> str | None:
    if not value:
        return None
    if "://" in value:
        return value
    return shoal.url(f"/lazy-static/{folder}/{quote(posixpath.basename(value))}")


def _icons(shoal: Shoal, video: Video) -> list[dict[str, Any]]:
    icons = []
    for value, folder, (width, height) in (
        (video.thumbnail, "thumbnails", THUMBNAIL_SIZE),
        (video.preview, "previews", PREVIEW_SIZE),
    ):
        url = _lazy(shoal, value, folder)
        if url:
            icons.append(
                {"type": "Image", "url": url, "mediaType": "image/jpeg", "width": width, "height": height}
            )
    return icons


def _storyboard(shoal: Shoal, video: Video) -> list[dict[str, Any]]:
    board = video.storyboard if isinstance(video.storyboard, dict) else None
    if not board or not board.get("sprites"):
        return []
    tile_w, tile_h = int(board.get("tileWidth") or 0), int(board.get("tileHeight") or 0)
    urls = []
    for sprite in board["sprites"]:
        if "://" in sprite:
            href = sprite
        else:
            href = shoal.url(f"/lazy-static/storyboards/{video.uuid}/{quote(posixpath.basename(sprite))}")
        urls.append(
            {
                "mediaType": "image/jpeg",
                "href": href,
                "width": tile_w * int(board.get("columns") or 1),
                "height": tile_h * int(board.get("rows") or 1),
                "tileWidth": tile_w,
                "tileHeight": tile_h,
                "tileDuration": _seconds(board.get("tileDuration")),
            }
        )
    return [{"type": "Image", "rel": ["storyboard"], "url": urls}]


def _rendition_links(shoal: Shoal, video: Video, rendition: Rendition) -> list[dict[str, Any]]:
    # The REST VideoFile holds the same URLs, with P2P's rules for torrents and magnets
    # (P2P enabled, torrent made, never for private/internal/hidden videos).
    rest = video_file(shoal, video, rendition)
    fps = round(rendition.fps or 0)
    size = {"height": rendition.height, "width": rendition.width, "fps": fps}
    codecs = [{"type": "PropertyValue", "name": "ffprobe_codec_type", "value": "audio"}]
    if rendition.height:
        codecs.append({"type": "PropertyValue", "name": "ffprobe_codec_type", "value": "video"})
    codecs.append({"type": "PropertyValue", "name": "peertube_format_flag", "value": "fragmented"})
    links: list[dict[str, Any]] = [
        {
            "type": "Link",
            "mediaType": "video/mp4",
            "href": rest["fileUrl"],
            "height": rendition.height,
            "width": rendition.width,
            "size": rendition.size,
            "fps": fps,
            "attachment": codecs,
        }
    ]
    if rest["torrentUrl"]:
        links.append({"type": "Link", "mediaType": TORRENT_MEDIA_TYPE, "href": rest["torrentUrl"], **size})
    if rest["magnetUri"]:
        links.append({"type": "Link", "mediaType": MAGNET_MEDIA_TYPE, "href": rest["magnetUri"], **size})
    return links


def _swarm_ids(shoal: Shoal, video: Video, renditions: list[Rendition]) -> list[str]:
    if not shoal.settings.p2p_enabled or shoal.ext.swarm_ids is None:
        return []
    return list(shoal.ext.swarm_ids(shoal, video, renditions))


def _url_array(shoal: Shoal, video: Video, renditions: list[Rendition]) -> list[dict[str, Any]]:
    urls: list[dict[str, Any]] = [
        {"type": "Link", "mediaType": "text/html", "href": video_ap_id(shoal, video)}
    ]
    master = media_url(shoal, video, video.master_playlist)
    if master and renditions:
        ordered = sorted(renditions, key=lambda r: r.height, reverse=True)
        # PeerTube's Infohash tags are the P2P swarm ids of the renditions (what its players
        # announce to the tracker for HLS), not the torrents' infohashes, which are in magnets.
        tag: list[dict[str, Any]] = [
            {"type": "Infohash", "name": name} for name in _swarm_ids(shoal, video, ordered)
        ]
        links: list[dict[str, Any]] = []
        for rendition in ordered:
            links += _rendition_links(shoal, video, rendition)
        sha = media_url(shoal, video, video.segments_sha256)
        if sha:
            tag.append({"type": "Link", "name": "sha256", "mediaType": "application/json", "href": sha})
        urls.append({"type": "Link", "mediaType": HLS_MEDIA_TYPE, "href": master, "tag": tag + links})
    if any(link.get("type") == "Infohash" or link.get("mediaType") == MAGNET_MEDIA_TYPE
           for url in urls for link in url.get("tag", [])):  # fmt: skip
        for href in tracker_urls(shoal):
            kind = "websocket" if href.startswith("ws") else "http"
            urls.append({"type": "Link", "name": f"tracker-{kind}", "rel": ["tracker", kind], "href": href})
    return urls


def to_ap(shoal: Shoal, video: Video, renditions: list[Rendition], *, context: bool = True) -> dict[str, Any]:
    """PeerTube's ``Video`` object of a local video (``video.channel`` and its owner loaded).

    The audience follows the privacy; callers must not send a video :func:`federates`
    refuses (private, internal, unpublished, hidden).
    """
    vid = video_ap_id(shoal, video)
    channel = video.channel
    account = channel.owner or channel
    to, cc = audience(video) or ([], [])
    published = video.published_at or video.created_at
    doc: dict[str, Any] = {
        "type": "Video",
        "id": vid,
        "name": video.name,
        "duration": _seconds(video.duration),
        "uuid": video.uuid,
        "category": _labelled(CATEGORIES, video.category),
        "licence": _labelled(LICENCES, video.licence),
        "language": _labelled(LANGUAGES, video.language),
        "views": int(video.views or 0),
        "sensitive": bool(video.nsfw),
        "waitTranscoding": bool(video.wait_transcoding),
        "state": 1,
        "commentsEnabled": bool(video.comments_enabled),
        "canReply": None if video.comments_enabled else PUBLIC,
        "commentsPolicy": 1 if video.comments_enabled else 2,
        "downloadEnabled": bool(video.download_enabled),
        "published": iso(published),
        "originallyPublishedAt": iso(video.originally_published_at),
        "updated": iso(video.updated_at),
        "uploadDate": iso(video.created_at),
        "tag": [{"type": "Hashtag", "name": tag} for tag in (video.tags or [])],
        "mediaType": "text/markdown",
        "content": _peertube_text(video.description),
        "support": _peertube_text(video.support),
        "subtitleLanguage": [],
        "icon": _icons(shoal, video),
        "preview": _storyboard(shoal, video),
        "aspectRatio": round(video.aspect_ratio, 4) if video.aspect_ratio else None,
        "url": _url_array(shoal, video, renditions),
        "likes": f"{vid}/likes",
        "dislikes": f"{vid}/dislikes",
        "shares": f"{vid}/announces",
        "comments": f"{vid}/comments",
        "hasParts": f"{vid}/chapters",  # served by video_routes (no chapters yet: an empty list)
        "attributedTo": [{"type": "Person", "id": account.ap_id}, {"type": "Group", "id": channel.ap_id}],
        "isLiveBroadcast": False,
        "liveSaveReplay": None,
        "permanentLive": None,
        "latencyMode": None,
        "to": to,
        "cc": cc,
    }
    for optional in ("category", "licence", "language", "aspectRatio"):
        if doc[optional] is None:
            del doc[optional]
    return with_context(doc, "Video") if context else doc
