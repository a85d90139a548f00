"""plan_ladder(): which rungs, sizes, frame rates, bitrates and audio handling."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from transcoding import (
    LadderSettings,
    MediaInfo,
    PacketScan,
    plan_ladder,
    probe,
    reduce_frame_rate,
)


def video(
    width: int, height: int, fps: float | Fraction = 30, bitrate: int | None = 8_000_000, **extra
) -> MediaInfo:
    fields = dict(
        path=Path("/upload"),
        format_name="mov,mp4,m4a,3gp,3g2,mj2",
        size=1,
        duration=60.0,
        has_video=True,
        has_audio=True,
        width=width,
        height=height,
        coded_width=width,
        coded_height=height,
        frame_rate=Fraction(fps),
        video_codec="h264",
        pix_fmt="yuv420p",
        video_bitrate=bitrate,
        video_stream=0,
        audio_codec="aac",
        audio_profile="LC",
        audio_bitrate=128_000,
        audio_channels=2,
        audio_sample_rate=48000,
        audio_stream=1,
    )
    fields.update(extra)
    return MediaInfo(**fields)


def sizes(plan) -> list[tuple[int, int, int]]:
    return [(r.resolution, r.width, r.height) for r in plan.rungs]


def test_never_upscales() -> None:
    plan = plan_ladder(video(1280, 720))
    assert sizes(plan) == [(720, 1280, 720), (480, 854, 480), (360, 640, 360), (240, 426, 240)]


def test_full_hd_and_4k() -> None:
    assert [r.resolution for r in plan_ladder(video(1920, 1080)).rungs] == [
        1080,
        720,
        480,
        360,
        240,
    ]
    assert [r.resolution for r in plan_ladder(video(3840, 2160)).rungs] == [
        2160,
        1440,
        1080,
        720,
        480,
        360,
        240,
    ]


def test_source_between_steps_is_kept_at_its_own_size() -> None:
    plan = plan_ladder(video(1600, 900))
    assert sizes(plan)[:2] == [(900, 1600, 900), (720, 1280, 720)]
    # Near-duplicates of a rung are not worth a rendition.
    assert [r.resolution for r in plan_ladder(video(1920, 1088)).rungs][0] == 1080
    # Above the highest configured rung: capped there.
    assert plan_ladder(video(5120, 2880)).rungs[0].resolution == 2160
    no_original = LadderSettings(keep_source_resolution=False)
    assert plan_ladder(video(1600, 900), no_original).rungs[0].resolution == 720


def test_odd_source_sizes_round_to_even() -> None:
    plan = plan_ladder(video(1278, 719))
    assert all(r.width % 2 == 0 and r.height % 2 == 0 for r in plan.rungs)
    assert sizes(plan)[0] == (718, 1276, 718), "never rounded up past the source"


def test_small_source_gets_one_rung_of_its_own_size() -> None:
    plan = plan_ladder(video(320, 180))
    assert sizes(plan) == [(180, 320, 180)]
    plan = plan_ladder(video(97, 55))
    assert sizes(plan) == [(54, 96, 54)]


def test_portrait_uses_the_short_side() -> None:
    plan = plan_ladder(video(1080, 1920))
    assert sizes(plan) == [
        (1080, 1080, 1920),
        (720, 720, 1280),
        (480, 480, 854),
        (360, 360, 640),
        (240, 240, 426),
    ]


def test_frame_rates() -> None:
    plan = plan_ladder(video(1920, 1080, fps=60))
    rates = {r.resolution: r.frame_rate for r in plan.rungs}
    assert rates == {1080: 60, 720: 60, 480: 30, 360: 30, 240: 30}
    assert {r.resolution: r.gop_frames for r in plan.rungs} == {
        1080: 120,
        720: 120,
        480: 60,
        360: 60,
        240: 60,
    }

    pal = plan_ladder(video(1280, 720, fps=50))
    assert [r.frame_rate for r in pal.rungs] == [50, 25, 25, 25]

    ntsc = plan_ladder(video(1280, 720, fps=Fraction(60000, 1001)))
    assert ntsc.rungs[0].frame_rate == Fraction(60000, 1001)
    assert ntsc.rungs[1].frame_rate == Fraction(30000, 1001)

    fast = plan_ladder(video(1280, 720, fps=120))
    assert [r.frame_rate for r in fast.rungs] == [60, 30, 30, 30]

    film = plan_ladder(video(1280, 720, fps=24))
    assert all(r.frame_rate == 24 and r.gop_frames == 48 for r in film.rungs)


def test_reduce_frame_rate_keeps_frames_evenly_spaced() -> None:
    assert reduce_frame_rate(Fraction(30), 30) == 30
    assert reduce_frame_rate(Fraction(48), 30) == 24
    assert reduce_frame_rate(Fraction(90), 30) == 30
    assert reduce_frame_rate(Fraction(100), 30) == 25


def test_bitrates_follow_the_bits_per_pixel_table() -> None:
    plan = plan_ladder(video(1920, 1080, bitrate=50_000_000))
    top = plan.rungs[0]
    assert top.bitrate == int(0.10 * 1920 * 1080 * 30)
    assert top.bufsize == 2 * top.bitrate
    assert plan.rungs[-1].bitrate == int(0.17 * 426 * 240 * 30)

    # A light upload caps every rung at 1.3 × its bitrate ...
    light = plan_ladder(video(1920, 1080, bitrate=2_000_000))
    assert light.rungs[0].bitrate == int(1.3 * 2_000_000)
    # ... but never under the table's minimum.
    starved = plan_ladder(video(1920, 1080, bitrate=100_000))
    assert starved.rungs[0].bitrate == int(0.02 * 1920 * 1080 * 30)

    sixty = plan_ladder(video(1920, 1080, fps=60, bitrate=None))
    assert sixty.rungs[0].bitrate == int(0.10 * 1920 * 1080 * 60)


def test_encoder_options_come_from_settings() -> None:
    settings = LadderSettings(preset="faster", crf=21, threads=2, heights=(720, 360))
    plan = plan_ladder(video(1920, 1080), settings)
    assert (plan.preset, plan.crf, plan.threads) == ("faster", 21, 2)
    assert (plan.gop_seconds, plan.segment_seconds) == (2.0, 4.0)
    assert [r.resolution for r in plan.rungs] == [720, 360]
    assert plan.demuxer == "mov" and plan.video_stream == 0 and plan.audio_stream == 1
    with pytest.raises(ValueError):
        LadderSettings(heights=(721,))
    with pytest.raises(ValueError):
        LadderSettings(gop_seconds=6, segment_seconds=4)


def test_audio_rules() -> None:
    assert plan_ladder(video(1280, 720)).audio.copy
    cases = [
        (dict(audio_codec="mp3", audio_profile=None, audio_bitrate=128_000), 128_000),
        (dict(audio_codec="opus", audio_profile=None, audio_bitrate=256_000), 256_000),
        (dict(audio_codec="flac", audio_profile=None, audio_bitrate=900_000), 384_000),
        (dict(audio_codec="vorbis", audio_profile=None, audio_bitrate=None), 256_000),
        (dict(audio_channels=6, audio_bitrate=384_000), 384_000),
        (dict(audio_bitrate=512_000), 384_000),
        (dict(audio_profile="HE-AAC", audio_bitrate=64_000), 128_000),
    ]
    for extra, bitrate in cases:
        audio = plan_ladder(video(1280, 720, **extra)).audio
        assert not audio.copy, extra
        assert (audio.bitrate, audio.channels) == (bitrate, 2), extra
    resampled = plan_ladder(video(1280, 720, audio_codec="mp3", audio_sample_rate=22050)).audio
    assert resampled.sample_rate == 48000
    silent = plan_ladder(video(1280, 720, has_audio=False, audio_stream=None))
    assert silent.audio is None


def test_audio_only_gets_one_still_rung() -> None:
    info = video(
        0,
        0,
        fps=0,
        has_video=False,
        video_stream=None,
        audio_codec="mp3",
        audio_profile=None,
        cover_stream=2,
    )
    plan = plan_ladder(info)
    assert sizes(plan) == [(480, 854, 480)]
    assert plan.still is not None and plan.still.cover_stream == 2
    assert plan.rungs[0].frame_rate == 5
    assert not plan.audio.copy


async def test_plan_for_a_real_high_fps_clip(high_fps: Path) -> None:
    plan = plan_ladder(await probe(high_fps))
    assert [(r.resolution, r.frame_rate) for r in plan.rungs] == [
        (720, 60),
        (480, 30),
        (360, 30),
        (240, 30),
    ]
    assert plan.source_frame_rate == 60
    assert plan.duration == pytest.approx(3.0, abs=0.1)


def scan_of(fps: float, seconds: float, keyframe_every: float, start: float = 0.0) -> PacketScan:
    count = round(fps * seconds)
    frames = tuple(round(start + i / fps, 6) for i in range(count))
    step = round(keyframe_every * fps)
    return PacketScan(frames, frames[::step])


FRAMES = scan_of(30, 60, 2.0).frames


def test_a_fitting_source_has_its_top_rung_copied() -> None:
    info = video(1920, 1080, 30, bitrate=6_000_000, video_profile="High", duration=60.0)
    plan = plan_ladder(info, LadderSettings(heights=(1080, 720)), scan_of(30, 60, 2.0))
    assert plan.copies_top and not plan.rungs[1].copy
    assert plan.rungs[0].bitrate == 6_000_000
    assert plan.hls_time == pytest.approx(4.0, abs=1e-3) and plan.hls_time < 4.0
    # Without the packet scan nothing is copied (the keyframes are unknown).
    assert not plan_ladder(info, LadderSettings(heights=(1080, 720))).copies_top
    assert not plan_ladder(
        info, LadderSettings(heights=(1080, 720), copy_compliant_top=False), scan_of(30, 60, 2.0)
    ).copies_top


@pytest.mark.parametrize(
    ("extra", "scan", "why"),
    [
        (dict(video_bitrate=12_000_000), None, "over 1080p30's maximum (10.6 Mb/s)"),
        (dict(video_profile="High 10"), None, "a profile not every player decodes"),
        (dict(pix_fmt="yuv422p"), None, "not 4:2:0"),
        (dict(field_order="tt"), None, "interlaced"),
        (dict(video_codec="hevc"), None, "not H.264"),
        (dict(format_name="matroska,webm"), None, "not MP4"),
        (dict(coded_width=1440), None, "non-square pixels (1440 stored, 1920 shown)"),
        ({}, scan_of(30, 60, 5.0), "keyframes further apart than a segment"),
        ({}, PacketScan(FRAMES, FRAMES[15::60]), "the first frame is no keyframe"),
        ({}, PacketScan(FRAMES[:100] + FRAMES[101:], FRAMES[::60]), "a frame missing (VFR)"),
        ({}, PacketScan(FRAMES, FRAMES[::60], closed_gops=False), "open GOPs"),
    ],
)
def test_sources_that_do_not_fit_are_not_copied(
    extra: dict, scan: PacketScan | None, why: str
) -> None:
    fields = dict(video_profile="High", bitrate=6_000_000)
    fields.update(extra)
    info = video(1920, 1080, 30, **fields)
    plan = plan_ladder(info, LadderSettings(heights=(1080, 720)), scan or scan_of(30, 60, 2.0))
    assert not plan.copies_top, why


def test_keyframes_must_survive_a_lower_rungs_frame_rate() -> None:
    """60 fps source, 30 fps low rungs: fps keeps every other frame, so a keyframe on an odd
    frame would be lost in the 30 fps rungs and their segments would not line up."""
    info = video(1280, 720, 60, bitrate=4_000_000, video_profile="High")
    settings = LadderSettings(heights=(720, 480))
    assert plan_ladder(info, settings, scan_of(60, 60, 2.0)).copies_top
    odd = scan_of(60, 60, 61 / 60)  # every 61 frames: every other keyframe is on an odd frame
    assert not plan_ladder(info, settings, odd).copies_top
