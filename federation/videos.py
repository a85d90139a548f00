"""The ActivityPub ``Video`` object: PeerTube's shape out, remote videos stored in.

:func:`to_ap` builds the document a PeerTube receiver accepts (notes §3.5, field for
field); :func:`parse_video` checks and reads one (PeerTube's own receiving rules) into
plain values; :func:`store_remote_video` writes them as a remote :class:`Video` with its
renditions — metadata only, every media URL absolute and pointing at the origin, never
re-transcoded. :func:`get_or_fetch_video` is the entry point used by inbox handlers,
comments, search and backfill.
"""

from __future__ import annotations

import logging
import posixpath
import re
import uuid as uuid_lib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from instance.api.registry import iso
from instance.api.serializers import media_url, tracker_urls, video_file
from instance.core import Shoal
from instance.models import Actor, ActorKind, Privacy, Rendition, Video, VideoState, utcnow
from instance.services.video_fields import DESCRIPTION_MAX, NAME_MAX, NAME_MIN, TAG_MAX, TAG_MIN, TAGS_MAX
from instance.vocab import CATEGORIES, LANGUAGES, LICENCES

from .ap import is_local_url, is_url
from .context import PUBLIC, PUBLIC_ALIASES, with_context

log = logging.getLogger("shoal.federation.videos")

THUMBNAIL_SIZE = (280, 157)
PREVIEW_SIZE = (850, 480)
VIDEO_MEDIA_TYPES = ("video/mp4", "video/webm", "video/ogg", "audio/mp4")
HLS_MEDIA_TYPE = "application/x-mpegURL"
TORRENT_MEDIA_TYPE = "application/x-bittorrent"
MAGNET_MEDIA_TYPE = "application/x-bittorrent;x-scheme-handler/magnet"
_DURATION = re.compile(r"^P(?:(\d+)D)?T?(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?$")
_INFOHASH = re.compile(r"^[0-9a-fA-F]{40}$")


class InvalidObject(ValueError):
    """A received object that breaks the rules a PeerTube receiver applies; nothing is stored."""


# ---------------------------------------------------------------- out


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
    return (
        video.is_local
        and video.state == VideoState.PUBLISHED
        and not video.hidden
        and video.privacy in (Privacy.PUBLIC, Privacy.UNLISTED)
    )


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


# ---------------------------------------------------------------- in


@dataclass
class ParsedVideo:
    """What Shoal keeps of a received ``Video`` (absolute URLs, model attribute names)."""

    remote_url: str
    uuid: str
    channel_url: str
    account_url: str | None
    fields: dict[str, Any]
    renditions: list[dict[str, Any]] = field(default_factory=list)


def parse_date(value: Any) -> datetime | None:
    """An ISO 8601 date (``Z`` or offset) as an aware UTC datetime; None when absent or invalid."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_duration(value: Any) -> float:
    """Seconds of an ISO 8601 duration; PeerTube sends ``PT<n>S``."""
    if not isinstance(value, str):
        raise InvalidObject("duration is missing")
    match = _DURATION.match(value.strip())
    if not match or not value.startswith("P"):
        raise InvalidObject(f"duration {value[:40]!r} is not PT<n>S")
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _identifier(value: Any) -> str | None:
    if isinstance(value, dict):
        ident = value.get("identifier")
        return str(ident) if ident is not None else None
    return None


def _hrefs(value: Any) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, dict)]


def attributed(doc: dict[str, Any], kind: str) -> str | None:
    """The id of the ``kind`` (Person, Group) entry of ``attributedTo``."""
    for item in _hrefs(doc.get("attributedTo")):
        if item.get("type") == kind and is_url(item.get("id")):
            return item["id"]
    return None


def privacy_of(doc: dict[str, Any]) -> int:
    """Public in ``to`` → public; anywhere else (``cc``) or nowhere → unlisted."""
    to = doc.get("to") or []
    to = to if isinstance(to, list) else [to]
    return Privacy.PUBLIC if any(item in PUBLIC_ALIASES for item in to) else Privacy.UNLISTED


def _playlist_of(file_url: str) -> str:
    # PeerTube and Shoal name a rung's files <prefix>-<res>-fragmented.mp4 and <prefix>-<res>.m3u8.
    if file_url.endswith("-fragmented.mp4"):
        return file_url.removesuffix("-fragmented.mp4") + ".m3u8"
    return file_url


def _parse_hls(doc: dict[str, Any]) -> tuple[str | None, str | None, list[dict[str, Any]]]:
    master = sha = None
    renditions: dict[int, dict[str, Any]] = {}
    for link in _hrefs(doc.get("url")):
        if link.get("mediaType") != HLS_MEDIA_TYPE or not isinstance(link.get("tag"), list):
            continue
        href = link.get("href")
        if not is_url(href):
            continue
        master = href
        for tag in _hrefs(link["tag"]):
            media_type, href = tag.get("mediaType"), tag.get("href")
            if tag.get("type") == "Infohash":
                continue
            if tag.get("name") == "sha256" and is_url(href):
                sha = href
                continue
            height = _int(tag.get("height"))
            if height is None or height < 0:
                continue
            if media_type in VIDEO_MEDIA_TYPES and is_url(href) and _int(tag.get("size")) is not None:
                entry = renditions.setdefault(height, {"height": height})
                fps = tag.get("fps")
                entry.update(
                    file_path=href,
                    playlist_path=_playlist_of(href),
                    width=_int(tag.get("width")) or 0,
                    size=_int(tag.get("size")) or 0,
                    fps=float(fps) if isinstance(fps, int | float) and not isinstance(fps, bool) else 0.0,
                )
            elif media_type == TORRENT_MEDIA_TYPE and is_url(href):
                renditions.setdefault(height, {"height": height})["torrent_path"] = href
            elif media_type == MAGNET_MEDIA_TYPE and isinstance(href, str) and href.startswith("magnet:"):
                xt = parse_qs(urlsplit(href).query).get("xt", [""])[0]
                info_hash = xt.removeprefix("urn:btih:")
                if _INFOHASH.match(info_hash):
                    renditions.setdefault(height, {"height": height})["info_hash"] = info_hash.lower()
        break
    rungs = [r for r in renditions.values() if "file_path" in r]
    rungs.sort(key=lambda r: r["height"], reverse=True)
    # Infohash tags are swarm ids (derived from the master playlist's URL), skipped above:
    # the torrents' infohashes come from the magnets only.
    return master, sha, rungs


def _thumbnails(doc: dict[str, Any]) -> tuple[str | None, str | None]:
    images = []
    for icon in _hrefs(doc.get("icon")):
        width, height = _int(icon.get("width")), _int(icon.get("height"))
        url = icon.get("url")
        if icon.get("mediaType") == "image/jpeg" and width and height and is_url(url):
            images.append((width, url))
    if not images:
        raise InvalidObject("icon has no image/jpeg Image with an integer width and height")
    images.sort()
    return images[0][1], images[-1][1] if len(images) > 1 else None


def _storyboard_in(doc: dict[str, Any]) -> dict[str, Any] | None:
    for preview in _hrefs(doc.get("preview")):
        rel = preview.get("rel") or []
        if "storyboard" not in rel:
            continue
        for url in _hrefs(preview.get("url")):
            tile_w, tile_h = _int(url.get("tileWidth")), _int(url.get("tileHeight"))
            width, height = _int(url.get("width")), _int(url.get("height"))
            if not (is_url(url.get("href")) and tile_w and tile_h and width and height):
                continue
            try:
                tile_duration = parse_duration(url.get("tileDuration"))
            except InvalidObject:
                continue
            return {
                "sprites": [url["href"]],
                "tileWidth": tile_w,
                "tileHeight": tile_h,
                "columns": max(1, width // tile_w),
                "rows": max(1, height // tile_h),
                "tileDuration": tile_duration,
            }
    return None


def _tags(doc: dict[str, Any]) -> list[str]:
    out: dict[str, str] = {}
    for tag in _hrefs(doc.get("tag")):
        name = tag.get("name")
        if tag.get("type") == "Hashtag" and isinstance(name, str):
            name = name.strip().lstrip("#")
            if TAG_MIN <= len(name) <= TAG_MAX:
                out.setdefault(name.lower(), name)
    return list(out.values())[:TAGS_MAX]


def _text(value: Any, limit: int) -> str:
    if not isinstance(value, str):
        return ""
    return value.replace("\x00", "")[:limit]


def parse_video(doc: dict[str, Any], *, fetched_from: str | None = None) -> ParsedVideo:
    """Check a received ``Video`` as a PeerTube receiver does and read what Shoal stores.

    ``fetched_from``: the URL it was fetched from; the id must be on the same host.
    Raises :class:`InvalidObject` naming the first broken rule.
    """
    if not isinstance(doc, dict) or doc.get("type") != "Video":
        raise InvalidObject("not a Video")
    vid = doc.get("id")
    if not is_url(vid):
        raise InvalidObject("id is not an http(s) URL")
    if fetched_from and urlsplit(fetched_from).netloc.lower() != urlsplit(vid).netloc.lower():
        raise InvalidObject("id is not on the host it was fetched from")
    name = doc.get("name")
    if not isinstance(name, str) or not NAME_MIN <= len(name.strip()) <= NAME_MAX:
        raise InvalidObject("name must have 3 to 120 characters")
    try:
        video_uuid = str(uuid_lib.UUID(str(doc.get("uuid"))))
    except ValueError:
        raise InvalidObject("uuid is not a UUID") from None
    duration = parse_duration(doc.get("duration"))
    views = _int(doc.get("views"))
    if views is None:
        raise InvalidObject("views is not an integer")
    published, updated = parse_date(doc.get("published")), parse_date(doc.get("updated"))
    if published is None or updated is None:
        raise InvalidObject("published and updated must be dates")
    channel_url = attributed(doc, "Group")
    if channel_url is None:
        raise InvalidObject("attributedTo has no Group (channel)")
    if doc.get("mediaType", "text/markdown") not in ("text/markdown", "text/html"):
        raise InvalidObject("content must be text/markdown or text/html")
    thumbnail, preview = _thumbnails(doc)
    master, sha, rungs = _parse_hls(doc)
    category = _identifier(doc.get("category"))
    licence = _identifier(doc.get("licence"))
    language = _identifier(doc.get("language"))
    policy = _int(doc.get("commentsPolicy"))
    comments_enabled = policy != 2 if policy is not None else doc.get("commentsEnabled") is not False
    aspect = doc.get("aspectRatio")
    fields = {
        "name": name.strip(),
        "description": _text(doc.get("content"), DESCRIPTION_MAX),
        "support": _text(doc.get("support"), 1000),
        "language": language if language in LANGUAGES else None,
        "category": int(category)
        if category and category.isdigit() and int(category) in CATEGORIES
        else None,
        "licence": int(licence) if licence and licence.isdigit() and int(licence) in LICENCES else None,
        "tags": _tags(doc),
        "privacy": privacy_of(doc),
        "nsfw": doc.get("sensitive") is True,
        "comments_enabled": comments_enabled,
        "download_enabled": doc.get("downloadEnabled") is not False,
        "wait_transcoding": doc.get("waitTranscoding") is not False,
        "duration": duration,
        "aspect_ratio": float(aspect)
        if isinstance(aspect, int | float) and not isinstance(aspect, bool)
        else None,
        "views": max(0, views),
        "published_at": published,
        "originally_published_at": parse_date(doc.get("originallyPublishedAt")),
        "thumbnail": thumbnail,
        "preview": preview,
        "storyboard": _storyboard_in(doc),
        "master_playlist": master,
        "segments_sha256": sha,
    }
    return ParsedVideo(vid, video_uuid, channel_url, attributed(doc, "Person"), fields, rungs)


# ---------------------------------------------------------------- storing


async def video_by_url(session: AsyncSession, shoal: Shoal, url: str) -> Video | None:
    """The video (local or remote) an ActivityPub URL names, channel and owner loaded."""
    query = select(Video).options(joinedload(Video.channel).joinedload(Actor.owner))
    base = shoal.settings.public_url.rstrip("/") + "/"
    if url.startswith(base):
        path = urlsplit(url).path
        for prefix in ("/videos/watch/", "/w/"):
            if path.startswith(prefix):
                ident = path.removeprefix(prefix).split("/")[0]
                try:
                    return await session.scalar(
                        query.where(Video.uuid == str(uuid_lib.UUID(ident)), Video.remote_url.is_(None))
                    )
                except ValueError:
                    return None
        return None
    return await session.scalar(query.where(Video.remote_url == url))


def _stored_updated(video: Video) -> datetime | None:
    # The origin's own ``updated`` of the version stored (our updated_at moves with local
    # counters, and clocks differ between hosts).
    return parse_date(video.remote_data.get("updated")) if isinstance(video.remote_data, dict) else None


async def store_remote_video(shoal: Shoal, parsed: ParsedVideo, channel: Actor, raw: dict[str, Any]) -> Video:
    """Insert or refresh the remote video ``parsed`` in ``channel``; renditions replaced.

    A UUID already used by another video (local, or from another origin) is refused; a
    version older (``updated``) than the stored one changes nothing.
    """
    if channel.is_local or channel.kind != ActorKind.GROUP:
        raise InvalidObject("the channel of a remote video must be a remote Group")
    if urlsplit(channel.ap_id).netloc.lower() != urlsplit(parsed.remote_url).netloc.lower():
        raise InvalidObject("the video and its channel are on different hosts")
    now = utcnow()
    updated, stale = parse_date(raw.get("updated")), False
    async with shoal.db.write() as session:
        video = await session.scalar(select(Video).where(Video.remote_url == parsed.remote_url))
        if video is None:
            taken = await session.scalar(select(Video.id).where(Video.uuid == parsed.uuid))
            if taken is not None:
                raise InvalidObject(f"uuid {parsed.uuid} is already used by another video")
            video = Video(
                uuid=parsed.uuid,
                remote_url=parsed.remote_url,
                channel_id=channel.id,
                state=VideoState.PUBLISHED,
                state_changed_at=now,
                progress=100,
                created_at=parsed.fields["published_at"],
                **parsed.fields,
            )
            session.add(video)
        elif updated is not None and updated < (_stored_updated(video) or updated):
            # Updates are applied by concurrent jobs and may arrive out of order: an older
            # version never overwrites a newer one.
            log.info("older version of %s (updated %s) ignored", parsed.remote_url, raw.get("updated"))
            stale = True
        else:
            for name, value in parsed.fields.items():
                setattr(video, name, value)
            video.channel_id = channel.id
            video.state_changed_at = now
        if not stale:
            video.remote_data = raw
            video.updated_at = updated or now
            await session.flush()
            await session.execute(delete(Rendition).where(Rendition.video_id == video.id))
            for rung in parsed.renditions:
                session.add(Rendition(video_id=video.id, **rung))
        video_id = video.id
    async with shoal.db.read() as session:
        stored = await session.scalar(
            select(Video)
            .options(joinedload(Video.channel).joinedload(Actor.owner))
            .where(Video.id == video_id)
        )
        session.expunge_all()
    assert stored is not None
    return stored


async def from_ap(shoal: Shoal, doc: dict[str, Any], *, fetched_from: str | None = None) -> Video:
    """Store (or refresh) the remote video ``doc``; its channel is resolved (fetched if unknown).

    A video new here gets its existing comments crawled (:func:`federation.backfill.queue_comments`).
    """
    from .actors import resolve_actor

    parsed = parse_video(doc, fetched_from=fetched_from)
    if is_local_url(shoal, parsed.remote_url):
        raise InvalidObject("a remote instance cannot create or update a video of ours")
    channel = await resolve_actor(shoal, parsed.channel_url)
    async with shoal.db.read() as session:
        known = await session.scalar(select(Video.id).where(Video.remote_url == parsed.remote_url))
    stored = await store_remote_video(shoal, parsed, channel, doc)
    if known is None:
        from .backfill import queue_comments

        await queue_comments(shoal, stored)
    return stored


async def get_or_fetch_video(shoal: Shoal, url: str, *, refresh: bool = False) -> Video:
    """The video an ActivityPub URL names: from the database, else fetched from its origin.

    Raises :class:`~federation.errors.FetchError` when it cannot be fetched and
    :class:`InvalidObject` when the document is not an acceptable Video.
    """
    from .errors import Gone
    from .http import fetch_json

    async with shoal.db.read() as session:
        video = await video_by_url(session, shoal, url)
        if video is not None:
            session.expunge_all()
    if video is not None and (video.is_local or not refresh):
        return video
    if is_local_url(shoal, url):
        raise Gone(url, "no such local video")
    doc = await fetch_json(shoal, url)
    real = doc.get("id")
    if isinstance(real, str) and real != url and video is None:
        async with shoal.db.read() as session:
            known = await video_by_url(session, shoal, real)
            if known is not None:
                session.expunge_all()
                return known
    stored = await from_ap(shoal, doc, fetched_from=url)
    await sync_rates(shoal, stored, doc)
    return stored


async def sync_rates(shoal: Shoal, video: Video, doc: dict[str, Any]) -> None:
    """Copy the origin's like and dislike counts (its collections' ``totalItems``), best effort."""
    from .errors import FetchError
    from .http import fetch_json

    counts: dict[str, int] = {}
    for key in ("likes", "dislikes"):
        url = doc.get(key)
        if (
            not is_url(url)
            or urlsplit(url).netloc.lower() != urlsplit(video.remote_url or "").netloc.lower()
        ):
            continue
        try:
            collection = await fetch_json(shoal, url)
        except FetchError as exc:
            log.info("%s of %s not fetched: %s", key, video.remote_url, exc)
            continue
        total = _int(collection.get("totalItems"))
        if total is not None and total >= 0:
            counts[key] = total
    if counts:
        async with shoal.db.write() as session:
            await session.execute(update(Video).where(Video.id == video.id).values(**counts))
        video.likes, video.dislikes = counts.get("likes", video.likes), counts.get("dislikes", video.dislikes)


async def delete_remote_video(shoal: Shoal, url: str, *, host: str | None = None) -> bool:
    """Remove a remote video (its comments, ratings and renditions cascade). ``host``: only if
    the video lives there (the sender's host). True when something was removed."""
    async with shoal.db.write() as session:
        video = await session.scalar(select(Video).where(Video.remote_url == url))
        if video is None:
            return False
        if host is not None and urlsplit(url).netloc.lower() != host.lower():
            return False
        await session.execute(delete(Video).where(Video.id == video.id))
    return True
