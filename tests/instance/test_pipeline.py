"""The life of a video: upload → probe → one-pass HLS → published, served from local or S3 storage."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from instance.models import Video
from instance.services.files import make_file_token
from instance.services.processing import work_dir
from tests import media
from tests.conftest import Instance
from tests.support import FAILED, PUBLISHED, channel_of, upload, wait_done


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


async def stored_keys(instance: Instance, uuid: str) -> list[str]:
    storage = instance.shoal.storage
    keys = []
    for folder in ("hls", "originals", "storyboards"):
        keys += await storage.list(f"{folder}/{uuid}")
    return keys


async def fetch(url: str, **kwargs: Any) -> tuple[int, bytes, Any]:
    async with aiohttp.ClientSession() as session, session.get(url, **kwargs) as resp:
        return resp.status, await resp.read(), resp.headers


def ffprobe_streams(url: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,width,height", "-of", "json", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)["streams"]


async def test_upload_to_published_hls(instance: Instance, media_dir: Path) -> None:
    alice = await instance.user_client("alice")
    clip = media.landscape_720p30(media_dir)
    ref = await upload(alice, clip, "A published clip")
    video = await wait_done(alice, ref["id"])
    assert video["state"]["id"] == PUBLISHED, video.get("failureReason")
    assert video["duration"] >= 3

    playlist = video["streamingPlaylists"][0]
    resolutions = sorted(f["resolution"]["id"] for f in playlist["files"])
    assert resolutions == [240, 360, 480, 720]
    streams = await asyncio.to_thread(ffprobe_streams, playlist["playlistUrl"])
    assert sorted(s["height"] for s in streams if s["codec_type"] == "video") == [240, 360, 480, 720]

    status, manifest_raw, _ = await fetch(playlist["segmentsSha256Url"])
    assert status == 200
    manifest = json.loads(manifest_raw)
    top = max(playlist["files"], key=lambda f: f["resolution"]["id"])
    ranges = manifest[top["fileUrl"].rsplit("/", 1)[1]]
    first_range = sorted(ranges, key=lambda r: int(r.split("-")[0]))[1]
    start, end = (int(x) for x in first_range.split("-"))
    status, chunk, headers = await fetch(top["fileUrl"], headers={"Range": f"bytes={start}-{end}"})
    assert status == 206 and len(chunk) == end - start + 1
    assert hashlib.sha256(chunk).hexdigest() == ranges[first_range]
    async with aiohttp.ClientSession() as http, http.head(top["fileUrl"]) as response:
        # HEAD answers what GET answers (clients probe a file's size before ranged GETs): the
        # file's headers here, or the same redirect to the object in S3 storage.
        if response.status == 302:
            assert response.headers["Location"].startswith("http")
        else:
            assert response.status == 200 and int(response.headers["Content-Length"]) == top["size"]
        assert await response.read() == b""

    status, jpeg, headers = await fetch(instance.url + video["thumbnailPath"])
    assert status == 200 and jpeg[:2] == b"\xff\xd8"

    keys = await stored_keys(instance, video["uuid"])
    assert not [k for k in keys if k.startswith("originals/")], "the original should be gone"
    hls = sorted(k.rsplit("/", 1)[1] for k in keys if k.startswith("hls/"))
    expected = {playlist["playlistUrl"].rsplit("/", 1)[1], playlist["segmentsSha256Url"].rsplit("/", 1)[1]}
    for file in playlist["files"]:
        expected |= {file["fileUrl"].rsplit("/", 1)[1], file["playlistUrl"].rsplit("/", 1)[1]}
    assert set(hls) == expected
    assert not work_dir(instance.shoal, video["uuid"]).exists()


async def test_events_stream_reports_progress(instance: Instance, media_dir: Path) -> None:
    alice = await instance.user_client("alice")
    ref = await upload(alice, media.portrait(media_dir), "Watched while it runs")
    url = f"{instance.url}/api/v1/videos/{ref['id']}/events"
    headers = {"Authorization": f"Bearer {alice.token}"}
    sse_events: list[dict[str, Any]] = []
    ws_events: list[dict[str, Any]] = []

    async def read_sse() -> None:
        async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
            assert resp.status == 200 and resp.content_type == "text/event-stream"
            async for line in resp.content:
                if line.startswith(b"data: "):
                    sse_events.append(json.loads(line[6:]))

    async def read_ws() -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(url, headers=headers) as ws:
            async for msg in ws:
                ws_events.append(json.loads(msg.data))

    await asyncio.wait_for(asyncio.gather(read_sse(), read_ws()), timeout=180)
    for events in (sse_events, ws_events):
        assert events[-1]["stateName"] == "published", events[-1]
        # States name the step done; the activity says what is under way.
        seen = [(e["stateName"], e["activity"]) for e in events]
        allowed = {("received", "waiting"), ("probed", "transcoding"), ("transcoded", "publishing")}
        assert set(seen[:-1]) <= allowed and seen[-1] == ("published", "published"), seen
        progress = [e["progress"] for e in events]
        assert progress == sorted(progress) and progress[-1] == 100
    assert len(sse_events) >= 3


async def test_private_files_need_a_token(instance: Instance, media_dir: Path) -> None:
    alice = await instance.user_client("alice")
    private = await wait_done(
        alice, (await upload(alice, media.landscape_720p30(media_dir), "Secret", privacy=3))["id"]
    )
    other = await wait_done(
        alice, (await upload(alice, media.audio_only(media_dir), "Other", privacy=3))["id"]
    )
    assert private["state"]["id"] == PUBLISHED and other["state"]["id"] == PUBLISHED
    master = private["streamingPlaylists"][0]["playlistUrl"]
    assert "/hls/private/" in master

    status, _, _ = await fetch(master)
    assert status == 403
    status, body = await alice.post(f"/api/v1/videos/{private['uuid']}/token")
    assert status == 200, body
    token = body["files"]["token"]
    status, text, _ = await fetch(master, params={"videoFileToken": token})
    assert status == 200
    variants = [line for line in text.decode().splitlines() if line and not line.startswith("#")]
    assert variants and all("videoFileToken=" in v for v in variants)
    streams = await asyncio.to_thread(ffprobe_streams, f"{master}?videoFileToken={token}")
    assert any(s["codec_type"] == "video" for s in streams)

    _, foreign = await alice.post(f"/api/v1/videos/{other['uuid']}/token")
    status, _, _ = await fetch(master, params={"videoFileToken": foreign["files"]["token"]})
    assert status == 403
    expired, _ = make_file_token(instance.shoal.secret, private["uuid"], 1, -10)
    status, _, _ = await fetch(master, params={"videoFileToken": expired})
    assert status == 403

    bob = await instance.user_client("bob")
    status, _ = await bob.post(f"/api/v1/videos/{private['uuid']}/token")
    assert status == 404


async def test_audio_only_upload_becomes_a_still_video(instance: Instance, media_dir: Path) -> None:
    alice = await instance.user_client("alice")
    video = await wait_done(alice, (await upload(alice, media.audio_only(media_dir), "A song"))["id"])
    assert video["state"]["id"] == PUBLISHED, video.get("failureReason")
    assert len(video["streamingPlaylists"][0]["files"]) == 1


BAD_INPUTS = {
    "text": media.text_as_mp4,
    "truncated": media.truncated_mp4,
    "png": media.png_image,
    "hls_playlist": media.hls_playlist_passwd,
    "huge_mkv": media.huge_dimensions_mkv,
    "ten_hours": media.ten_hour_silence,
}


async def test_empty_file_is_refused_at_upload(instance: Instance, media_dir: Path) -> None:
    alice = await instance.user_client("alice")
    form = aiohttp.FormData()
    form.add_field("channelId", str(await channel_of(alice)))
    form.add_field("name", "Nothing at all")
    form.add_field("videofile", io.BytesIO(media.empty_file(media_dir).read_bytes()), filename="empty.mp4")
    status, body = await alice.post("/api/v1/videos/upload", data=form)
    assert status == 400 and body["code"] == "empty_file", body
    assert await instance.shoal.storage.list("originals") == []


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
async def test_bad_input_fails_with_a_reason_and_leaves_nothing(
    instance: Instance, media_dir: Path, kind: str
) -> None:
    alice = await instance.user_client("alice")
    path = BAD_INPUTS[kind](media_dir)
    ref = await upload(alice, path, f"Bad input {kind}")
    video = await wait_done(alice, ref["id"], timeout=60)
    assert video["state"]["id"] == FAILED
    assert video["failureReason"] and len(video["failureReason"]) > 10
    assert video["failureCode"] and video["failureCode"].isidentifier(), video["failureCode"]
    assert await stored_keys(instance, ref["uuid"]) == []
    assert await instance.shoal.storage.list("thumbnails") == []
    assert not work_dir(instance.shoal, ref["uuid"]).exists()
    async with instance.shoal.db.read() as session:
        row = await session.get(Video, ref["id"])
    assert row is not None and row.failure_code and row.source_key is None


@pytest.mark.parametrize(
    ("kind", "code"),
    [("resolution_jump", "frame_too_large"), ("restarting_timestamps", "duration_mismatch")],
)
async def test_limits_hold_for_what_is_decoded_not_only_the_header(
    make_instance, media_dir: Path, kind: str, code: str
) -> None:
    """A file whose frames grow past the limits after the part a probe reads, or that holds more
    than the duration its timestamps give, fails processing with a reason and leaves nothing."""
    instance = await make_instance(
        max_video_width=1920, max_video_height=1080, max_video_pixels=1920 * 1080
    )
    alice = await instance.user_client("alice")
    make = {
        "resolution_jump": media.resolution_jump_ts,
        "restarting_timestamps": media.restarting_timestamps_ts,
    }
    path = make[kind](media_dir)
    ref = await upload(alice, path, f"Hostile {kind}")
    video = await wait_done(alice, ref["id"], timeout=120)
    assert video["state"]["id"] == FAILED, video["state"]
    assert video["failureCode"] == code and video["failureReason"], video
    assert await stored_keys(instance, ref["uuid"]) == []
