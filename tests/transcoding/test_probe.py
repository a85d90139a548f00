"""probe(): what it reports for good clips, and how it refuses bad uploads."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import transcoding
from tests import media
from transcoding import InvalidMedia, ProbeLimits, probe

REPO = Path(__file__).resolve().parents[2]


async def test_landscape_clip(landscape: Path) -> None:
    info = await probe(landscape)
    assert (info.width, info.height) == (1280, 720)
    assert not info.is_portrait
    assert info.fps == 30.0
    assert info.duration == pytest.approx(5.0, abs=0.1)
    assert info.has_video and info.has_audio
    assert info.video_codec == "h264" and info.pix_fmt == "yuv420p"
    assert info.audio_codec == "aac" and info.audio_profile == "LC"
    assert info.audio_channels == 2 and info.audio_sample_rate == 48000
    assert info.video_bitrate and info.video_bitrate > 100_000
    assert info.audio_bitrate and 64_000 < info.audio_bitrate < 200_000
    assert info.keyframe_interval == pytest.approx(2.0, abs=0.05)
    assert info.format_name.startswith("mov,mp4")
    assert info.demuxer == "mov"
    assert info.size == landscape.stat().st_size


async def test_portrait_phone_clip_reports_display_size(portrait: Path) -> None:
    info = await probe(portrait)
    assert (info.coded_width, info.coded_height) == (640, 360)
    assert info.rotation in (90, 270)
    assert (info.width, info.height) == (360, 640)
    assert info.is_portrait


async def test_high_fps_clip(high_fps: Path) -> None:
    info = await probe(high_fps)
    assert info.fps == 60.0
    assert info.keyframe_interval == pytest.approx(2.0, abs=0.05)


async def test_audio_only(audio_only: Path, audio_with_cover: Path) -> None:
    info = await probe(audio_only)
    assert not info.has_video and info.has_audio
    assert info.audio_codec == "mp3"
    assert info.cover_stream is None
    assert info.duration == pytest.approx(4.0, abs=0.1)

    covered = await probe(audio_with_cover)
    assert not covered.has_video, "cover art is not a video stream"
    assert covered.cover_stream is not None


@pytest.mark.parametrize(
    ("factory", "code"),
    [
        (media.empty_file, "empty_file"),
        (media.text_as_mp4, "unreadable"),
        (media.truncated_mp4, "truncated"),
        (media.png_image, "not_a_video"),
        (media.hls_playlist_passwd, "unsupported_format"),
        (media.huge_dimensions_mkv, "dimensions_too_large"),
        (media.ten_hour_silence, "too_long"),
    ],
)
async def test_bad_inputs_are_refused_with_their_code(factory, code: str, media_dir: Path) -> None:
    path = factory(media_dir)
    with pytest.raises(InvalidMedia) as refused:
        await probe(path)
    assert refused.value.code == code
    assert refused.value.reason.endswith(".")


async def test_ten_hour_silence_is_real(media_dir: Path) -> None:
    info = await probe(media.ten_hour_silence(media_dir), ProbeLimits(max_duration=40_000))
    assert info.duration == pytest.approx(36_000)
    assert info.has_audio and not info.has_video


async def test_huge_dimensions_are_what_the_file_declares(media_dir: Path) -> None:
    limits = ProbeLimits(max_width=20_000, max_height=20_000, max_pixels=10**9)
    with pytest.raises(InvalidMedia) as refused:
        await probe(media.huge_dimensions_mkv(media_dir), limits)
    # Within the size limits the raw picture cannot be decoded: still refused.
    assert refused.value.code == "truncated"


async def test_pixel_budget_and_duration_limits(landscape: Path) -> None:
    with pytest.raises(InvalidMedia) as refused:
        await probe(landscape, ProbeLimits(max_pixels=1280 * 720 - 1))
    assert refused.value.code == "too_many_pixels"
    with pytest.raises(InvalidMedia) as refused:
        await probe(landscape, ProbeLimits(max_width=1000))
    assert refused.value.code == "dimensions_too_large"
    with pytest.raises(InvalidMedia) as refused:
        await probe(landscape, ProbeLimits(max_duration=4.5))
    assert refused.value.code == "too_long"


async def test_only_regular_files(tmp_path: Path) -> None:
    fifo = tmp_path / "upload.mp4"
    os.mkfifo(fifo)
    for path in (tmp_path, fifo, tmp_path / "missing.mp4"):
        with pytest.raises(InvalidMedia) as refused:
            await probe(path)
        assert refused.value.code == "not_a_file"


async def test_playlist_segments_are_never_opened(tmp_path: Path) -> None:
    # A FIFO blocks whoever opens it for reading until a writer comes: had ffprobe
    # followed the playlist, the probe would hang until its timeout instead.
    os.mkfifo(tmp_path / "segment0.ts")
    playlist = tmp_path / "video.mp4"
    playlist.write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.0,\nsegment0.ts\n#EXT-X-ENDLIST\n"
    )
    started = time.monotonic()
    with pytest.raises(InvalidMedia) as refused:
        await probe(playlist, ProbeLimits(timeout=10))
    assert refused.value.code == "unsupported_format"
    assert time.monotonic() - started < 5
    with pytest.raises(OSError):
        os.open(tmp_path / "segment0.ts", os.O_WRONLY | os.O_NONBLOCK)  # ENXIO: no reader


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
async def test_passwd_playlist_never_opens_passwd(media_dir: Path, tmp_path: Path) -> None:
    playlist = media.hls_playlist_passwd(media_dir)
    script = (
        "import asyncio, transcoding\n"
        "async def main():\n"
        "    try:\n"
        f"        await transcoding.probe({str(playlist)!r})\n"
        "    except transcoding.InvalidMedia as exc:\n"
        "        print(exc.code)\n"
        "asyncio.run(main())\n"
    )
    log = tmp_path / "strace.log"
    done = await asyncio.to_thread(
        subprocess.run,
        [
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=execve,open,openat,openat2",
            "-o",
            str(log),
            sys.executable,
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    if done.returncode != 0 and "ptrace" in done.stderr:
        pytest.skip("ptrace is not permitted here")
    assert done.stdout.strip() == "unsupported_format"
    trace = log.read_text()
    assert any("execve" in line and "ffprobe" in line for line in trace.splitlines())
    assert "/etc/passwd" not in trace


def test_parse_probe_applies_rotation_and_sample_aspect_ratio() -> None:
    data = {
        "format": {
            "format_name": "mov,mp4,m4a,3gp,3g2,mj2",
            "duration": "12.5",
            "bit_rate": "2000000",
        },
        "streams": [
            {
                "index": 0,
                "codec_type": "video",
                "codec_name": "h264",
                "width": 720,
                "height": 576,
                "sample_aspect_ratio": "16:15",
                "avg_frame_rate": "25/1",
                "side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}],
            },
            {
                "index": 1,
                "codec_type": "audio",
                "codec_name": "aac",
                "profile": "LC",
                "bit_rate": "128000",
                "channels": 2,
                "sample_rate": "48000",
            },
        ],
        "packets": [
            {"stream_index": 0, "pts_time": "0.0", "flags": "K_"},
            {"stream_index": 0, "pts_time": "0.04", "flags": "__"},
            {"stream_index": 0, "pts_time": "3.0", "flags": "K_"},
            {"stream_index": 1, "pts_time": "1.0", "flags": "K_"},
            {"stream_index": 0, "pts_time": "4.0", "flags": "K_"},
        ],
    }
    info = transcoding.parse_probe(data, Path("/x.mp4"), 100)
    assert (info.width, info.height) == (576, 768)
    assert info.rotation == 270
    assert info.video_bitrate == 2_000_000 - 128_000
    assert info.keyframe_interval == 3.0
    assert info.duration == 12.5


def test_parse_probe_refuses_odd_shapes() -> None:
    def shape(format_name: str, *streams: dict) -> dict:
        return {"format": {"format_name": format_name, "duration": "3"}, "streams": list(streams)}

    cases = [
        (shape("concat"), "unsupported_format"),
        (
            shape("png_pipe", {"index": 0, "codec_type": "video", "codec_name": "png"}),
            "not_a_video",
        ),
        (shape("matroska,webm", {"index": 0, "codec_type": "subtitle"}), "no_streams"),
        (
            shape(
                "matroska,webm",
                {"index": 0, "codec_type": "video", "codec_name": "png", "width": 10, "height": 10},
            ),
            "not_a_video",
        ),
        (
            {
                "format": {"format_name": "mp3"},
                "streams": [{"index": 0, "codec_type": "audio", "codec_name": "mp3"}],
            },
            "no_duration",
        ),
    ]
    for data, code in cases:
        with pytest.raises(InvalidMedia) as refused:
            transcoding.parse_probe(data, Path("/x"), 1)
        assert refused.value.code == code, data
