"""Single-pass HLS packaging: one ffmpeg decodes the upload once and encodes every rung.

Output, per rung ``R`` (the short side): ``{prefix}-R-fragmented.mp4`` (one fragmented MP4
holding the init section and every segment as a byte range) and ``{prefix}-R.m3u8``;
plus ``{prefix}-master.m3u8`` written by us with measured bandwidths. This is PeerTube's
VOD layout, so its players and P2P loader work unchanged.

Lower rungs are scaled from the rung above (cascade), which is cheaper than scaling each
from the source. Every rung gets keyframes at the same timestamps (one per GOP, closed)
so segment boundaries line up and players switch renditions cleanly.

A compliant source (see :func:`transcoding.ladder.can_copy_top`) is not re-encoded at the
top: its video stream is copied into the top rung, and the encoded rungs put their
keyframes where the source has its own, so segments still line up.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import ffmpeg

from . import _process
from .errors import InvalidMedia, TranscodeFailed
from .ladder import COPY_DEMUXERS, LadderSettings, Plan, plan_ladder
from .playlist import (
    Variant,
    peak_bandwidth,
    read_media_playlist,
    render_master_playlist,
    retarget_media_playlist,
)
from .probe import MediaInfo, scan_packets

ProgressCallback = Callable[[float], Awaitable[None]]

PROGRESS_INTERVAL_SECONDS = 0.5
DURATION_MARGIN_SECONDS = 2.0
DURATION_MARGIN_RATIO = 0.02
"""The renditions may outlast the probed duration by this much (segment rounding, audio priming);
past it the file holds more than its header said (restarting timestamps) and is refused."""
_PIXEL_CAP_MESSAGE = "exceeds specified max pixel count"
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True)
class Rendition:
    """One produced rung, as measured from the files on disk."""

    resolution: int
    width: int
    height: int
    fps: float
    average_bandwidth: int
    peak_bandwidth: int
    codecs: str
    file_name: str
    playlist_name: str
    size: int
    segment_count: int
    duration: float


@dataclass(frozen=True)
class HlsResult:
    """What :func:`transcode_hls` wrote into ``out_dir``."""

    out_dir: Path
    master_playlist: str
    renditions: tuple[Rendition, ...]
    duration: float

    @property
    def media_playlists(self) -> tuple[str, ...]:
        """Names of the media playlists, e.g. for :func:`transcoding.write_segments_sha256`."""
        return tuple(r.playlist_name for r in self.renditions)

    @property
    def files(self) -> tuple[str, ...]:
        """Every file written, master playlist last."""
        names = [n for r in self.renditions for n in (r.file_name, r.playlist_name)]
        return (*names, self.master_playlist)


async def plan_hls(info: MediaInfo, settings: LadderSettings | None = None) -> Plan:
    """:func:`plan_ladder`, after reading the source's packet timestamps when its video
    stream might be copied as the top rung (H.264 in an MP4/MOV file)."""
    settings = settings or LadderSettings()
    scan = None
    if (
        settings.copy_compliant_top
        and info.video_codec == "h264"
        and set(info.format_name.split(",")) <= COPY_DEMUXERS
    ):
        scan = await scan_packets(info)
    return plan_ladder(info, settings, scan)


def output_names(prefix: str, resolution: int) -> tuple[str, str]:
    """The fragmented MP4 and media playlist names of a rung (PeerTube's naming)."""
    return f"{prefix}-{resolution}-fragmented.mp4", f"{prefix}-{resolution}.m3u8"


async def transcode_hls(
    input_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    plan: Plan,
    *,
    prefix: str,
    on_progress: ProgressCallback | None = None,
    timeout: float | None = None,
    nice: int = 10,
    max_pixels: int | None = None,
) -> HlsResult:
    """Encode every rung of ``plan`` in one ffmpeg run and write the HLS files.

    The probe's limits hold for what is decoded, not only for the header the probe read: the
    decoder refuses frames over ``max_pixels`` (a file whose resolution grows mid-stream is
    :class:`InvalidMedia` ``frame_too_large``, and its huge frames are never allocated), the
    output stops a little past the probed duration, and renditions longer than
    :func:`duration_limit` (restarting timestamps) are :class:`InvalidMedia` ``duration_mismatch``.

    ``on_progress`` is an *async* callable awaited with a percentage (0–100, strictly
    increasing, at most every half second, 100 last, once the files are in place); keep
    it short, ffmpeg's output waits meanwhile. ``timeout`` bounds the ffmpeg run in
    seconds; ``nice`` lowers its CPU priority so the web process stays responsive.

    Files appear in ``out_dir`` only once everything succeeded, the master playlist last.
    On any failure, timeout or cancellation nothing this call wrote is left behind, and
    :class:`TranscodeFailed` (or its subclass :class:`Timeout`) carries ffmpeg's last lines.
    """
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"unsafe file name prefix {prefix!r}")
    source = Path(input_path).absolute()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{prefix}-", suffix=".work", dir=out))
    placed: list[Path] = []
    done = False
    try:
        argv = build_command(source, plan, prefix, max_pixels=max_pixels)
        progress = _Progress(plan.duration, on_progress)
        finished = await _process.run(
            argv,
            timeout=timeout,
            nice=nice,
            cwd=work,
            on_line=progress.line,
            timeout_code="transcode_timeout",
        )
        if any(_PIXEL_CAP_MESSAGE in line for line in finished.stderr_tail):
            raise InvalidMedia(
                "frame_too_large",
                f"The video has frames of more than {max_pixels} pixels, beyond what its header "
                "says and this instance accepts.",
            )
        if finished.returncode != 0:
            raise TranscodeFailed(
                "ffmpeg_failed",
                f"ffmpeg exited with status {finished.returncode}: "
                f"{finished.stderr_tail[-1] if finished.stderr_tail else 'no message'}",
                finished.stderr,
            )
        measured = await asyncio.gather(*(_measure(work, prefix, r.resolution) for r in plan.rungs))
        renditions = sorted(measured, key=lambda r: r.resolution, reverse=True)
        longest = max(r.duration for r in renditions)
        if longest > duration_limit(plan.duration):
            raise InvalidMedia(
                "duration_mismatch",
                f"The video holds more than the {plan.duration:.0f} s its header says "
                "(its timestamps restart); it was refused.",
            )
        master = f"{prefix}-master.m3u8"
        (work / master).write_text(
            render_master_playlist(_variant(r) for r in renditions), encoding="utf-8"
        )
        result = HlsResult(
            out_dir=out,
            master_playlist=master,
            renditions=tuple(renditions),
            duration=max(r.duration for r in renditions),
        )
        for name in result.files:
            os.replace(work / name, out / name)
            placed.append(out / name)
        done = True
    finally:
        if not done:
            for path in placed:
                path.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    await progress.finish()
    return result


def duration_limit(probed: float) -> float:
    """The longest rendition a source probed at ``probed`` seconds may give."""
    return probed + max(DURATION_MARGIN_SECONDS, probed * DURATION_MARGIN_RATIO)


def build_command(source: Path, plan: Plan, prefix: str, *, max_pixels: int | None = None) -> list[str]:
    """The ffmpeg argv for ``plan``; run it with the working directory as output dir.

    The upload is read as a plain file only (``-protocol_whitelist file``) with the
    demuxer the probe found (``-f``), so nothing is guessed at transcode time. Its decoders
    refuse frames over ``max_pixels`` (an AVCodecContext option), and the output stops a second
    past :func:`duration_limit`, so a file that holds more than its header cannot make
    the run decode or write it all.
    """
    caps: dict[str, Any] = {"max_pixels": max_pixels} if max_pixels else {}
    upload = ffmpeg.input(f"file:{source}", f=plan.demuxer, protocol_whitelist="file", **caps)
    top = plan.rungs[0]
    # A still picture must not outlast the audio, or it adds a trailing segment of silence.
    still_frames = max(1, math.floor(plan.duration * top.frame_rate))
    if plan.still is None:
        video = upload[str(plan.video_stream)].filter("fps", fps=str(plan.source_frame_rate))
        rate = plan.source_frame_rate
    elif plan.still.cover_stream is not None:
        video = (
            upload[str(plan.still.cover_stream)]
            .filter("scale", top.width, top.height, force_original_aspect_ratio="decrease")
            .filter("pad", top.width, top.height, -1, -1, color=plan.still.color)
            .filter("loop", loop=-1, size=1)
            .filter("fps", fps=str(top.frame_rate))
            .filter("trim", end_frame=still_frames)
        )
        rate = top.frame_rate
    else:
        video = ffmpeg.input(
            f"color=c={plan.still.color}:s={top.width}x{top.height}:r={top.frame_rate}"
            f":d={float(still_frames / top.frame_rate):.6f}",
            f="lavfi",
        ).video
        rate = top.frame_rate

    # The top rung copied from the source is the source's stream itself; the encoded
    # rungs are scaled in a cascade, each from the one above (or from the source).
    outputs: list[Any] = [upload[str(plan.video_stream)]] if plan.copies_top else []
    encoded = plan.rungs[1:] if plan.copies_top else plan.rungs
    for index, rung in enumerate(encoded):
        if rung.frame_rate != rate:
            video = video.filter("fps", fps=str(rung.frame_rate))
            rate = rung.frame_rate
        video = video.filter("scale", rung.width, rung.height)
        if index == 0:
            video = video.filter("format", "yuv420p")
        video = video.filter("setsar", 1)
        if index < len(encoded) - 1:
            branches = video.split()
            outputs.append(branches[0])
            video = branches[1]
        else:
            outputs.append(video)

    streams: list[Any] = list(outputs)
    if plan.copies_top:
        # Keyframes wherever the source has one, so every rung is cut at the same times.
        keyframes = "source"
    else:
        keyframes = f"expr:gte(t,n_forced*{plan.gop_seconds:g})"
    options: dict[str, Any] = {
        "preset": plan.preset,
        "crf": plan.crf,
        "sc_threshold": 0,
        "flags:v": "+cgop",
        "force_key_frames:v": keyframes,
    }
    if plan.threads:
        options["threads"] = plan.threads
    for index, rung in enumerate(plan.rungs):
        if rung.copy:
            options[f"c:v:{index}"] = "copy"
            continue
        options[f"c:v:{index}"] = "libx264"
        options[f"maxrate:v:{index}"] = rung.bitrate
        options[f"bufsize:v:{index}"] = rung.bufsize
        # Keyframes come from -force_key_frames at the same timestamps in every rung;
        # x264's own interval is only a ceiling that must never fire first.
        if plan.max_keyframe_gap is not None:
            options[f"g:v:{index}"] = math.ceil((plan.max_keyframe_gap + 1) * rung.frame_rate)
            options[f"keyint_min:v:{index}"] = 1
        else:
            options[f"g:v:{index}"] = 2 * rung.gop_frames
            options[f"keyint_min:v:{index}"] = rung.gop_frames
    variants = [f"v:{i},name:{r.resolution}" for i, r in enumerate(plan.rungs)]
    if plan.audio is not None:
        streams += [upload[str(plan.audio_stream)]] * len(plan.rungs)
        variants = [f"v:{i},a:{i},name:{r.resolution}" for i, r in enumerate(plan.rungs)]
        if plan.audio.copy:
            options["c:a"] = "copy"
        else:
            options.update({"c:a": "aac", "b:a": plan.audio.bitrate, "ac": plan.audio.channels})
            if plan.audio.sample_rate:
                options["ar"] = plan.audio.sample_rate
    options.update(
        {
            "map_metadata": -1,
            "map_chapters": -1,
            "max_muxing_queue_size": 4096,
            "f": "hls",
            "hls_time": f"{plan.hls_time or plan.segment_seconds:.6f}".rstrip("0").rstrip("."),
            "hls_playlist_type": "vod",
            "hls_segment_type": "fmp4",
            # single_file: one fMP4 per variant, init section and segments as byte ranges
            # (ffmpeg 5.1 only names separate init files init_N.mp4; single_file avoids them).
            "hls_flags": "single_file+independent_segments",
            "t": f"{duration_limit(plan.duration) + 1.0:.3f}",
            "hls_segment_filename": f"{prefix}-%v-fragmented.mp4",
            "var_stream_map": " ".join(variants),
        }
    )
    output = ffmpeg.output(*streams, f"{prefix}-%v.m3u8", **options)
    return _process.ffmpeg_argv(output.compile(cmd=_process.FFMPEG))


class _Progress:
    """Turns ffmpeg's ``-progress`` lines into throttled, increasing percentages."""

    def __init__(self, duration: float, callback: ProgressCallback | None) -> None:
        self.duration = duration
        self.callback = callback
        self.reported = -1.0
        self.last_call = 0.0

    async def line(self, line: str) -> None:
        key, _, value = line.partition("=")
        if self.callback is None or key != "out_time_us" or not value.isdigit():
            return
        percent = round(min(99.9, int(value) / 1e6 / max(self.duration, 0.001) * 100), 1)
        now = time.monotonic()
        if percent > self.reported and now - self.last_call >= PROGRESS_INTERVAL_SECONDS:
            self.reported, self.last_call = percent, now
            await self.callback(percent)

    async def finish(self) -> None:
        if self.callback is not None:
            await self.callback(100.0)


async def _measure(work: Path, prefix: str, resolution: int) -> Rendition:
    """Check one rung's output and measure what the master playlist must say about it."""
    file_name, playlist_name = output_names(prefix, resolution)
    media, playlist_path = work / file_name, work / playlist_name
    if not media.is_file() or not playlist_path.is_file():
        raise TranscodeFailed("missing_output", f"ffmpeg did not write the {resolution}p rung.")
    playlist_path.write_text(
        retarget_media_playlist(playlist_path.read_text(encoding="utf-8"), file_name),
        encoding="utf-8",
    )
    playlist = await asyncio.to_thread(read_media_playlist, playlist_path)
    if not playlist.segments or not playlist.ended or playlist.duration <= 0:
        raise TranscodeFailed("bad_output", f"The {resolution}p playlist is incomplete.")
    streams = await _probe_output(media)
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    if video is None:
        raise TranscodeFailed("bad_output", f"The {resolution}p rung has no video.")
    codecs = [_codec_string(s) for s in streams if s.get("codec_type") in ("video", "audio")]
    size = media.stat().st_size
    average = round(size * 8 / playlist.duration)
    rate = Fraction(video.get("avg_frame_rate") or "0/1")
    if rate <= 0:
        rate = Fraction(video.get("r_frame_rate") or "0/1")
    return Rendition(
        resolution=resolution,
        width=int(video["width"]),
        height=int(video["height"]),
        fps=round(float(rate), 3),
        average_bandwidth=average,
        peak_bandwidth=max(average, peak_bandwidth(playlist)),
        codecs=",".join(codecs),
        file_name=file_name,
        playlist_name=playlist_name,
        size=size,
        segment_count=len(playlist.segments),
        duration=playlist.duration,
    )


async def _probe_output(media: Path) -> list[dict[str, Any]]:
    argv = _process.ffprobe_argv(
        "-of",
        "json",
        "-show_streams",
        "-show_data",
        f"file:{media}",
    )
    done = await _process.run(argv, timeout=60, timeout_code="probe_timeout")
    if done.returncode != 0:
        raise TranscodeFailed("bad_output", f"{media.name} cannot be read back.", done.stderr)
    return json.loads(done.stdout).get("streams") or []


def _codec_string(stream: dict[str, Any]) -> str:
    """RFC 6381 codec string from the stream's decoder configuration record."""
    data = _hexdump_bytes(stream.get("extradata") or "")
    name = stream.get("codec_name")
    if name == "h264" and len(data) >= 4 and data[0] == 1:
        return f"avc1.{data[1]:02x}{data[2]:02x}{data[3]:02x}"
    if name == "aac" and len(data) >= 2:
        object_type = data[0] >> 3
        if object_type == 31:
            object_type = 32 + (((data[0] & 0x07) << 3) | (data[1] >> 5))
        return f"mp4a.40.{object_type}"
    raise TranscodeFailed("bad_output", f"No codec string for a {name} stream.")


def _hexdump_bytes(dump: str) -> bytes:
    """Bytes from ffprobe's ``-show_data`` dump ("00000000: 0164 001e ...  .d..")."""
    data = bytearray()
    for line in dump.splitlines():
        _offset, sep, rest = line.partition(": ")
        if not sep:
            continue
        for group in rest[:40].split():
            data += bytes.fromhex(group)
    return bytes(data)


def _variant(rendition: Rendition) -> Variant:
    return Variant(
        uri=rendition.playlist_name,
        bandwidth=rendition.peak_bandwidth,
        average_bandwidth=rendition.average_bandwidth,
        width=rendition.width,
        height=rendition.height,
        frame_rate=rendition.fps,
        codecs=rendition.codecs,
    )
