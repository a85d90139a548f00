"""Where a video's files are served: HLS playlists and fragments, images, torrents, magnets and
trackers, as URLs for the REST API, ActivityPub documents and torrents alike.

HLS keys ``hls/<uuid>/<file>`` are served at ``/static/streaming-playlists/hls/<uuid>/<file>``
(or at the bucket's public URL when ``s3_public_url`` is set), and at
``…/hls/private/<uuid>/<file>`` (which needs a ``videoFileToken``) for private, internal and
hidden videos. Thumbnails, previews and torrents are at ``/lazy-static/<folder>/<file>``.
Remote videos carry absolute URLs, used as is.
"""

from __future__ import annotations

import posixpath
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from ..core import Shoal
from ..models import Rendition, Video
from ..services.visibility import TOKEN_PRIVACIES
from ..storage import keys


def video_image(video: Video, value: str | None, folder: str) -> str | None:
    """Local images by their key; a remote video's by the local copy made on first request.

    Images are served as immutable, and a thumbnail the uploader replaces keeps its key: its URL
    carries the video's last change (``?v=``) so browsers and caches fetch the new picture.
    """
    if value and video.remote_url is not None and "://" in value:
        return f"/lazy-static/{folder}/remote-{video.uuid}.jpg"
    path = image_path(value, folder)
    if path is not None and video.custom_thumbnail and video.updated_at is not None:
        path += f"?v={int(video.updated_at.timestamp() * 1000):x}"
    return path


def image_path(value: str | None, folder: str) -> str | None:
    if not value:
        return None
    return f"/lazy-static/{folder}/{quote(posixpath.basename(urlsplit(value).path or value))}"


def _hls_key(video: Video, value: str) -> str:
    return value if "/" in value else keys.hls(video.uuid, value)


def needs_file_token(video: Video) -> bool:
    """Private, internal and hidden videos' files are served under ``hls/private/`` with a token."""
    return video.privacy in TOKEN_PRIVACIES or video.hidden


def media_url(shoal: Shoal, video: Video, value: str | None) -> str | None:
    """The URL of one of a video's HLS files (given as a storage key, a file name or a URL)."""
    if not value:
        return None
    if "://" in value:
        return value
    key = _hls_key(video, value)
    if needs_file_token(video):
        name = key.removeprefix(keys.hls(video.uuid) + "/")
        return shoal.url(f"/static/streaming-playlists/hls/private/{video.uuid}/{quote(name)}")
    if shoal.settings.s3_public_url:
        public = shoal.storage.public_url(key)
        if public:
            return public
    return shoal.url("/static/streaming-playlists/" + quote(key))


def lazy_url(shoal: Shoal, value: str | None, folder: str) -> str | None:
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


def has_torrent(shoal: Shoal, video: Video, rendition: Rendition) -> bool:
    # Never for private, internal or hidden videos, whatever rows linger.
    if not rendition.info_hash or not rendition.torrent_path or not shoal.settings.p2p_enabled:
        return False
    return not (video.is_local and needs_file_token(video))


def magnet(
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
        params += [("tr", url) for url in tracker_urls(shoal)]
    if file_url:
        params.append(("ws", file_url))
    return "magnet:?" + urlencode(params, safe=":", quote_via=quote)


def resolution(height: int) -> dict[str, Any]:
    return {"id": height, "label": f"{height}p" if height else "Audio only"}


def video_file(shoal: Shoal, video: Video, rendition: Rendition) -> dict[str, Any]:
    """PeerTube's ``VideoFile`` for one fragmented-MP4 rendition of the HLS playlist."""
    file_url = media_url(shoal, video, rendition.file_path)
    torrent_ok = has_torrent(shoal, video, rendition)
    torrent_url = lazy_url(shoal, rendition.torrent_path, keys.TORRENTS) if torrent_ok else None
    file_name = posixpath.basename(rendition.file_path or "")
    torrent_name = posixpath.basename(rendition.torrent_path or "") if torrent_ok else ""
    return {
        "id": rendition.id,
        "resolution": resolution(rendition.height),
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
        "magnetUri": magnet(shoal, video, rendition, torrent_url, file_url) if torrent_ok else None,
        "metadataUrl": shoal.url(f"/api/v1/videos/{video.uuid}/metadata/{rendition.id}")
        if video.is_local
        else None,
    }
