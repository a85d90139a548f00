"""Making torrents and magnet links of HLS renditions — pure: a file in, bencoded bytes out.

Every torrent is a single-file **v1** torrent (hybrid and v2 break aria2c, transmission and
web seeds): the rendition's fragmented MP4, exactly the bytes HLS serves as byte ranges.
Its ``url-list`` (BEP 19) is the file's public URL so storage is always a seed, and its
announce list is the instance's HTTP tracker then its WebSocket tracker, one tier each
(:func:`announce_order`; PeerTube writes them the other way round). Hashing reads the whole
file: call :func:`make_torrent` in a thread.
Magnet links are built by the REST serializer from the stored infohash.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import libtorrent as lt

CREATED_BY = "Shoal"
# Characters PeerTube replaces in a title to make the torrent's name.
_UNSAFE = re.compile(r'[/\\?%*:|"<>]')


@dataclass(frozen=True)
class Torrent:
    """A made torrent: its bencoded bytes and v1 info-hash (40 lowercase hex digits)."""

    data: bytes
    info_hash: str
    name: str


def torrent_name(title: str, height: int, extension: str = ".mp4") -> str:
    """PeerTube's torrent name: the title with ``/ \\ ? % * : | " < >`` replaced, then ``<res>p.mp4``."""
    return f"{_UNSAFE.sub('-', title).strip()} {height}p{extension}"


def torrent_file_name(prefix: str, height: int) -> str:
    """The storage file name of a rendition's torrent: ``<prefix>-<res>-hls.torrent``."""
    return f"{prefix}-{height}-hls.torrent"


def make_torrent(
    path: str | os.PathLike[str],
    *,
    name: str,
    trackers: list[str],
    web_seeds: list[str],
    piece_size: int = 0,
) -> Torrent:
    """A v1 single-file torrent of ``path`` named ``name`` (the file name on disk does not matter).

    ``trackers`` become one tier each, in order; ``web_seeds`` the ``url-list``.
    ``piece_size`` 0 lets libtorrent pick one for the file's size.
    """
    source = Path(path)
    size = source.stat().st_size
    entry = lt.create_file_entry(name, size)
    creator = lt.create_torrent([entry], piece_size, lt.create_torrent.v1_only)
    length = creator.piece_length()
    with source.open("rb") as handle:
        for index in range(creator.num_pieces()):
            creator.set_hash(index, hashlib.sha1(handle.read(length)).digest())
    for tier, url in enumerate(trackers):
        creator.add_tracker(url, tier)
    for url in web_seeds:
        creator.add_url_seed(url)
    creator.set_creator(CREATED_BY)
    data = lt.bencode(creator.generate())
    return Torrent(data=data, info_hash=info_hash_of(data), name=name)


def announce_order(trackers: list[str]) -> list[str]:
    """The trackers as a torrent lists them: HTTP(S) first, then WebSocket (WebTorrent).

    libtorrent (2.x builds with WebTorrent support included) announces tier by tier and stops
    at the first tier that answers (BEP 12): with the WebSocket tracker first it looks only for
    WebRTC peers, which a desktop client often cannot reach (no common network, no STUN), and
    never learns the seeder's TCP address. Plain clients (aria2c, transmission) skip ``ws://``
    either way, and WebTorrent (browsers, Node) announces to every WebSocket tracker listed,
    whatever its tier.
    """
    return sorted(trackers, key=lambda url: url.startswith(("ws://", "wss://")))


def info_hash_of(data: bytes) -> str:
    """The v1 info-hash (hex) of a bencoded torrent."""
    return str(lt.torrent_info(data).info_hashes().v1)
