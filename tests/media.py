"""Test media made with ffmpeg's lavfi sources (testsrc2 + sine), cached in a directory.

Any test package may use these: call a preset with a directory (a session-scoped temp
dir) and get a path back. Files are made once per directory and written atomically, so
parallel workers sharing a directory never see a half-written clip.

Good clips: :func:`landscape_720p30`, :func:`portrait`, :func:`high_fps_60`,
:func:`audio_only`, :func:`audio_with_cover`, :func:`landscape_1080p30`.
Bad inputs the probe must refuse: :func:`empty_file`, :func:`text_as_mp4`,
:func:`truncated_mp4`, :func:`png_image`, :func:`hls_playlist_passwd`,
:func:`huge_dimensions_mkv`, :func:`ten_hour_silence`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

FFMPEG = "ffmpeg"


def make_clip(
    dirpath: str | os.PathLike[str],
    name: str,
    width: int = 640,
    height: int = 360,
    fps: int = 30,
    seconds: float = 4.0,
    audio: bool = True,
    video: bool = True,
    *,
    rotate: int = 0,
    video_bitrate: str | None = None,
    audio_codec: str = "aac",
    noise: int = 0,
    keyframe_seconds: float = 2.0,
    preset: str = "ultrafast",
    open_gop: bool = False,
) -> Path:
    """A clip of ``testsrc2`` video and a stereo 440 Hz tone, in the container of ``name``.

    ``rotate`` stores display-rotation side data (as phones do) without turning the
    pixels; ``noise`` adds temporal noise so the picture costs bits like camera footage;
    ``video_bitrate`` (e.g. ``"12M"``) makes the encoder fill that rate; ``open_gop`` lets
    frames refer across keyframes (needs a preset with B-frames).
    """
    if not (audio or video):
        raise ValueError("a clip needs audio or video")

    def build(tmp: Path) -> None:
        argv = [FFMPEG, "-hide_banner", "-nostdin", "-v", "error", "-y"]
        if video:
            source = f"testsrc2=size={width}x{height}:rate={fps}"
            if noise:
                source += f",noise=alls={noise}:allf=t"
            argv += ["-f", "lavfi", "-i", source]
        if audio:
            argv += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
        argv += ["-t", f"{seconds:g}"]
        if video:
            argv += [
                "-c:v",
                "libx264",
                "-preset",
                preset,
                "-pix_fmt",
                "yuv420p",
                "-g",
                str(round(fps * keyframe_seconds)),
            ]
            if open_gop:  # B-frames before a keyframe in display order refer across it
                argv += ["-x264-params", "open-gop=1:bframes=3"]
            if video_bitrate:
                argv += [
                    "-b:v",
                    video_bitrate,
                    "-maxrate",
                    video_bitrate,
                    "-bufsize",
                    video_bitrate,
                ]
        if audio:
            codec = {"aac": "aac", "mp3": "libmp3lame", "opus": "libopus"}[audio_codec]
            argv += ["-c:a", codec, "-ac", "2", "-b:a", "128k"]
        if tmp.suffix in (".mp4", ".mov", ".m4a"):
            argv += ["-movflags", "+faststart"]
        _ffmpeg(argv + [str(tmp)])
        if rotate:
            _set_rotation(tmp, rotate)

    return _cached(dirpath, name, build)


def landscape_720p30(dirpath: str | os.PathLike[str]) -> Path:
    """5 s of 1280×720 at 30 fps, 3 Mb/s, keyframes every 2 s, with AAC-LC stereo audio:
    both streams fit their rung as they are (copied as the top rung)."""
    return make_clip(dirpath, "landscape-720p30-3M.mp4", 1280, 720, 30, 5.0, video_bitrate="3M")


def portrait(dirpath: str | os.PathLike[str]) -> Path:
    """3 s shot like a phone: 640×360 pixels stored with a 90° rotation (360×640 shown)."""
    return make_clip(dirpath, "portrait.mp4", 640, 360, 30, 3.0, rotate=90)


def high_fps_60(dirpath: str | os.PathLike[str]) -> Path:
    """3 s of 1280×720 at 60 fps."""
    return make_clip(dirpath, "high-fps-60.mp4", 1280, 720, 60, 3.0)


def audio_only(dirpath: str | os.PathLike[str]) -> Path:
    """4 s of MP3 (not AAC: the transcoder must encode it)."""
    return make_clip(dirpath, "audio-only.mp3", seconds=4.0, video=False, audio_codec="mp3")


def audio_with_cover(dirpath: str | os.PathLike[str]) -> Path:
    """4 s of MP3 with an embedded cover picture (an attached_pic stream, not a video)."""

    def build(tmp: Path) -> None:
        cover = png_image(dirpath)
        sound = audio_only(dirpath)
        _ffmpeg(
            [
                FFMPEG,
                "-hide_banner",
                "-nostdin",
                "-v",
                "error",
                "-y",
                "-i",
                str(sound),
                "-i",
                str(cover),
                "-map",
                "0:a",
                "-map",
                "1:v",
                "-c:a",
                "copy",
                "-c:v",
                "mjpeg",
                "-disposition:v",
                "attached_pic",
                "-id3v2_version",
                "3",
                str(tmp),
            ]
        )

    return _cached(dirpath, "audio-with-cover.mp3", build)


def landscape_1080p30(
    dirpath: str | os.PathLike[str], seconds: float = 30.0, bitrate: str = "12M"
) -> Path:
    """1920×1080 at 30 fps, noisy enough to need ``bitrate`` (benchmark source)."""
    return make_clip(
        dirpath,
        f"landscape-1080p30-{seconds:g}s-{bitrate}.mp4",
        1920,
        1080,
        30,
        seconds,
        video_bitrate=bitrate,
        noise=12,
        preset="superfast",
    )


def empty_file(dirpath: str | os.PathLike[str]) -> Path:
    """A zero-byte file named like a video."""
    return _cached(dirpath, "empty.mp4", lambda tmp: tmp.write_bytes(b""))


def text_as_mp4(dirpath: str | os.PathLike[str]) -> Path:
    """A text file renamed ``.mp4``."""
    text = "This is not a video, only a few lines of text.\n" * 20
    return _cached(dirpath, "text.mp4", lambda tmp: tmp.write_text(text))


def truncated_mp4(dirpath: str | os.PathLike[str]) -> Path:
    """A faststart MP4 cut in half: its header is intact, its media data is not."""

    def build(tmp: Path) -> None:
        whole = make_clip(dirpath, "to-truncate.mp4", 640, 360, 30, 4.0)
        data = whole.read_bytes()
        tmp.write_bytes(data[: len(data) // 2])

    return _cached(dirpath, "truncated.mp4", build)


def png_image(dirpath: str | os.PathLike[str]) -> Path:
    """A single 320×180 PNG picture."""
    return _cached(
        dirpath,
        "picture.png",
        lambda tmp: _ffmpeg(
            [
                FFMPEG,
                "-hide_banner",
                "-nostdin",
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x180",
                "-frames:v",
                "1",
                str(tmp),
            ]
        ),
    )


def hls_playlist_passwd(dirpath: str | os.PathLike[str]) -> Path:
    """An HLS playlist whose only segment is ``file:///etc/passwd``."""
    text = (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-PLAYLIST-TYPE:VOD\n"
        "#EXTINF:10.0,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
    )
    return _cached(dirpath, "passwd.m3u8", lambda tmp: tmp.write_text(text))


def huge_dimensions_mkv(dirpath: str | os.PathLike[str], size: int = 12000) -> Path:
    """A Matroska file declaring ``size``×``size`` pixels around a 256×256 raw picture.

    rawvideo has no header of its own, so ffprobe reports the container's
    PixelWidth/PixelHeight, which are patched in place (same 2-byte encoding).
    """

    def build(tmp: Path) -> None:
        _ffmpeg(
            [
                FFMPEG,
                "-hide_banner",
                "-nostdin",
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "color=c=gray:s=256x256:r=1",
                "-frames:v",
                "2",
                "-c:v",
                "rawvideo",
                "-pix_fmt",
                "gray",
                str(tmp),
            ]
        )
        data = bytearray(tmp.read_bytes())
        header = bytes(data[:4096])
        # EBML: PixelWidth is element 0xB0, PixelHeight 0xBA; 0x82 = 2-byte payload.
        for element in (b"\xb0\x82\x01\x00", b"\xba\x82\x01\x00"):
            if header.count(element) != 1:
                raise RuntimeError("unexpected Matroska layout from ffmpeg")
            at = header.index(element) + 2
            data[at : at + 2] = size.to_bytes(2, "big")
        tmp.write_bytes(bytes(data))

    return _cached(dirpath, f"huge-{size}.mkv", build)


def ten_hour_silence(dirpath: str | os.PathLike[str]) -> Path:
    """Ten hours of real, decodable silence (8 kHz mono FLAC, ~120 kB, ~2 s to make)."""
    return _cached(
        dirpath,
        "silence-10h.flac",
        lambda tmp: _ffmpeg(
            [
                FFMPEG,
                "-hide_banner",
                "-nostdin",
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "anullsrc=r=8000:cl=mono:nb_samples=32768",
                "-t",
                "36000",
                "-c:a",
                "flac",
                "-compression_level",
                "0",
                "-frame_size",
                "32768",
                str(tmp),
            ]
        ),
    )


def _ts_part(tmp: Path, size: str, rate: int, seconds: float, tone: int) -> bytes:
    """An H.264 + AAC MPEG-TS clip's bytes (its timestamps start at zero, like every part's)."""
    part = tmp.with_name(f"{tmp.name}.{size}.{tone}.ts")
    try:
        _ffmpeg(
            [
                FFMPEG, "-hide_banner", "-nostdin", "-v", "error", "-y",
                "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}",
                "-f", "lavfi", "-i", f"sine=frequency={tone}",
                "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
                "-f", "mpegts", str(part),
            ]
        )
        return part.read_bytes()
    finally:
        part.unlink(missing_ok=True)


def resolution_jump_ts(dirpath: str | os.PathLike[str]) -> Path:
    """An MPEG-TS file that is 320x240 for 3 s (all a probe reads), then 2560x1440 for 1 s, then
    320x240 again: its header says nothing of the large frames in the middle."""

    def build(tmp: Path) -> None:
        small = _ts_part(tmp, "320x240", 10, 3, 440)
        large = _ts_part(tmp, "2560x1440", 5, 1, 660)
        tmp.write_bytes(small + large + small)

    return _cached(dirpath, "resolution-jump.ts", build)


def restarting_timestamps_ts(dirpath: str | os.PathLike[str]) -> Path:
    """Four 3 s MPEG-TS clips end to end, each starting at timestamp zero: a probe reads 3 s,
    the file holds 12."""

    def build(tmp: Path) -> None:
        tmp.write_bytes(_ts_part(tmp, "320x240", 10, 3, 440) * 4)

    return _cached(dirpath, "restarting-timestamps.ts", build)


BAD_INPUTS: dict[str, Callable[[str | os.PathLike[str]], Path]] = {
    "empty_file": empty_file,
    "text_as_mp4": text_as_mp4,
    "truncated_mp4": truncated_mp4,
    "png_image": png_image,
    "hls_playlist_passwd": hls_playlist_passwd,
    "huge_dimensions_mkv": huge_dimensions_mkv,
    "ten_hour_silence": ten_hour_silence,
}


def _cached(dirpath: str | os.PathLike[str], name: str, build: Callable[[Path], object]) -> Path:
    """Return ``dirpath/name``, building it first (atomically) if it does not exist."""
    target = Path(dirpath) / name
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{os.getpid()}-{name}")
    try:
        build(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _ffmpeg(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {' '.join(argv)}\n{done.stderr[-2000:]}")


def _set_rotation(path: Path, degrees: int) -> None:
    """Store display-rotation side data on the video track, pixels untouched."""
    rotated = path.with_name(f".rot-{path.name}")
    base = [FFMPEG, "-hide_banner", "-nostdin", "-v", "error", "-y"]
    # ffmpeg >= 6 takes -display_rotation on the input; 5.x still maps the "rotate" tag
    # to the display matrix when stream-copying into MP4.
    attempts = [
        [*base, "-display_rotation", str(degrees), "-i", str(path), "-c", "copy", str(rotated)],
        [
            *base,
            "-i",
            str(path),
            "-c",
            "copy",
            "-metadata:s:v:0",
            f"rotate={degrees}",
            str(rotated),
        ],
    ]
    try:
        for argv in attempts:
            if subprocess.run(argv, capture_output=True, check=False).returncode == 0:
                os.replace(rotated, path)
                return
        raise RuntimeError("this ffmpeg cannot store a display rotation")
    finally:
        rotated.unlink(missing_ok=True)
