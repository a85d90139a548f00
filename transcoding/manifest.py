"""The segments-sha256 integrity manifest, in PeerTube's shape.

P2P viewers check every segment received from another peer against this file before
playing it. Shape: ``{rendition file name: {"start-end": lowercase hex sha256}}`` with
inclusive byte ranges, the ``#EXT-X-MAP`` init section included (its key starts at 0).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from .playlist import ByteRange, read_media_playlist

CHUNK_SIZE = 1024 * 1024


def build_segments_sha256(
    out_dir: str | os.PathLike[str], media_playlists: Iterable[str]
) -> dict[str, dict[str, str]]:
    """Hash every byte range referenced by the given media playlists in ``out_dir``.

    Files are streamed in 1 MiB reads; none is ever held in memory whole. Blocking: run
    it in an executor (or use :func:`write_segments_sha256_async`) from async code.
    """
    root = Path(out_dir)
    manifest: dict[str, dict[str, str]] = {}
    for name in media_playlists:
        playlist = read_media_playlist(root / name)
        for uri in playlist.resources:
            ranges = playlist.ranges(uri)
            if not ranges:
                continue
            manifest[uri] = hash_ranges(root / _local_name(uri), ranges)
    return manifest


def hash_ranges(path: Path, ranges: Iterable[ByteRange]) -> dict[str, str]:
    """SHA-256 of each byte range of ``path``, keyed ``"start-end"``."""
    hashes: dict[str, str] = {}
    with path.open("rb") as file:
        for byte_range in sorted(ranges, key=lambda r: r.offset):
            digest = hashlib.sha256()
            file.seek(byte_range.offset)
            left = byte_range.length
            while left:
                chunk = file.read(min(CHUNK_SIZE, left))
                if not chunk:
                    raise ValueError(f"{path.name} ends before byte {byte_range.end}")
                digest.update(chunk)
                left -= len(chunk)
            hashes[byte_range.key] = digest.hexdigest()
    return hashes


def write_segments_sha256(
    out_dir: str | os.PathLike[str], prefix: str, media_playlists: Iterable[str]
) -> Path:
    """Build the manifest and write it as ``{prefix}-segments-sha256.json`` in ``out_dir``.

    The file appears atomically (written aside, then renamed). Returns its path.
    """
    root = Path(out_dir)
    manifest = build_segments_sha256(root, media_playlists)
    target = root / f"{prefix}-segments-sha256.json"
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(json.dumps(manifest, sort_keys=True), encoding="utf-8")
    os.replace(temporary, target)
    return target


async def write_segments_sha256_async(
    out_dir: str | os.PathLike[str], prefix: str, media_playlists: Iterable[str]
) -> Path:
    """:func:`write_segments_sha256` in a worker thread, for use from the event loop."""
    return await asyncio.to_thread(write_segments_sha256, out_dir, prefix, list(media_playlists))


def _local_name(uri: str) -> str:
    """The file a segment URI names in the same directory; anything else is refused."""
    name = uri.split("?", 1)[0]
    if "/" in name or "\\" in name or name in ("", ".", ".."):
        raise ValueError(f"segment URI {uri!r} is not a file next to its playlist")
    return name
