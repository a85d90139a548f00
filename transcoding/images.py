"""Still images of a video: thumbnail and preview JPEGs, and storyboard sprite sheets.

Sizes follow PeerTube (thumbnail 280×157, preview 850×480, storyboard tiles at most
192 px in a grid of at most 11×11) so federated instances display them as they expect.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import ffmpeg

from . import _process
from .errors import TranscodeFailed
from .probe import MediaInfo, ProbeLimits, probe

THUMBNAIL_SIZE = (280, 157)
PREVIEW_SIZE = (850, 480)
STORYBOARD_TILE_MAX = 192
STORYBOARD_GRID_MAX = 11
STILL_COLOR = "0x202020"
JPEG_QUALITY = 3
# Inputs here were accepted (or produced) already: read them, do not judge them again.
_READ_ONLY = ProbeLimits(
    max_width=1 << 30,
    max_height=1 << 30,
    max_pixels=1 << 62,
    max_duration=float("inf"),
    tail_check_seconds=0,
)


@dataclass(frozen=True)
class Storyboard:
    """Sprite sheets of evenly spaced tiles, and the WebVTT track that indexes them.

    Tile ``i`` shows the video around ``i * tile_duration`` seconds; it sits on sheet
    ``i // (columns * rows)``. ``sprites`` and ``vtt`` are file names in ``out_dir``.
    """

    sprites: tuple[str, ...]
    vtt: str
    tile_width: int
    tile_height: int
    columns: int
    rows: int
    tile_count: int
    tile_duration: int

    @property
    def files(self) -> tuple[str, ...]:
        """Every file written."""
        return (*self.sprites, self.vtt)


def poster_time(duration: float) -> float:
    """Where the default poster frame is taken: a third into the video.

    Deterministic, past most intros and fades from black, and cheap to seek to.
    """
    return duration / 3


async def make_thumbnail(
    input_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    at_seconds: float | None = None,
    width: int = THUMBNAIL_SIZE[0],
    height: int = THUMBNAIL_SIZE[1],
    *,
    info: MediaInfo | None = None,
    timeout: float | None = 60.0,
    nice: int = 10,
) -> Path:
    """Write a ``width``×``height`` JPEG of the frame at ``at_seconds`` (default: a third in).

    The frame is centre-cropped to the box's aspect and scaled, as PeerTube does. Audio-only
    inputs get their cover art, or a plain dark picture. ``info`` saves a probe when the
    caller already has one. The JPEG appears atomically; nothing is left on failure.
    """
    source = Path(input_path).absolute()
    info = info or await probe(source, _READ_ONLY)
    target = Path(out_path)
    # Crop to the box's aspect first, then scale to the exact size: cropping straight
    # to an odd size (157) would be rounded down to even for 4:2:0 pictures.
    box = (
        f"crop='min(iw,ih*{width}/{height})':'min(ih,iw*{height}/{width})',"
        f"scale={width}:{height},setsar=1"
    )
    if info.has_video:
        when = poster_time(info.duration) if at_seconds is None else at_seconds
        when = min(max(0.0, when), max(0.0, info.duration - 0.25))
        picture = _open(info, ss=f"{when:.3f}")[str(info.video_stream)]
    elif info.cover_stream is not None:
        picture = _open(info)[str(info.cover_stream)]
    else:
        picture = ffmpeg.input(f"color=c={STILL_COLOR}:s={width}x{height}:d=1", f="lavfi").video
    fd, temporary_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".jpg", dir=target.parent
    )
    os.close(fd)
    temporary = Path(temporary_name)
    try:
        output = ffmpeg.output(
            picture,
            str(temporary),
            vf=box,
            frames=1,
            f="image2",
            update=1,
            **{"c:v": "mjpeg", "q:v": JPEG_QUALITY},
        )
        await _run(output, timeout, nice, "thumbnail")
        if temporary.stat().st_size == 0:
            raise TranscodeFailed("no_frame", f"No frame could be taken at {at_seconds} s.")
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


async def make_storyboard(
    input_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    prefix: str,
    duration: float,
    *,
    info: MediaInfo | None = None,
    max_tiles: int = STORYBOARD_GRID_MAX**2,
    timeout: float | None = 600.0,
    nice: int = 10,
) -> Storyboard | None:
    """Write storyboard sprite sheet(s) and the ``{prefix}-storyboard.vtt`` track indexing them.

    One tile every whole number of seconds, chosen so that at most ``max_tiles`` tiles
    cover ``duration`` (the default fits one 11×11 sheet, as PeerTube publishes). When the
    input's keyframes are at least that frequent only keyframes are decoded — about six
    times faster; pass the smallest HLS rendition (keyframes every 2 s) for the cheapest
    run. Returns ``None`` for inputs without video.
    """
    source = Path(input_path).absolute()
    info = info or await probe(source, _READ_ONLY)
    if not info.has_video or duration <= 0:
        return None
    out = Path(out_dir)
    interval = max(1, math.ceil(duration / max_tiles))
    count = max(1, math.ceil(duration / interval))
    scale = STORYBOARD_TILE_MAX / max(info.width, info.height)
    tile_w, tile_h = _even(info.width * scale), _even(info.height * scale)
    per_sheet_max = STORYBOARD_GRID_MAX**2
    columns = min(STORYBOARD_GRID_MAX, count)
    rows = math.ceil(min(count, per_sheet_max) / columns)
    sheets = math.ceil(count / (columns * rows))

    keyframes_only = info.keyframe_interval is not None and info.keyframe_interval <= interval
    options = {"skip_frame": "nokey"} if keyframes_only else {}
    tiles = (
        _open(info, **options)[str(info.video_stream)]
        .filter("scale", tile_w, tile_h)
        .filter("setsar", 1)
        # Keyframe-only decoding ends at the last keyframe; cloning it for one interval
        # lets the fps filter emit the final tile(s) too.
        .filter("tpad", stop_mode="clone", stop_duration=interval)
        .filter("fps", fps=f"1/{interval}")
        .filter("trim", end_frame=count)
        .filter("tile", f"{columns}x{rows}")
    )
    names = (
        [f"{prefix}-storyboard.jpg"]
        if sheets == 1
        else [f"{prefix}-storyboard-{n}.jpg" for n in range(1, sheets + 1)]
    )
    vtt_name = f"{prefix}-storyboard.vtt"
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{prefix}-", suffix=".storyboard", dir=out))
    placed: list[Path] = []
    done = False
    try:
        output = ffmpeg.output(
            tiles,
            str(work / "sheet-%d.jpg"),
            f="image2",
            start_number=1,
            **{"c:v": "mjpeg", "q:v": JPEG_QUALITY + 1},
        )
        await _run(output, timeout, nice, "storyboard")
        for n in range(1, len(names) + 1):
            if not (work / f"sheet-{n}.jpg").is_file():
                raise TranscodeFailed("bad_output", f"Storyboard sheet {n} was not written.")
        board = Storyboard(
            sprites=tuple(names),
            vtt=vtt_name,
            tile_width=tile_w,
            tile_height=tile_h,
            columns=columns,
            rows=rows,
            tile_count=count,
            tile_duration=interval,
        )
        (work / vtt_name).write_text(storyboard_vtt(board, duration), encoding="utf-8")
        for n, name in enumerate(names, start=1):
            os.replace(work / f"sheet-{n}.jpg", out / name)
            placed.append(out / name)
        os.replace(work / vtt_name, out / vtt_name)
        placed.append(out / vtt_name)
        done = True
    finally:
        if not done:
            for path in placed:
                path.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    return board


def storyboard_vtt(board: Storyboard, duration: float) -> str:
    """The WebVTT thumbnails track: one cue per tile, ``sprite.jpg#xywh=x,y,w,h``."""
    per_sheet = board.columns * board.rows
    lines = ["WEBVTT", ""]
    for i in range(board.tile_count):
        start = i * board.tile_duration
        end = min((i + 1) * board.tile_duration, duration)
        sheet, position = divmod(i, per_sheet)
        row, column = divmod(position, board.columns)
        x, y = column * board.tile_width, row * board.tile_height
        lines += [
            f"{_timestamp(start)} --> {_timestamp(end)}",
            f"{board.sprites[sheet]}#xywh={x},{y},{board.tile_width},{board.tile_height}",
            "",
        ]
    return "\n".join(lines)


def _open(info: MediaInfo, **options: str) -> ffmpeg.nodes.FilterableStream:
    """The upload as an ffmpeg-python input: plain file, demuxer fixed by the probe."""
    return ffmpeg.input(f"file:{info.path}", f=info.demuxer, protocol_whitelist="file", **options)


async def _run(
    output: ffmpeg.nodes.OutputStream, timeout: float | None, nice: int, what: str
) -> None:
    argv = _process.ffmpeg_argv(output.compile(cmd=_process.FFMPEG))
    done = await _process.run(argv, timeout=timeout, nice=nice, timeout_code=f"{what}_timeout")
    if done.returncode != 0:
        raise TranscodeFailed(f"{what}_failed", f"ffmpeg could not make the {what}.", done.stderr)


def _timestamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def _even(value: float) -> int:
    return max(2, 2 * round(value / 2))
