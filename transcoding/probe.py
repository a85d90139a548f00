"""Probing uploads with ffprobe: what is in the file, and is it sane media we accept?

Uploads are hostile until proven otherwise. ffprobe runs with ``-protocol_whitelist file``
(no network, no pipes) and ``-format_whitelist`` (only container demuxers; never HLS,
concat, image sequences or lavfi, which open other files or generate input). A file that
passes still has to fit the limits, have a duration, and decode near its end.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from . import _process
from .errors import InvalidMedia, TranscodeFailed

# Demuxers an upload may be read with. ffprobe refuses anything else *before* the
# demuxer's read_header runs, so a playlist pointing at /etc/passwd is never followed.
ALLOWED_DEMUXERS = (
    "mov",
    "matroska",
    "avi",
    "flv",
    "mpegts",
    "mpeg",
    "ogg",
    "asf",
    "nut",
    "mxf",
    "m4v",
    "mpegvideo",
    "dv",
    "wav",
    "w64",
    "aiff",
    "caf",
    "mp3",
    "aac",
    "ac3",
    "eac3",
    "flac",
    "wv",
    "amr",
    "opus",
    # Single images are let through only so that they can be refused as "not a video".
    "png_pipe",
    "jpeg_pipe",
    "webp_pipe",
    "bmp_pipe",
    "tiff_pipe",
    "gif",
)
DENIED_DEMUXERS = frozenset(
    {
        "hls",
        "applehttp",
        "dash",
        "concat",
        "image2",
        "image2pipe",
        "lavfi",
        "tee",
        "data",
        "ffmetadata",
        "tty",
        "sdp",
        "rtsp",
        "rtp",
        "subfile",
        "libmodplug",
    }
)
IMAGE_DEMUXERS = frozenset({"image2", "image2pipe", "gif", "apng"})
STILL_IMAGE_CODECS = frozenset({"png", "apng", "bmp", "tiff", "webp", "gif", "jpegls"})
KEYFRAME_WINDOW_SECONDS = 10.0

_WHITELIST_REFUSAL = re.compile(r"\[([^\]@]+?) @ 0x[0-9a-f]+\] Format not on whitelist")


@dataclass(frozen=True)
class ProbeLimits:
    """What an upload may be. Everything over a limit is refused by :func:`probe`."""

    max_width: int = 8192
    max_height: int = 8192
    max_pixels: int = 8192 * 4320
    max_duration: float = 14400.0
    timeout: float = 60.0
    tail_check_seconds: float = 2.0


@dataclass(frozen=True)
class MediaInfo:
    """The facts about an accepted upload that planning and transcoding rely on.

    ``width`` and ``height`` are the *display* size: rotation side data (phones store
    portrait video as rotated landscape) and non-square pixels are already applied.
    Bitrates are in bit/s; ``None`` means the container did not say.
    """

    path: Path
    format_name: str
    size: int
    duration: float
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    coded_width: int = 0
    coded_height: int = 0
    rotation: int = 0
    frame_rate: Fraction = Fraction(0)
    video_codec: str | None = None
    video_profile: str | None = None
    pix_fmt: str | None = None
    video_bitrate: int | None = None
    video_stream: int | None = None
    keyframe_interval: float | None = None
    field_order: str | None = None
    audio_codec: str | None = None
    audio_profile: str | None = None
    audio_bitrate: int | None = None
    audio_channels: int = 0
    audio_sample_rate: int = 0
    audio_stream: int | None = None
    cover_stream: int | None = None

    @property
    def fps(self) -> float:
        """Frames per second of the video, 0.0 when there is no video."""
        return float(self.frame_rate)

    @property
    def demuxer(self) -> str:
        """The name to give ffmpeg's ``-f`` so it reads the file the way ffprobe did."""
        return self.format_name.split(",")[0]

    @property
    def is_portrait(self) -> bool:
        """True when the picture is taller than wide (as displayed)."""
        return self.height > self.width


async def probe(path: str | os.PathLike[str], limits: ProbeLimits | None = None) -> MediaInfo:
    """Inspect an upload and return its :class:`MediaInfo`, or refuse it.

    Raises :class:`InvalidMedia` with a machine code when the file is not a regular file,
    is empty, is not media, is in a format we never read (playlists, image sequences, ...),
    is a single image, has no audio or video, has no duration, is over the size, pixel or
    duration limits, or cannot be decoded near its end (truncated upload). Raises
    :class:`Timeout` when ffprobe or the decode check hang.
    """
    limits = limits or ProbeLimits()
    file = Path(path).absolute()
    try:
        st = file.stat()
    except OSError as exc:
        raise InvalidMedia("not_a_file", f"The upload cannot be read: {exc.strerror}.") from None
    if not stat.S_ISREG(st.st_mode):
        raise InvalidMedia("not_a_file", "The upload is not a regular file.")
    if st.st_size == 0:
        raise InvalidMedia("empty_file", "The upload is empty.")

    argv = _process.ffprobe_argv(
        "-format_whitelist",
        ",".join(ALLOWED_DEMUXERS),
        "-of",
        "json",
        "-show_format",
        "-show_streams",
        "-read_intervals",
        f"%+{KEYFRAME_WINDOW_SECONDS:g}",
        "-show_entries",
        "packet=stream_index,pts_time,dts_time,flags",
        f"file:{file}",
    )
    done = await _process.run(argv, timeout=limits.timeout, timeout_code="probe_timeout")
    if done.returncode != 0:
        _refuse_from_stderr(done.stderr)
    try:
        data = json.loads(done.stdout)
    except ValueError:
        raise InvalidMedia("unreadable", "The upload could not be read as media.") from None

    info = parse_probe(data, file, st.st_size)
    check_limits(info, limits)
    if limits.tail_check_seconds > 0:
        await _check_tail_decodes(info, limits)
    return info


def parse_probe(data: dict[str, Any], path: Path, size: int) -> MediaInfo:
    """Turn ffprobe's JSON (``-show_format -show_streams`` and packets) into MediaInfo.

    Refuses formats and contents we never accept; limits are checked separately by
    :func:`check_limits` so that callers can re-check stored info against new limits.
    """
    fmt = data.get("format") or {}
    format_name = str(fmt.get("format_name") or "")
    names = set(format_name.split(","))
    if not format_name:
        raise InvalidMedia("unreadable", "The upload could not be read as media.")
    if names & IMAGE_DEMUXERS or any(n.endswith("_pipe") for n in names):
        raise InvalidMedia("not_a_video", "The upload is an image, not a video.")
    if names & DENIED_DEMUXERS:
        raise InvalidMedia("unsupported_format", f"Files in {format_name} format are refused.")

    streams = data.get("streams") or []
    video = cover = audio = None
    for s in streams:
        kind = s.get("codec_type")
        attached = (s.get("disposition") or {}).get("attached_pic") == 1
        if kind == "video" and attached:
            cover = cover or s
        elif kind == "video" and video is None:
            video = s
        elif kind == "audio" and audio is None:
            audio = s
    if video is None and audio is None:
        raise InvalidMedia("no_streams", "The upload has neither video nor audio.")
    for s in (video, audio):
        if s is not None and s.get("codec_name") in (None, "", "none"):
            raise InvalidMedia("unsupported_codec", "A stream of the upload uses an unknown codec.")
    if video is not None and audio is None and video.get("codec_name") in STILL_IMAGE_CODECS:
        raise InvalidMedia("not_a_video", "The upload is an image, not a video.")

    duration = _number(fmt.get("duration"))
    if duration is None:
        durations = [_number(s.get("duration")) for s in (video, audio) if s]
        duration = max((d for d in durations if d is not None), default=None)
    if duration is None or not math.isfinite(duration) or duration <= 0:
        raise InvalidMedia("no_duration", "The upload has no known duration.")

    audio_bitrate = _integer(audio.get("bit_rate")) if audio else None
    fields: dict[str, Any] = {}
    if video is not None:
        width, height, rotation = _display_size(video)
        fields.update(
            width=width,
            height=height,
            coded_width=_integer(video.get("width")) or 0,
            coded_height=_integer(video.get("height")) or 0,
            rotation=rotation,
            frame_rate=_frame_rate(video),
            video_codec=video.get("codec_name"),
            video_profile=video.get("profile"),
            pix_fmt=video.get("pix_fmt"),
            video_bitrate=_video_bitrate(video, fmt, audio_bitrate, size, duration),
            video_stream=int(video["index"]),
            keyframe_interval=_keyframe_interval(data.get("packets") or [], video),
            field_order=video.get("field_order"),
        )
    if audio is not None:
        fields.update(
            audio_codec=audio.get("codec_name"),
            audio_profile=audio.get("profile"),
            audio_bitrate=audio_bitrate,
            audio_channels=_integer(audio.get("channels")) or 0,
            audio_sample_rate=_integer(audio.get("sample_rate")) or 0,
            audio_stream=int(audio["index"]),
        )
    if cover is not None:
        fields["cover_stream"] = int(cover["index"])
    info = MediaInfo(
        path=path,
        format_name=format_name,
        size=size,
        duration=duration,
        has_video=video is not None,
        has_audio=audio is not None,
        **fields,
    )
    if info.has_video and min(info.width, info.height, info.coded_width, info.coded_height) <= 0:
        raise InvalidMedia("no_dimensions", "The video has no usable picture size.")
    return info


def check_limits(info: MediaInfo, limits: ProbeLimits) -> None:
    """Refuse ``info`` when it is over any of ``limits`` (size, pixel budget, duration)."""
    if info.has_video:
        coded_w, coded_h = info.coded_width, info.coded_height
        if info.rotation % 180 == 90:
            coded_w, coded_h = coded_h, coded_w
        width, height = max(info.width, coded_w), max(info.height, coded_h)
        if width > limits.max_width or height > limits.max_height:
            raise InvalidMedia(
                "dimensions_too_large",
                f"The video is {info.width}x{info.height}; the limit is "
                f"{limits.max_width}x{limits.max_height}.",
            )
        if width * height > limits.max_pixels:
            raise InvalidMedia(
                "too_many_pixels",
                f"The video has {width * height} pixels per frame; the limit is "
                f"{limits.max_pixels}.",
            )
    if info.duration > limits.max_duration:
        raise InvalidMedia(
            "too_long",
            f"The upload lasts {info.duration:.0f} s; the limit is {limits.max_duration:.0f} s.",
        )


async def _check_tail_decodes(info: MediaInfo, limits: ProbeLimits) -> None:
    """Decode the last seconds: a cut upload keeps its header but loses its end."""
    window = min(limits.tail_check_seconds, info.duration)
    start = max(0.0, info.duration - window)
    argv = [
        _process.FFMPEG,
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-protocol_whitelist",
        "file",
        "-f",
        info.demuxer,
        "-ss",
        f"{start:.3f}",
        "-i",
        f"file:{info.path}",
        "-t",
        f"{window:.3f}",
    ]
    for index in (info.video_stream, info.audio_stream):
        if index is not None:
            argv += ["-map", f"0:{index}"]
    argv += ["-f", "null", "-", "-progress", "pipe:1", "-nostats"]
    done = await _process.run(argv, timeout=limits.timeout, timeout_code="probe_timeout")
    decoded = 0.0
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition("=")
        if key == "out_time_us" and value.strip().lstrip("-").isdigit():
            decoded = max(decoded, int(value) / 1e6)
    if decoded < window / 2 - 0.1:
        raise InvalidMedia(
            "truncated",
            f"The upload ends early: it claims {info.duration:.1f} s but its last "
            f"{window:.1f} s cannot be decoded.",
        )


@dataclass(frozen=True)
class PacketScan:
    """Timestamps of every video packet of a file, from its container (nothing decoded).

    ``frames`` are the presentation times in order; ``keyframes`` those of sync samples.
    ``closed_gops`` is False when a frame after a keyframe in decoding order is shown
    before it (an open GOP: such leading frames need the previous GOP to decode).
    """

    frames: tuple[float, ...]
    keyframes: tuple[float, ...]
    closed_gops: bool = True

    def max_keyframe_gap(self, end: float) -> float:
        """The longest stretch without a keyframe, counting up to ``end`` (the duration)."""
        marks = [*self.keyframes, max(end, self.keyframes[-1] if self.keyframes else end)]
        return max((b - a for a, b in zip(marks, marks[1:], strict=False)), default=end)

    def typical_keyframe_gap(self) -> float | None:
        """The median time between two keyframes, None with fewer than two."""
        gaps = sorted(b - a for a, b in zip(self.keyframes, self.keyframes[1:], strict=False))
        return gaps[len(gaps) // 2] if gaps else None

    def is_constant_rate(self, rate: Fraction, tolerance: float = 0.25) -> bool:
        """True when every frame lasts one period of ``rate`` (within ``tolerance`` of it)."""
        if rate <= 0 or len(self.frames) < 2:
            return False
        period = 1 / float(rate)
        return all(
            abs(b - a - period) <= tolerance * period
            for a, b in zip(self.frames, self.frames[1:], strict=False)
        )


async def scan_packets(info: MediaInfo, timeout: float = 120.0) -> PacketScan:
    """Read the video stream's packet timestamps and keyframe flags from the container.

    Only demuxes (no decoding): about a second for an hour of video. Used to decide
    whether the source's own keyframes can cut every rung's segments.
    """
    if info.video_stream is None:
        return PacketScan((), ())
    argv = _process.ffprobe_argv(
        "-f",
        info.demuxer,
        "-select_streams",
        str(info.video_stream),
        "-show_entries",
        "packet=pts_time,flags",
        "-of",
        "csv=p=0",
        f"file:{info.path}",
    )
    done = await _process.run(argv, timeout=timeout, timeout_code="probe_timeout")
    if done.returncode != 0:
        raise TranscodeFailed("probe_failed", "ffprobe could not list the video packets.", done.stderr)
    frames: list[float] = []
    keyframes: list[float] = []
    for line in done.stdout.decode("ascii", "replace").splitlines():
        pts, _, flags = line.partition(",")
        if (t := _number(pts)) is None:
            continue
        frames.append(t)
        if flags.startswith("K"):
            keyframes.append(t)
    # In decoding order: an open GOP has a frame after its keyframe that is shown earlier.
    closed, earliest_after = True, math.inf
    key_at = set(keyframes)
    for t in reversed(frames):
        if t in key_at and earliest_after < t:
            closed = False
            break
        earliest_after = min(earliest_after, t)
    frames.sort()
    keyframes.sort()
    return PacketScan(tuple(frames), tuple(keyframes), closed)


def _refuse_from_stderr(stderr: str) -> None:
    """Raise the right InvalidMedia for an ffprobe that exited with an error."""
    match = _WHITELIST_REFUSAL.search(stderr)
    if match:
        names = set(match.group(1).split(","))
        if names & IMAGE_DEMUXERS or any(n.endswith("_pipe") for n in names):
            raise InvalidMedia("not_a_video", "The upload is an image, not a video.")
        raise InvalidMedia("unsupported_format", f"Files in {match.group(1)} format are refused.")
    if stderr.strip():
        raise InvalidMedia("unreadable", "The upload could not be read as media.")
    raise TranscodeFailed("probe_failed", "ffprobe failed without saying why.", stderr)


def _display_size(video: dict[str, Any]) -> tuple[int, int, int]:
    """Width, height and rotation as shown to viewers (SAR and rotation applied)."""
    width = _integer(video.get("width")) or 0
    height = _integer(video.get("height")) or 0
    sar = _ratio(video.get("sample_aspect_ratio"))
    if sar and sar != 1:
        width = max(1, round(width * sar))
    rotation = 0
    for side in video.get("side_data_list") or []:
        if "rotation" in side:
            rotation = round(float(side["rotation"]))
    if not rotation:
        rotation = _integer((video.get("tags") or {}).get("rotate")) or 0
    rotation %= 360
    if rotation % 180 == 90:
        width, height = height, width
    return width, height, rotation


def _frame_rate(video: dict[str, Any]) -> Fraction:
    """The average frame rate, falling back to the stream's base rate, else 0."""
    for key in ("avg_frame_rate", "r_frame_rate"):
        rate = _ratio(video.get(key))
        if rate and 0.5 <= rate <= 1000:
            return rate
    return Fraction(0)


def _video_bitrate(
    video: dict[str, Any],
    fmt: dict[str, Any],
    audio_bitrate: int | None,
    size: int,
    duration: float,
) -> int | None:
    """The video stream's bitrate, estimated from the container's when not stored."""
    own = _integer(video.get("bit_rate"))
    if own:
        return own
    total = _integer(fmt.get("bit_rate")) or int(size * 8 / duration)
    return max(0, total - (audio_bitrate or 0)) or None


def _keyframe_interval(packets: list[dict[str, Any]], video: dict[str, Any]) -> float | None:
    """The longest gap between keyframes in the first seconds, if two were seen."""
    index = video.get("index")
    times = sorted(
        t
        for p in packets
        if p.get("stream_index") == index
        and "K" in str(p.get("flags", ""))
        and (t := _number(p.get("pts_time", p.get("dts_time")))) is not None
    )
    if len(times) < 2:
        return None
    return round(max(b - a for a, b in zip(times, times[1:], strict=False)), 3)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _integer(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def _ratio(value: Any) -> Fraction | None:
    if not isinstance(value, str):
        return None
    num, sep, den = value.replace(":", "/").partition("/")
    try:
        ratio = Fraction(int(num), int(den)) if sep else Fraction(num)
    except (ValueError, ZeroDivisionError):
        return None
    return ratio if ratio > 0 else None
