"""transcode_hls(): one ffmpeg pass, PeerTube's layout, aligned keyframes, measured playlists."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

import transcoding
from tests import media
from tests.transcoding.conftest import Transcoded, run_ffprobe
from transcoding import Timeout, TranscodeFailed, parse_media_playlist, read_media_playlist
from transcoding.playlist import parse_attributes


def master_entries(result: transcoding.HlsResult) -> list[tuple[dict[str, str], str]]:
    lines = (result.out_dir / result.master_playlist).read_text().splitlines()
    assert lines[0] == "#EXTM3U"
    entries = []
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            entries.append((parse_attributes(line.partition(":")[2]), lines[i + 1]))
    return entries


def keyframe_times(path: Path) -> list[float]:
    packets = run_ffprobe(path, "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags")[
        "packets"
    ]
    times = sorted(float(p["pts_time"]) for p in packets if "K" in p["flags"])
    return [round(t - times[0], 3) for t in times]


def decode(playlist: Path) -> tuple[int, str, dict[str, str]]:
    """Decode a media playlist end to end; returns (status, stderr, last progress)."""
    done = subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-protocol_whitelist",
            "file",
            "-i",
            str(playlist),
            "-f",
            "null",
            "-",
            "-progress",
            "pipe:1",
            "-nostats",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    progress = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return done.returncode, done.stderr, progress


def test_layout_is_peertubes(landscape_hls: Transcoded) -> None:
    result = landscape_hls.result
    expected = {"land-master.m3u8"}
    for height in (720, 480, 360, 240):
        expected |= {f"land-{height}-fragmented.mp4", f"land-{height}.m3u8"}
    assert {p.name for p in landscape_hls.out_dir.iterdir()} == expected
    assert set(result.files) == expected
    assert [r.resolution for r in result.renditions] == [720, 480, 360, 240]
    for rendition in result.renditions:
        playlist = read_media_playlist(landscape_hls.out_dir / rendition.playlist_name)
        assert playlist.resources == (rendition.file_name,)
        assert playlist.init_range is not None and playlist.init_range.offset == 0
        assert playlist.ended and playlist.target_duration == 4
        assert [round(s.duration, 2) for s in playlist.segments] == [4.0, 1.0]
        assert rendition.segment_count == 2
        assert rendition.size == (landscape_hls.out_dir / rendition.file_name).stat().st_size


def test_master_playlist_lists_every_variant(landscape_hls: Transcoded) -> None:
    result = landscape_hls.result
    entries = master_entries(result)
    assert [uri for _, uri in entries] == [r.playlist_name for r in result.renditions]
    probed = run_ffprobe(
        landscape_hls.out_dir / result.master_playlist, "-show_programs", "-show_streams"
    )
    assert len(probed["programs"]) == len(result.renditions)
    heights = sorted(s["height"] for s in probed["streams"] if s["codec_type"] == "video")
    assert heights == [240, 360, 480, 720]


def test_master_playlist_attributes_are_measured(landscape_hls: Transcoded) -> None:
    for (attrs, uri), rendition, rung in zip(
        master_entries(landscape_hls.result),
        landscape_hls.result.renditions,
        landscape_hls.plan.rungs,
        strict=True,
    ):
        file = landscape_hls.out_dir / rendition.file_name
        stream = run_ffprobe(file, "-select_streams", "v:0", "-show_streams")["streams"][0]
        assert attrs["RESOLUTION"] == f"{stream['width']}x{stream['height']}"
        assert (stream["width"], stream["height"]) == (rung.width, rung.height)
        assert attrs["FRAME-RATE"] == "30.000"
        video_codec, audio_codec = attrs["CODECS"].split(",")
        # Profile and level from the avcC record: x264's High, or the copied source's own.
        profile = {"High": "64", "Main": "4d", "Constrained Baseline": "42", "Baseline": "42"}
        assert video_codec.startswith("avc1." + profile[stream["profile"]])
        if not rung.copy:
            assert stream["profile"] == "High"
        assert int(video_codec[-2:], 16) == stream["level"]
        assert audio_codec == "mp4a.40.2"

        playlist = read_media_playlist(landscape_hls.out_dir / uri)
        average = int(attrs["AVERAGE-BANDWIDTH"])
        peak = int(attrs["BANDWIDTH"])
        assert average == round(file.stat().st_size * 8 / playlist.duration)
        assert peak >= average
        biggest = max(s.byte_range.length for s in playlist.segments)
        assert peak <= biggest * 8 / 1.0
        assert peak < 3 * rung.bitrate + 400_000, "VBV caps a segment near maxrate"


def test_every_rung_decodes_end_to_end(landscape_hls: Transcoded) -> None:
    for rendition in landscape_hls.result.renditions:
        status, stderr, progress = decode(landscape_hls.out_dir / rendition.playlist_name)
        assert status == 0 and stderr == "", stderr
        assert int(progress["frame"]) == 150
        assert int(progress["out_time_us"]) / 1e6 == pytest.approx(5.0, abs=0.1)


def test_keyframes_align_across_rungs(landscape_hls: Transcoded) -> None:
    times = [
        keyframe_times(landscape_hls.out_dir / r.file_name) for r in landscape_hls.result.renditions
    ]
    assert times[0] == [0.0, 2.0, 4.0]
    assert all(t == times[0] for t in times)
    for rendition in landscape_hls.result.renditions:
        playlist = read_media_playlist(landscape_hls.out_dir / rendition.playlist_name)
        start = 0.0
        for segment in playlist.segments:
            assert round(start, 3) in times[0]
            start += segment.duration


def test_keyframes_align_between_60_and_30_fps_rungs(high_fps_hls: Transcoded) -> None:
    top, low = high_fps_hls.result.renditions
    assert (top.resolution, top.fps, low.resolution, low.fps) == (720, 60.0, 360, 30.0)
    assert keyframe_times(high_fps_hls.out_dir / top.file_name) == [0.0, 2.0]
    assert keyframe_times(high_fps_hls.out_dir / low.file_name) == [0.0, 2.0]
    status, stderr, progress = decode(high_fps_hls.out_dir / top.playlist_name)
    assert status == 0 and int(progress["frame"]) == 180, stderr


def test_source_aac_is_copied_and_mp3_is_encoded(
    landscape_hls: Transcoded, audio_hls: Transcoded
) -> None:
    assert landscape_hls.plan.audio.copy and not audio_hls.plan.audio.copy
    for done in (landscape_hls, audio_hls):
        file = done.out_dir / done.result.renditions[0].file_name
        audio = run_ffprobe(file, "-select_streams", "a:0", "-show_streams")["streams"][0]
        assert (audio["codec_name"], audio["profile"], audio["channels"]) == ("aac", "LC", 2)


def test_progress_increases_to_100(landscape_hls: Transcoded) -> None:
    progress = landscape_hls.progress
    assert len(progress) >= 2
    assert progress[-1] == 100.0
    assert all(0 <= p < 100 for p in progress[:-1])
    assert progress == sorted(set(progress))


def test_portrait_produces_portrait_rungs(portrait_hls: Transcoded) -> None:
    renditions = portrait_hls.result.renditions
    assert [(r.resolution, r.width, r.height) for r in renditions] == [
        (360, 360, 640),
        (240, 240, 426),
    ]
    for rendition in renditions:
        stream = run_ffprobe(
            portrait_hls.out_dir / rendition.file_name,
            "-select_streams",
            "v:0",
            "-show_streams",
        )["streams"][0]
        assert (stream["width"], stream["height"]) == (rendition.width, rendition.height)
        rotation = [s for s in stream.get("side_data_list", []) if "rotation" in s]
        assert not rotation or rotation[0]["rotation"] == 0
        status, stderr, _ = decode(portrait_hls.out_dir / rendition.playlist_name)
        assert status == 0, stderr


@pytest.mark.parametrize("fixture", ["audio_hls", "cover_hls"])
def test_audio_only_plays_with_a_still_image(fixture: str, request: pytest.FixtureRequest) -> None:
    done: Transcoded = request.getfixturevalue(fixture)
    (rendition,) = done.result.renditions
    assert (rendition.resolution, rendition.width, rendition.height) == (480, 854, 480)
    assert rendition.codecs.startswith("avc1.") and rendition.codecs.endswith(",mp4a.40.2")
    status, stderr, progress = decode(done.out_dir / rendition.playlist_name)
    assert status == 0 and stderr == "", stderr
    assert int(progress["out_time_us"]) / 1e6 == pytest.approx(4.0, abs=0.15)
    assert int(progress["frame"]) == pytest.approx(20, abs=1)
    assert rendition.average_bandwidth < 400_000


async def test_timeout_kills_ffmpeg_and_leaves_nothing(landscape: Path, tmp_path: Path) -> None:
    plan = transcoding.plan_ladder(await transcoding.probe(landscape))
    out = tmp_path / "out"
    with pytest.raises(Timeout) as stopped:
        await transcoding.transcode_hls(landscape, out, plan, prefix="slow", timeout=0.3)
    assert stopped.value.code == "transcode_timeout"
    assert list(out.iterdir()) == []
    assert not processes_working_in(out)


async def test_cancellation_kills_ffmpeg_and_leaves_nothing(
    landscape: Path, tmp_path: Path
) -> None:
    plan = transcoding.plan_ladder(await transcoding.probe(landscape))
    out = tmp_path / "out"
    started = asyncio.Event()

    async def on_progress(percent: float) -> None:
        started.set()

    task = asyncio.create_task(
        transcoding.transcode_hls(landscape, out, plan, prefix="gone", on_progress=on_progress)
    )
    await asyncio.wait_for(started.wait(), 30)
    assert processes_working_in(out)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert list(out.iterdir()) == []
    assert not processes_working_in(out)


@pytest.mark.skipif(transcoding._process.SETPRIV is None, reason="setpriv is not installed")
async def test_ffmpeg_dies_with_a_killed_worker(landscape: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    script = (
        "import asyncio, sys, transcoding\n"
        "async def main():\n"
        f"    info = await transcoding.probe({str(landscape)!r})\n"
        "    async def started(percent):\n"
        "        print('started', flush=True)\n"
        "        await asyncio.sleep(3600)\n"
        "    await transcoding.transcode_hls(\n"
        f"        info.path, {str(out)!r}, transcoding.plan_ladder(info), prefix='k',\n"
        "        on_progress=started)\n"
        "asyncio.run(main())\n"
    )
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        cwd=Path(__file__).resolve().parents[2],
        stdout=asyncio.subprocess.PIPE,
    )
    assert await asyncio.wait_for(worker.stdout.readline(), 30) == b"started\n"
    orphans = processes_working_in(out)
    assert orphans, "ffmpeg runs in the work directory"
    worker.kill()
    await worker.wait()
    for _ in range(50):
        if not processes_working_in(out):
            break
        await asyncio.sleep(0.1)
    assert not processes_working_in(out), "the kernel killed ffmpeg with its parent"


async def test_ffmpeg_failure_is_reported_and_cleaned_up(landscape: Path, tmp_path: Path) -> None:
    plan = transcoding.plan_ladder(await transcoding.probe(landscape))
    broken = dataclasses.replace(plan, video_stream=7)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("not ours")
    with pytest.raises(TranscodeFailed) as failed:
        await transcoding.transcode_hls(landscape, out, broken, prefix="bad")
    assert failed.value.code == "ffmpeg_failed"
    assert "7" in failed.value.stderr
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


async def test_unsafe_prefix_is_refused(landscape: Path, tmp_path: Path) -> None:
    plan = transcoding.plan_ladder(await transcoding.probe(landscape))
    for prefix in ("../x", "a%v", "", ".hidden"):
        with pytest.raises(ValueError):
            await transcoding.transcode_hls(landscape, tmp_path, plan, prefix=prefix)


def test_input_is_read_as_a_plain_file_with_the_probed_demuxer(landscape_hls: Transcoded) -> None:
    argv = transcoding.build_command(landscape_hls.source, landscape_hls.plan, "p")
    at = argv.index("-i")
    assert argv[at + 1] == f"file:{landscape_hls.source}"
    before = argv[:at]
    assert before[before.index("-protocol_whitelist") + 1] == "file"
    assert before[before.index("-f") + 1] == "mov"
    assert argv.count("-i") == 1
    graph = argv[argv.index("-filter_complex") + 1]
    # One decode, a cascade of scales: one per encoded rung, split between them.
    encoded = len(landscape_hls.plan.rungs) - landscape_hls.plan.copies_top
    assert graph.count("scale=") == encoded and graph.count("split=2") == encoded - 1


def test_playlist_uris_point_at_the_final_files(landscape_hls: Transcoded) -> None:
    for rendition in landscape_hls.result.renditions:
        text = (landscape_hls.out_dir / rendition.playlist_name).read_text()
        playlist = parse_media_playlist(text)
        assert playlist.init_uri == rendition.file_name
        assert {s.uri for s in playlist.segments} == {rendition.file_name}
        assert "%v" not in text and "/" not in text.replace("#EXT", "")


def processes_working_in(directory: Path) -> list[int]:
    """Pids of processes whose working directory is inside ``directory``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cwd.startswith(str(directory)):
            found.append(int(entry.name))
    return found


def video_packets(path: Path) -> list[tuple[str, str, str]]:
    """(pts, size, flags) of every video packet, in decoding order."""
    packets = run_ffprobe(path, "-select_streams", "v:0", "-show_entries", "packet=pts,size,flags")
    return [(p["pts"], p["size"], p["flags"][0]) for p in packets["packets"]]


def test_a_compliant_top_rung_is_the_source_stream_copied(landscape_hls: Transcoded) -> None:
    top = landscape_hls.result.renditions[0]
    source, copied = video_packets(landscape_hls.source), video_packets(
        landscape_hls.out_dir / top.file_name
    )
    sizes = [size for _pts, size, _flags in source]
    if landscape_hls.plan.copies_top:
        assert [size for _pts, size, _flags in copied] == sizes
        assert [flags for *_, flags in copied] == [flags for *_, flags in source]
    else:
        assert [size for _pts, size, _flags in copied] != sizes


@pytest.mark.parametrize(
    ("name", "clip", "why"),
    [
        ("sparse-keyframes.mp4", dict(keyframe_seconds=5.0), "keyframes 5 s apart"),
        ("heavy.mp4", dict(video_bitrate="3M", noise=20), "over the rung's maximum bitrate"),
        ("rotated.mp4", dict(rotate=90), "rotated"),
        ("in-matroska.mkv", {}, "not MP4"),
        ("open-gop.mp4", dict(open_gop=True, preset="veryfast"), "open GOPs"),
    ],
)
async def test_sources_that_do_not_fit_are_encoded(
    media_dir: Path, tmp_path: Path, name: str, clip: dict, why: str
) -> None:
    source = media.make_clip(media_dir, name, 640, 360, 30, 6.0, **clip)
    info = await transcoding.probe(source)
    plan = await transcoding.plan_hls(info)
    assert not plan.copies_top, why
    result = await transcoding.transcode_hls(source, tmp_path, plan, prefix="enc")
    times = [keyframe_times(tmp_path / r.file_name) for r in result.renditions]
    assert times[0][:3] == [0.0, 2.0, 4.0]


async def test_copied_rungs_cut_segments_at_the_sources_keyframes(
    media_dir: Path, tmp_path: Path
) -> None:
    """Keyframes every 1.5 s (45 frames): every rung keyframes there, and each segment holds
    the same whole number of GOPs (3 × 1.5 s, not 4.5 s then 3 s ...)."""
    source = media.make_clip(
        media_dir, "gop-1.5.mp4", 960, 540, 30, 10.0, keyframe_seconds=1.5, video_bitrate="1M"
    )
    info = await transcoding.probe(source)
    plan = await transcoding.plan_hls(info, transcoding.LadderSettings(heights=(540, 360, 240)))
    assert plan.copies_top and [r.resolution for r in plan.rungs] == [540, 360, 240]
    result = await transcoding.transcode_hls(source, tmp_path, plan, prefix="gop")
    times = [keyframe_times(tmp_path / r.file_name) for r in result.renditions]
    assert times[0] == [0.0, 1.5, 3.0, 4.5, 6.0, 7.5, 9.0]
    assert all(t == times[0] for t in times)
    for rendition in result.renditions:
        playlist = read_media_playlist(tmp_path / rendition.playlist_name)
        durations = [round(s.duration, 3) for s in playlist.segments]
        assert durations == [4.5, 4.5, 1.0], durations
        status, stderr, progress = decode(tmp_path / rendition.playlist_name)
        assert status == 0 and stderr == "" and int(progress["frame"]) == 300, stderr
