"""Reading and writing the HLS playlists we produce (RFC 8216).

One parser serves everything that needs segment byte ranges and durations: the
integrity manifest, the bandwidth measurement and the URI rewriting after renames.
It reads the subset of RFC 8216 that ffmpeg's HLS muxer writes for fMP4 VOD.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SHORT_SEGMENT_SECONDS = 1.0

_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


@dataclass(frozen=True)
class ByteRange:
    """``length`` bytes starting at ``offset`` of a segment's resource."""

    offset: int
    length: int

    @property
    def end(self) -> int:
        """The last byte, inclusive."""
        return self.offset + self.length - 1

    @property
    def key(self) -> str:
        """PeerTube's key for this range in the segments-sha256 JSON: ``"start-end"``."""
        return f"{self.offset}-{self.end}"


@dataclass(frozen=True)
class Segment:
    """One media segment: where its bytes are and how long it plays."""

    uri: str
    duration: float
    byte_range: ByteRange | None


@dataclass(frozen=True)
class MediaPlaylist:
    """A parsed media playlist: the init section (``#EXT-X-MAP``) and the segments."""

    target_duration: int
    init_uri: str | None
    init_range: ByteRange | None
    segments: tuple[Segment, ...]
    ended: bool

    @property
    def duration(self) -> float:
        """Total play time, the sum of the segments' ``#EXTINF`` durations."""
        return sum(s.duration for s in self.segments)

    @property
    def resources(self) -> tuple[str, ...]:
        """The distinct files the playlist points at, in order of first use."""
        uris = [self.init_uri] if self.init_uri else []
        uris += [s.uri for s in self.segments]
        return tuple(dict.fromkeys(uris))

    def ranges(self, uri: str) -> list[ByteRange]:
        """Byte ranges of ``uri`` in file order, the init section first."""
        found = []
        if self.init_uri == uri and self.init_range is not None:
            found.append(self.init_range)
        found += [s.byte_range for s in self.segments if s.uri == uri and s.byte_range]
        return found


@dataclass(frozen=True)
class Variant:
    """One ``#EXT-X-STREAM-INF`` entry of a master playlist."""

    uri: str
    bandwidth: int
    average_bandwidth: int
    width: int
    height: int
    frame_rate: float
    codecs: str


class PlaylistError(ValueError):
    """A playlist does not have the shape ffmpeg's HLS muxer writes."""


def parse_media_playlist(text: str) -> MediaPlaylist:
    """Parse a media playlist's text; raise :class:`PlaylistError` when it is not one."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != "#EXTM3U":
        raise PlaylistError("not an M3U8 playlist")
    target = 0
    init_uri: str | None = None
    init_range: ByteRange | None = None
    segments: list[Segment] = []
    ended = False
    duration: float | None = None
    pending_range: tuple[int, int | None] | None = None
    next_offset: dict[str, int] = {}
    for line in lines[1:]:
        if line.startswith("#EXT-X-TARGETDURATION:"):
            target = int(line.partition(":")[2])
        elif line.startswith("#EXT-X-MAP:"):
            attrs = parse_attributes(line.partition(":")[2])
            init_uri = attrs.get("URI")
            if not init_uri:
                raise PlaylistError("EXT-X-MAP without URI")
            if "BYTERANGE" in attrs:
                length, offset = _byterange(attrs["BYTERANGE"])
                init_range = ByteRange(offset or 0, length)
                next_offset[init_uri] = init_range.offset + length
        elif line.startswith("#EXTINF:"):
            duration = float(line.partition(":")[2].split(",")[0])
        elif line.startswith("#EXT-X-BYTERANGE:"):
            pending_range = _byterange(line.partition(":")[2])
        elif line == "#EXT-X-ENDLIST":
            ended = True
        elif not line.startswith("#"):
            if duration is None:
                raise PlaylistError(f"segment {line!r} without EXTINF")
            byte_range = None
            if pending_range is not None:
                length, offset = pending_range
                if offset is None:
                    if line not in next_offset:
                        raise PlaylistError(f"byte range of {line!r} has no offset")
                    offset = next_offset[line]
                byte_range = ByteRange(offset, length)
                next_offset[line] = offset + length
            segments.append(Segment(line, duration, byte_range))
            duration, pending_range = None, None
    return MediaPlaylist(target, init_uri, init_range, tuple(segments), ended)


def read_media_playlist(path: str | os.PathLike[str]) -> MediaPlaylist:
    """Read and parse a media playlist file."""
    return parse_media_playlist(Path(path).read_text(encoding="utf-8"))


def retarget_media_playlist(text: str, uri: str) -> str:
    """Point every segment and the ``#EXT-X-MAP`` of a single-file playlist at ``uri``.

    Used after renaming ffmpeg's output; the byte ranges are left untouched.
    """
    quoted = _quote(uri)
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#EXT-X-MAP:"):
            line = re.sub(r'URI="[^"]*"', lambda _m: f"URI={quoted}", stripped)
        elif stripped and not stripped.startswith("#"):
            line = uri
        out.append(line)
    return "\n".join(out) + "\n"


def peak_bandwidth(playlist: MediaPlaylist) -> int:
    """The peak segment bitrate in bit/s, as RFC 8216 defines BANDWIDTH.

    A segment shorter than a second (the tail of the video) is counted together with
    the segment before it: a 0.03 s segment holding one keyframe would otherwise report
    a rate no player ever needs.
    """
    windows: list[list[float]] = []
    for segment in playlist.segments:
        if segment.byte_range is None:
            raise PlaylistError("peak bandwidth needs byte ranges")
        size, seconds = float(segment.byte_range.length), segment.duration
        if windows and seconds < SHORT_SEGMENT_SECONDS:
            windows[-1][0] += size
            windows[-1][1] += seconds
        else:
            windows.append([size, seconds])
    rates = [size * 8 / seconds for size, seconds in windows if seconds > 0]
    return round(max(rates, default=0.0))


def render_master_playlist(variants: Iterable[Variant]) -> str:
    """Write a master playlist listing ``variants`` in the given order.

    Every rendition starts its segments on aligned keyframes of closed GOPs, hence
    ``#EXT-X-INDEPENDENT-SEGMENTS``.
    """
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for v in variants:
        rate = f"{v.frame_rate:.3f}"
        lines.append(
            f"#EXT-X-STREAM-INF:BANDWIDTH={v.bandwidth},AVERAGE-BANDWIDTH={v.average_bandwidth},"
            f"RESOLUTION={v.width}x{v.height},FRAME-RATE={rate},CODECS={_quote(v.codecs)}"
        )
        lines.append(v.uri)
    return "\n".join(lines) + "\n"


def parse_attributes(text: str) -> dict[str, str]:
    """Parse an RFC 8216 attribute list, unquoting quoted-string values."""
    return {
        name: value[1:-1] if value.startswith('"') else value
        for name, value in _ATTRIBUTE.findall(text)
    }


def _byterange(text: str) -> tuple[int, int | None]:
    length, _, offset = text.strip().partition("@")
    return int(length), int(offset) if offset else None


def _quote(value: str) -> str:
    if '"' in value or "\n" in value:
        raise PlaylistError(f"cannot quote {value!r}")
    return f'"{value}"'
