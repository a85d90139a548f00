"""The storage key layout: where each kind of file of a video lives, in one place.

Keys are POSIX relative paths, the same in local storage and S3. Folders are returned
without a trailing slash; storage's prefix operations treat them as folders.

    hls/<uuid>/<file>                  playlists, fragmented MP4s of a local video
    originals/<uuid>/<file>            the uploaded source, kept when the admin asks
    storyboards/<uuid>/<file>          the seek-preview sprite
    thumbnails/<prefix>.jpg            the small image (prefix: uuid, then a version)
    previews/<prefix>.jpg              the large image
    thumbnails/remote-<uuid>.jpg       our copy of a remote video's images (previews/ likewise)
    torrents/<file>.torrent            one torrent per rendition
    uploads/<upload id>/<file>         a resumable upload's parts, until it completes
    redundancy/hls/<uuid>/<file>       our mirror of a remote video's HLS files
    redundancy/torrents/<file>         torrents of our mirrors
"""

from __future__ import annotations

import re

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
"""A local video's UUID as its keys spell it (lowercase): check a name from a URL with it."""

HLS = "hls"
ORIGINALS = "originals"
STORYBOARDS = "storyboards"
THUMBNAILS = "thumbnails"
PREVIEWS = "previews"
TORRENTS = "torrents"
UPLOADS = "uploads"
MIRRORS = "redundancy/hls"
MIRROR_TORRENTS = "redundancy/torrents"
LAZY_STATIC = (THUMBNAILS, PREVIEWS, TORRENTS)
"""The folders served under PeerTube's ``/lazy-static/<folder>/<file>``: its URL names are ours."""


def _join(folder: str, name: str | None) -> str:
    return folder if name is None else f"{folder}/{name}"


def hls(uuid: str, name: str | None = None) -> str:
    """A local video's HLS folder, or one file in it."""
    return _join(f"{HLS}/{uuid}", name)


def original(uuid: str, name: str | None = None) -> str:
    """A video's kept source folder, or the source file."""
    return _join(f"{ORIGINALS}/{uuid}", name)


def storyboards(uuid: str, name: str | None = None) -> str:
    """A video's storyboard folder, or one sprite."""
    return _join(f"{STORYBOARDS}/{uuid}", name)


def thumbnail(prefix: str) -> str:
    """A video's small image."""
    return f"{THUMBNAILS}/{prefix}.jpg"


def preview(prefix: str) -> str:
    """A video's large image."""
    return f"{PREVIEWS}/{prefix}.jpg"


def remote_image(folder: str, uuid: str) -> str:
    """Our copy of a remote video's thumbnail (``folder`` THUMBNAILS) or preview (PREVIEWS)."""
    return lazy_static(folder, f"remote-{uuid}.jpg")


def lazy_static(folder: str, name: str) -> str:
    """The key behind ``/lazy-static/<folder>/<name>``; ValueError for a folder not served there."""
    if folder not in LAZY_STATIC:
        raise ValueError(f"not a lazy-static folder: {folder!r}")
    return f"{folder}/{name}"


def torrent(name: str) -> str:
    """A rendition's torrent file (``name`` includes ``.torrent``)."""
    return f"{TORRENTS}/{name}"


def upload_part(upload_id: str, name: str) -> str:
    """A resumable upload's data, until the upload completes."""
    return f"{UPLOADS}/{upload_id}/{name}"


def mirror(uuid: str, name: str | None = None) -> str:
    """Our mirror of a remote video: its folder, or one file."""
    return _join(f"{MIRRORS}/{uuid}", name)


def mirror_torrent(name: str) -> str:
    """The torrent of one of our mirrors."""
    return f"{MIRROR_TORRENTS}/{name}"


def video_folders(uuid: str) -> tuple[str, ...]:
    """Every folder that holds only this local video's files (removed with the video)."""
    return hls(uuid), original(uuid), storyboards(uuid)
