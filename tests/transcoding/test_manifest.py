"""The segments-sha256 manifest and the playlist parser it shares with bandwidth measurement."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from tests.transcoding.conftest import Transcoded
from transcoding import (
    ByteRange,
    PlaylistError,
    build_segments_sha256,
    parse_media_playlist,
    peak_bandwidth,
    read_media_playlist,
    write_segments_sha256,
    write_segments_sha256_async,
)
from transcoding.playlist import retarget_media_playlist


def test_manifest_has_peertubes_shape_and_true_hashes(landscape_hls: Transcoded) -> None:
    out = landscape_hls.out_dir
    result = landscape_hls.result
    manifest = build_segments_sha256(out, result.media_playlists)
    assert sorted(manifest) == sorted(r.file_name for r in result.renditions)
    for rendition in result.renditions:
        ranges = manifest[rendition.file_name]
        playlist = read_media_playlist(out / rendition.playlist_name)
        assert len(ranges) == 1 + len(playlist.segments)
        data = (out / rendition.file_name).read_bytes()
        expected_start = 0
        for key, digest in ranges.items():
            start, end = (int(n) for n in key.split("-"))
            assert start == expected_start, "ranges are contiguous, init section first"
            assert digest == hashlib.sha256(data[start : end + 1]).hexdigest()
            expected_start = end + 1
        assert expected_start == len(data), "the ranges cover the whole file"
        first = next(iter(ranges))
        assert first == f"0-{playlist.init_range.length - 1}"


async def test_written_file_and_tampering(landscape_hls: Transcoded, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(landscape_hls.out_dir, out)
    playlists = landscape_hls.result.media_playlists
    path = await write_segments_sha256_async(out, "land", playlists)
    assert path == out / "land-segments-sha256.json"
    written = json.loads(path.read_text())
    assert written == build_segments_sha256(out, playlists)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]

    rendition = landscape_hls.result.renditions[-1]
    segment = read_media_playlist(out / rendition.playlist_name).segments[1].byte_range
    with (out / rendition.file_name).open("r+b") as file:
        file.seek(segment.offset + segment.length // 2)
        byte = file.read(1)
        file.seek(-1, 1)
        file.write(bytes([byte[0] ^ 0xFF]))
    tampered = write_segments_sha256(out, "land", playlists)
    changed = json.loads(tampered.read_text())
    diff = [
        (name, key)
        for name, ranges in written.items()
        for key, digest in ranges.items()
        if changed[name][key] != digest
    ]
    assert diff == [(rendition.file_name, segment.key)]


def test_a_short_file_is_an_error(landscape_hls: Transcoded, tmp_path: Path) -> None:
    rendition = landscape_hls.result.renditions[-1]
    shutil.copy(landscape_hls.out_dir / rendition.playlist_name, tmp_path)
    data = (landscape_hls.out_dir / rendition.file_name).read_bytes()
    (tmp_path / rendition.file_name).write_bytes(data[:-10])
    with pytest.raises(ValueError):
        build_segments_sha256(tmp_path, [rendition.playlist_name])


PLAYLIST = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MAP:URI="a,b.mp4",BYTERANGE="100@0"
#EXTINF:4.000000,
#EXT-X-BYTERANGE:4000@100
a,b.mp4
#EXTINF:3.500000,title
#EXT-X-BYTERANGE:2000
a,b.mp4
#EXTINF:0.100000,
#EXT-X-BYTERANGE:900@6100
a,b.mp4
#EXT-X-ENDLIST
"""


def test_parser_reads_byte_ranges_and_durations() -> None:
    playlist = parse_media_playlist(PLAYLIST)
    assert playlist.init_uri == "a,b.mp4"
    assert playlist.init_range == ByteRange(0, 100)
    assert [s.byte_range for s in playlist.segments] == [
        ByteRange(100, 4000),
        ByteRange(4100, 2000),
        ByteRange(6100, 900),
    ]
    assert [s.duration for s in playlist.segments] == [4.0, 3.5, 0.1]
    assert playlist.duration == pytest.approx(7.6)
    assert playlist.ended and playlist.target_duration == 4
    assert [r.key for r in playlist.ranges("a,b.mp4")] == [
        "0-99",
        "100-4099",
        "4100-6099",
        "6100-6999",
    ]


def test_peak_bandwidth_counts_a_tiny_tail_with_its_neighbour() -> None:
    playlist = parse_media_playlist(PLAYLIST)
    # 4000 B over 4 s = 8 kb/s; 2000 + 900 B over 3.6 s = 6.44 kb/s; never 900 B / 0.1 s.
    assert peak_bandwidth(playlist) == 8000


def test_retarget_rewrites_map_and_segment_uris() -> None:
    text = retarget_media_playlist(PLAYLIST, "x-720-fragmented.mp4")
    playlist = parse_media_playlist(text)
    assert playlist.resources == ("x-720-fragmented.mp4",)
    assert playlist.init_range == ByteRange(0, 100)
    assert 'BYTERANGE="100@0"' in text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "#EXTM3U\nsegment.ts\n",
        "#EXTM3U\n#EXTINF:4,\n#EXT-X-BYTERANGE:10\nsegment.mp4\n",
        '#EXTM3U\n#EXT-X-MAP:BYTERANGE="10@0"\n',
    ],
)
def test_parser_refuses_malformed_playlists(text: str) -> None:
    with pytest.raises(PlaylistError):
        parse_media_playlist(text)
