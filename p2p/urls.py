"""Where our mirrors of remote videos live on the web: their files' URL and their CacheFile's id.

PeerTube's paths, so a PeerTube origin accepts our CacheFile. Pure (settings in, URL out) and
light: federation imports it to describe our mirrors without loading the P2P machinery.
"""

from __future__ import annotations

from instance.core import Shoal


def mirror_base_url(shoal: Shoal, uuid: str) -> str:
    """Where our copy of a remote video's HLS files is served (PeerTube's path)."""
    return f"{shoal.settings.public_url.rstrip('/')}/static/redundancy/hls/{uuid}"


def cachefile_id(shoal: Shoal, uuid: str) -> str:
    """The ActivityPub id of our CacheFile for a mirrored video (PeerTube's shape)."""
    return f"{shoal.settings.public_url.rstrip('/')}/redundancy/streaming-playlists/hls/{uuid}"
