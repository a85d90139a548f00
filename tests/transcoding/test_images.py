"""Thumbnails, previews and storyboards."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import transcoding
from tests import media
from tests.transcoding.conftest import Transcoded, run_ffprobe
from transcoding import (
    PREVIEW_SIZE,
    THUMBNAIL_SIZE,
    Storyboard,
    make_storyboard,
    make_thumbnail,
    storyboard_vtt,
)

CUE = re.compile(
    r"(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\n"
    r"(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)"
)


def picture_size(path: Path) -> tuple[int, int]:
    stream = run_ffprobe(path, "-show_streams")["streams"][0]
    assert stream["codec_name"] == "mjpeg"
    return stream["width"], stream["height"]


def cues(vtt: str) -> list[tuple[float, float, str, int, int, int, int]]:
    assert vtt.startswith("WEBVTT\n\n")
    found = []
    for m in CUE.finditer(vtt):
        g = m.groups()
        start = int(g[0]) * 3600 + int(g[1]) * 60 + int(g[2]) + int(g[3]) / 1000
        end = int(g[4]) * 3600 + int(g[5]) * 60 + int(g[6]) + int(g[7]) / 1000
        found.append((start, end, g[8], *(int(n) for n in g[9:])))
    return found


@pytest.mark.parametrize("clip", ["landscape", "portrait", "audio_only", "audio_with_cover"])
async def test_thumbnail_and_preview_sizes(
    clip: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    source: Path = request.getfixturevalue(clip)
    for name, (width, height) in (("thumb.jpg", THUMBNAIL_SIZE), ("preview.jpg", PREVIEW_SIZE)):
        path = await make_thumbnail(source, tmp_path / name, None, width, height)
        assert path == tmp_path / name
        assert picture_size(path) == (width, height)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preview.jpg", "thumb.jpg"]


async def test_thumbnail_shows_the_requested_moment(landscape: Path, tmp_path: Path) -> None:
    info = await transcoding.probe(landscape)
    early = await make_thumbnail(landscape, tmp_path / "early.jpg", 0.5, info=info)
    late = await make_thumbnail(landscape, tmp_path / "late.jpg", 3.5, info=info)
    again = await make_thumbnail(landscape, tmp_path / "again.jpg", 0.5, info=info)
    assert early.read_bytes() != late.read_bytes()
    assert early.read_bytes() == again.read_bytes(), "deterministic"
    beyond = await make_thumbnail(landscape, tmp_path / "beyond.jpg", 99, info=info)
    assert picture_size(beyond) == THUMBNAIL_SIZE
    assert transcoding.poster_time(info.duration) == pytest.approx(info.duration / 3)


def check_storyboard(board: Storyboard, out: Path, duration: float) -> None:
    sizes = {name: picture_size(out / name) for name in board.sprites}
    for width, height in sizes.values():
        assert (width, height) == (board.columns * board.tile_width, board.rows * board.tile_height)
    assert max(board.tile_width, board.tile_height) == 192
    found = cues((out / board.vtt).read_text())
    assert len(found) == board.tile_count
    assert found[0][0] == 0.0 and found[-1][1] == pytest.approx(duration, abs=0.001)
    for (start, end, sprite, x, y, w, h), following in zip(found, [*found[1:], None], strict=True):
        assert end - start == pytest.approx(board.tile_duration) or following is None
        if following:
            assert following[0] == end
        width, height = sizes[sprite]
        assert (w, h) == (board.tile_width, board.tile_height)
        assert x + w <= width and y + h <= height
        assert x % w == 0 and y % h == 0


async def test_storyboard_of_a_landscape_clip(landscape: Path, tmp_path: Path) -> None:
    info = await transcoding.probe(landscape)
    board = await make_storyboard(landscape, tmp_path, "land", info.duration)
    assert board is not None
    assert board.sprites == ("land-storyboard.jpg",)
    assert (board.tile_width, board.tile_height) == (192, 108)
    assert (board.tile_count, board.tile_duration, board.columns, board.rows) == (5, 1, 5, 1)
    check_storyboard(board, tmp_path, info.duration)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(board.files)


async def test_storyboard_from_a_rendition_decodes_keyframes_only(
    landscape_hls: Transcoded, tmp_path: Path
) -> None:
    rendition = landscape_hls.result.renditions[-1]
    source = landscape_hls.out_dir / rendition.file_name
    info = await transcoding.probe(source)
    assert info.keyframe_interval == pytest.approx(2.0)
    board = await make_storyboard(source, tmp_path, "r", rendition.duration, max_tiles=2)
    assert board is not None
    assert (board.tile_count, board.tile_duration, board.columns, board.rows) == (2, 3, 2, 1)
    check_storyboard(board, tmp_path, rendition.duration)


async def test_storyboard_of_a_portrait_clip(portrait: Path, tmp_path: Path) -> None:
    board = await make_storyboard(portrait, tmp_path, "p", 3.0)
    assert board is not None
    assert (board.tile_width, board.tile_height) == (108, 192)
    check_storyboard(board, tmp_path, 3.0)


async def test_no_storyboard_without_video(audio_with_cover: Path, tmp_path: Path) -> None:
    assert await make_storyboard(audio_with_cover, tmp_path, "a", 4.0) is None
    assert list(tmp_path.iterdir()) == []


def test_vtt_spreads_tiles_over_several_sheets() -> None:
    board = Storyboard(
        sprites=("s-1.jpg", "s-2.jpg"),
        vtt="s.vtt",
        tile_width=192,
        tile_height=108,
        columns=11,
        rows=11,
        tile_count=130,
        tile_duration=2,
    )
    found = cues(storyboard_vtt(board, 259.5))
    assert len(found) == 130
    assert found[120][2:] == ("s-1.jpg", 1920, 1080, 192, 108)
    assert found[121][2:] == ("s-2.jpg", 0, 0, 192, 108)
    assert found[-1][:2] == (258.0, 259.5)


async def test_images_do_not_judge_inputs_again(media_dir: Path, tmp_path: Path) -> None:
    # Ten hours is over the default probe limit, but an instance may allow it: once
    # accepted, its images must still be made.
    path = await make_thumbnail(media.ten_hour_silence(media_dir), tmp_path / "t.jpg")
    assert picture_size(path) == THUMBNAIL_SIZE
