"""Planning the HLS ladder: which renditions to make from an upload, and how.

The rules follow PeerTube's, so that renditions look the same to its players: a rung's
"resolution" is the short side of the picture (portrait video too), rungs never upscale,
bitrates come from a bits-per-pixel table, and rungs under 720p are capped at 30 fps.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction

from .probe import MediaInfo, PacketScan

# Bits per pixel per frame (average, maximum, minimum) by rung, from PeerTube's
# packages/core-utils/src/videos/bitrate.ts (itself from a Bitmovin article).
BITS_PER_PIXEL: dict[int, tuple[float, float, float]] = {
    144: (0.19, 0.32, 0.02),
    240: (0.17, 0.29, 0.02),
    360: (0.15, 0.26, 0.02),
    480: (0.12, 0.22, 0.02),
    720: (0.11, 0.19, 0.02),
    1080: (0.10, 0.17, 0.02),
    1440: (0.09, 0.16, 0.02),
    2160: (0.08, 0.14, 0.02),
}
AUDIO_COPY_MAX_BITRATE = 384_000
AUDIO_SAMPLE_RATES = (44100, 48000)
# What a top rung copied from the source may be: what every HLS player decodes.
COPY_PROFILES = frozenset({"Constrained Baseline", "Baseline", "Main", "High"})
COPY_DEMUXERS = frozenset({"mov", "mp4", "m4a", "3gp", "3g2", "mj2"})


@dataclass(frozen=True)
class LadderSettings:
    """How an instance wants its ladder built. Defaults match PeerTube's."""

    heights: tuple[int, ...] = (2160, 1440, 1080, 720, 480, 360, 240)
    keep_source_resolution: bool = True
    max_fps: int = 60
    low_rung_max_fps: int = 30
    high_rung_min_resolution: int = 720
    preset: str = "veryfast"
    crf: int = 23
    threads: int = 0
    gop_seconds: float = 2.0
    segment_seconds: float = 4.0
    still_size: tuple[int, int] = (854, 480)
    still_fps: int = 5
    still_color: str = "0x202020"
    copy_compliant_top: bool = True

    def __post_init__(self) -> None:
        if not self.heights or any(h < 2 or h % 2 for h in self.heights):
            raise ValueError("ladder heights must be even numbers of at least 2")
        if self.segment_seconds < self.gop_seconds or self.gop_seconds <= 0:
            raise ValueError("segments must hold at least one GOP")


@dataclass(frozen=True)
class Rung:
    """One rendition: picture size, frame rate and the bitrate cap of its encoder.

    ``resolution`` is the short side and names the files (``…-720-fragmented.mp4``).
    ``bitrate`` is both x264's ``-maxrate`` and the target; ``bufsize`` is twice that.
    """

    resolution: int
    width: int
    height: int
    frame_rate: Fraction
    bitrate: int
    bufsize: int
    gop_frames: int
    copy: bool = False

    @property
    def fps(self) -> float:
        """The frame rate as a float, for playlists and display."""
        return float(self.frame_rate)


@dataclass(frozen=True)
class AudioPlan:
    """What happens to the audio: copied as is, or encoded to stereo AAC-LC."""

    copy: bool
    bitrate: int | None = None
    channels: int = 2
    sample_rate: int | None = None


@dataclass(frozen=True)
class StillImage:
    """The picture shown with an audio-only upload: its cover art, else a solid colour."""

    cover_stream: int | None
    color: str


@dataclass(frozen=True)
class Plan:
    """Everything :func:`transcoding.transcode_hls` needs, decided ahead of time.

    Rungs are ordered from the highest to the lowest; they share keyframe times (one
    every ``gop_seconds``) and are cut into segments of about ``segment_seconds``.
    """

    rungs: tuple[Rung, ...]
    audio: AudioPlan | None
    duration: float
    demuxer: str
    video_stream: int | None
    audio_stream: int | None
    source_frame_rate: Fraction
    still: StillImage | None = None
    preset: str = "veryfast"
    crf: int = 23
    threads: int = 0
    gop_seconds: float = 2.0
    segment_seconds: float = 4.0
    max_keyframe_gap: float | None = None
    hls_time: float | None = None

    @property
    def copies_top(self) -> bool:
        """True when the top rung is the source's own video stream, copied."""
        return self.rungs[0].copy


def plan_ladder(
    info: MediaInfo, settings: LadderSettings | None = None, scan: PacketScan | None = None
) -> Plan:
    """Decide the renditions for a probed upload.

    Video: every configured rung at or below the source's short side (never upscaling),
    plus the source's own resolution when it falls between two rungs; a source smaller
    than every rung gets a single rung at its own size. Audio-only: one 480p rung showing
    a still image. Audio is copied when it is already stereo AAC-LC at a sane bitrate.

    With ``scan`` (the source's packet timestamps) a compliant source's video becomes the
    top rung as is, and the other rungs take their keyframes from it: see
    :func:`can_copy_top`.
    """
    settings = settings or LadderSettings()
    common = dict(
        duration=info.duration,
        demuxer=info.demuxer,
        video_stream=info.video_stream,
        audio_stream=info.audio_stream,
        audio=plan_audio(info) if info.has_audio else None,
        preset=settings.preset,
        crf=settings.crf,
        threads=settings.threads,
        gop_seconds=settings.gop_seconds,
        segment_seconds=settings.segment_seconds,
    )
    if not info.has_video:
        width, height = settings.still_size
        rate = Fraction(settings.still_fps)
        rung = _rung(min(width, height), width, height, rate, None, settings)
        return Plan(
            rungs=(rung,),
            source_frame_rate=rate,
            still=StillImage(info.cover_stream, settings.still_color),
            **common,
        )

    source_rate = info.frame_rate or Fraction(30)
    short, long_ = sorted((info.width, info.height))
    resolutions = sorted({h for h in settings.heights if h <= short}, reverse=True)
    own = max(2, short - short % 2)
    if not resolutions:
        resolutions = [own]
    elif settings.keep_source_resolution and _between_steps(own, settings.heights):
        resolutions = sorted({*resolutions, own}, reverse=True)

    rungs = []
    for resolution in resolutions:
        other = _even(resolution * long_ / short)
        width, height = (resolution, other) if info.is_portrait else (other, resolution)
        cap = (
            settings.max_fps
            if resolution >= settings.high_rung_min_resolution
            else settings.low_rung_max_fps
        )
        rate = reduce_frame_rate(source_rate, cap)
        rungs.append(_rung(resolution, width, height, rate, info.video_bitrate, settings))
    if scan is not None and settings.copy_compliant_top and can_copy_top(info, rungs, scan, settings):
        bitrate = info.video_bitrate or rungs[0].bitrate
        rungs[0] = dataclasses.replace(rungs[0], bitrate=bitrate, bufsize=2 * bitrate, copy=True)
        common["max_keyframe_gap"] = scan.max_keyframe_gap(info.duration)
        common["hls_time"] = _segment_time(scan, settings.segment_seconds)
    return Plan(rungs=tuple(rungs), source_frame_rate=source_rate, **common)


def _segment_time(scan: PacketScan, segment_seconds: float) -> float | None:
    """The segment length for cuts at the source's own keyframes.

    The HLS muxer cuts at the first keyframe at or after each multiple of its segment
    time; with keyframes every 1.967 s (59 frames at 30 fps) a plain 4 s would cut after
    three GOPs, then two, .... A whole number of typical GOPs, a hair short, cuts every
    segment after the same number of GOPs (the hair keeps the drift under half a GOP
    for thousands of segments).
    """
    gap = scan.typical_keyframe_gap()
    if not gap:
        return None
    gops = max(1, round(segment_seconds / gap))
    return max(gap / 2, gops * gap - 1e-4)


def can_copy_top(
    info: MediaInfo, rungs: list[Rung], scan: PacketScan, settings: LadderSettings
) -> bool:
    """Whether the source's video stream can be the top rung without re-encoding it.

    Encoding the top rung is most of a transcode's cost (the 1080p rung of a 1080p ladder
    takes about half the CPU), and re-encoding an already fit stream only loses quality.
    A stream qualifies (much as PeerTube's "quick transcode" rules) when it is H.264 in a
    profile every player decodes, 8-bit 4:2:0, progressive, square pixels, not rotated,
    at the top rung's exact size and frame rate, at constant frame rate, within the
    rung's maximum bitrate, in an MP4/MOV file; and its keyframes start closed GOPs, start
    the stream and come at least every segment length, so that they can cut every rung's segments. The
    other rungs then get keyframes at the same times (the encoder is told to follow the
    source's), which must survive their frame-rate reduction when they have one.
    """
    top = rungs[0]
    if not (
        info.has_video
        and info.video_codec == "h264"
        and info.video_profile in COPY_PROFILES
        and info.pix_fmt == "yuv420p"
        and info.field_order in (None, "progressive", "unknown")
        and info.rotation == 0
        and set(info.format_name.split(",")) <= COPY_DEMUXERS
        and (top.width, top.height) == (info.width, info.height) == (info.coded_width, info.coded_height)
        and top.frame_rate == info.frame_rate
        and info.video_bitrate is not None
        and info.video_bitrate <= max_bitrate(top.resolution, top.width, top.height, top.frame_rate)
    ):
        return False
    if not scan.closed_gops or not scan.keyframes or not scan.frames:
        return False
    if scan.keyframes[0] > scan.frames[0]:
        return False
    period = 1 / float(info.frame_rate)
    if scan.max_keyframe_gap(info.duration) > settings.segment_seconds + period / 2:
        return False
    if not scan.is_constant_rate(info.frame_rate):
        return False
    start = scan.frames[0]
    for rung in rungs[1:]:
        if rung.frame_rate != info.frame_rate:
            # fps keeps the frames nearest its own grid: a keyframe off that grid is dropped.
            step = 1 / float(rung.frame_rate)
            for t in scan.keyframes:
                offset = (t - start) / step
                if abs(offset - round(offset)) > 0.25 * period / step:
                    return False
    return True


def plan_audio(info: MediaInfo) -> AudioPlan:
    """PeerTube's audio rules: copy sane AAC, else pick 128/256/384 kb/s stereo AAC."""
    bitrate = info.audio_bitrate
    if (
        info.audio_codec == "aac"
        and info.audio_profile == "LC"
        and info.audio_channels == 2
        and info.audio_sample_rate in AUDIO_SAMPLE_RATES
        and bitrate is not None
        and bitrate <= AUDIO_COPY_MAX_BITRATE
    ):
        return AudioPlan(copy=True)
    if info.audio_codec == "aac" and bitrate is not None:
        target = min(max(bitrate, 128_000), AUDIO_COPY_MAX_BITRATE)
    elif bitrate is None:
        target = 256_000
    elif bitrate <= 192_000:
        target = 128_000
    elif bitrate <= 384_000:
        target = 256_000
    else:
        target = 384_000
    rate = info.audio_sample_rate if info.audio_sample_rate in AUDIO_SAMPLE_RATES else 48000
    return AudioPlan(copy=False, bitrate=target, channels=2, sample_rate=rate)


def reduce_frame_rate(rate: Fraction, cap: int) -> Fraction:
    """Divide ``rate`` by the smallest whole number that brings it under ``cap``.

    Whole divisors keep frames evenly spaced: 60 → 30, 50 → 25, 59.94 → 29.97, 120 → 30.
    """
    if rate <= cap:
        return rate
    return rate / math.ceil(rate / cap)


def rung_bitrate(
    resolution: int, width: int, height: int, rate: Fraction, input_bitrate: int | None
) -> int:
    """PeerTube's target: max(min, min(average, 1.3 × input)) from bits per pixel."""
    keys = [k for k in BITS_PER_PIXEL if k <= resolution] or [min(BITS_PER_PIXEL)]
    average, _maximum, minimum = BITS_PER_PIXEL[max(keys)]
    pixels_per_second = width * height * float(rate)
    target = average * pixels_per_second
    if input_bitrate:
        target = min(target, 1.3 * input_bitrate)
    return int(max(minimum * pixels_per_second, target))


def max_bitrate(resolution: int, width: int, height: int, rate: Fraction) -> int:
    """The bitrate above which a stream is too heavy for its size (PeerTube's max bpp)."""
    keys = [k for k in BITS_PER_PIXEL if k <= resolution] or [min(BITS_PER_PIXEL)]
    return int(BITS_PER_PIXEL[max(keys)][1] * width * height * float(rate))


def _rung(
    resolution: int,
    width: int,
    height: int,
    rate: Fraction,
    input_bitrate: int | None,
    settings: LadderSettings,
) -> Rung:
    bitrate = rung_bitrate(resolution, width, height, rate, input_bitrate)
    return Rung(
        resolution=resolution,
        width=width,
        height=height,
        frame_rate=rate,
        bitrate=bitrate,
        bufsize=2 * bitrate,
        gop_frames=max(1, round(settings.gop_seconds * rate)),
    )


def _between_steps(resolution: int, heights: tuple[int, ...]) -> bool:
    """True when the source sits strictly between two rungs and clearly above the lower.

    A 1088-line camera file is "1080p": a 10 % margin keeps near-duplicates out.
    """
    lower = [h for h in heights if h < resolution]
    higher = [h for h in heights if h > resolution]
    return bool(lower and higher) and resolution >= 1.1 * max(lower)


def _even(value: float) -> int:
    return max(2, 2 * round(value / 2))
