"""Reading a received ActivityPub ``Video``: PeerTube's own receiving rules, into plain values.

:func:`parse_video` checks a document and returns a :class:`ParsedVideo` (absolute URLs,
model attribute names) or raises :class:`InvalidObject`; nothing is stored here
(:mod:`federation.video_store` stores it).
"""

from __future__ import annotations

import re
import uuid as uuid_lib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from instance.models import Privacy
from instance.services.video_fields import (
    DESCRIPTION_MAX,
    NAME_MAX,
    NAME_MIN,
    SUPPORT_MAX,
    TAG_MAX,
    TAG_MIN,
    TAGS_MAX,
)
from instance.vocab import CATEGORIES, LANGUAGES, LICENCES

from .ap import host_of, is_url
from .context import PUBLIC_ALIASES
from .videos import HLS_MEDIA_TYPE, MAGNET_MEDIA_TYPE, TORRENT_MEDIA_TYPE

VIDEO_MEDIA_TYPES = ("video/mp4", "video/webm", "video/ogg", "audio/mp4")
_DURATION = re.compile(r"^P(?:(\d+)D)?T?(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?$")
_INFOHASH = re.compile(r"^[0-9a-fA-F]{40}$")


class InvalidObject(ValueError):
    """A received object that breaks the rules a PeerTube receiver applies; nothing is stored."""


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


def int_of(value: Any) -> int | None:
    """An integer a document gives (a JSON integer, or a float with no fraction; not a boolean), else None."""
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
            height = int_of(tag.get("height"))
            if height is None or height < 0:
                continue
            if media_type in VIDEO_MEDIA_TYPES and is_url(href) and int_of(tag.get("size")) is not None:
                entry = renditions.setdefault(height, {"height": height})
                fps = tag.get("fps")
                entry.update(
                    file_path=href,
                    playlist_path=_playlist_of(href),
                    width=int_of(tag.get("width")) or 0,
                    size=int_of(tag.get("size")) or 0,
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
        width, height = int_of(icon.get("width")), int_of(icon.get("height"))
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
            tile_w, tile_h = int_of(url.get("tileWidth")), int_of(url.get("tileHeight"))
            width, height = int_of(url.get("width")), int_of(url.get("height"))
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
    if fetched_from and host_of(fetched_from) != host_of(vid):
        raise InvalidObject("id is not on the host it was fetched from")
    name = doc.get("name")
    if not isinstance(name, str) or not NAME_MIN <= len(name.strip()) <= NAME_MAX:
        raise InvalidObject("name must have 3 to 120 characters")
    try:
        video_uuid = str(uuid_lib.UUID(str(doc.get("uuid"))))
    except ValueError:
        raise InvalidObject("uuid is not a UUID") from None
    duration = parse_duration(doc.get("duration"))
    views = int_of(doc.get("views"))
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
    policy = int_of(doc.get("commentsPolicy"))
    comments_enabled = policy != 2 if policy is not None else doc.get("commentsEnabled") is not False
    aspect = doc.get("aspectRatio")
    fields = {
        "name": name.strip(),
        "description": _text(doc.get("content"), DESCRIPTION_MAX),
        "support": _text(doc.get("support"), SUPPORT_MAX),
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
