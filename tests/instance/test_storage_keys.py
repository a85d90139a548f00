"""The storage key layout (instance/storage/keys.py): every key is a valid storage key."""

from __future__ import annotations

import pytest

from instance.storage import keys, validate_key

UUID = "0b6a3c1e-8f2d-4e4a-9c57-1d2e3f4a5b6c"


def test_keys_are_valid_and_folders_hold_their_files() -> None:
    for folder, file in [
        (keys.hls(UUID), keys.hls(UUID, "master.m3u8")),
        (keys.original(UUID), keys.original(UUID, "clip.mp4")),
        (keys.storyboards(UUID), keys.storyboards(UUID, "sprite.jpg")),
        (keys.mirror(UUID), keys.mirror(UUID, "720.mp4")),
    ]:
        assert validate_key(file) == file and file.startswith(folder + "/")
    assert keys.video_folders(UUID) == (keys.hls(UUID), keys.original(UUID), keys.storyboards(UUID))
    singles = (
        keys.thumbnail(UUID),
        keys.preview(UUID),
        keys.torrent("a.torrent"),
        keys.upload_part("u", "x"),
    )
    for key in singles:
        assert validate_key(key) == key


def test_lazy_static_serves_only_its_folders() -> None:
    assert keys.lazy_static(keys.THUMBNAILS, f"{UUID}.jpg") == keys.thumbnail(UUID)
    assert keys.remote_image(keys.PREVIEWS, UUID) == f"previews/remote-{UUID}.jpg"
    with pytest.raises(ValueError):
        keys.lazy_static("hls", "master.m3u8")
