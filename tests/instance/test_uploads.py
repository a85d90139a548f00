"""Uploads: multipart, resumable (PeerTube's protocol) and direct to S3 — bytes arrive whole."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
from pathlib import Path

import aiohttp
import pytest

from instance.models import UploadSession
from instance.services.uploads import expire_uploads, resumable_path
from tests.conftest import SCALED, ApiClient, Instance

RESUMABLE = "/api/v1/videos/upload-resumable"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 2 s clip with sound, a few hundred kilobytes."""
    path = tmp_path_factory.mktemp("clips") / "clip.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440",
            "-t",
            "2",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            "-shortest",
            str(path),
        ],
        check=True,
    )
    return path


async def channel_id(client: ApiClient) -> int:
    status, me = await client.get("/api/v1/users/me")
    assert status == 200, me
    return me["videoChannels"][0]["id"]


async def original_bytes(instance: Instance, video_id: int) -> bytes:
    from instance.models import Video

    async with instance.shoal.db.read() as session:
        video = await session.get(Video, video_id)
    assert video is not None and video.source_key, "the original is not in storage"
    info = await instance.shoal.storage.stat(video.source_key)
    assert info is not None
    return await instance.shoal.storage.open_range(video.source_key, 0, info.size - 1)


async def start(client: ApiClient, channel: int, size: int, name: str = "Resumed clip") -> str:
    status, body = await client.post(
        RESUMABLE,
        json={"name": name, "channelId": channel, "filename": "clip.mp4"},
        headers={"X-Upload-Content-Length": str(size), "X-Upload-Content-Type": "video/mp4"},
    )
    assert status == 201, body
    return body["uploadId"]


async def put_chunk(
    client: ApiClient, upload_id: str, data: bytes, start: int, total: int
) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {client.token}", "Content-Type": "application/octet-stream"}
    if data:
        headers["Content-Range"] = f"bytes {start}-{start + len(data) - 1}/{total}"
    else:
        headers["Content-Range"] = f"bytes */{total}"
    async with client.session.put(
        f"{client.base_url}{RESUMABLE}?upload_id={upload_id}", data=data, headers=headers
    ) as resp:
        body = await resp.json(content_type=None) if resp.status in (200, 400, 404, 409, 413) else None
        return resp.status, {"range": resp.headers.get("Range"), "body": body}


async def test_multipart_upload_stores_the_original(make_instance, clip: Path) -> None:
    instance = await make_instance(keep_originals=True)
    alice = await instance.user_client("alice")
    form = aiohttp.FormData()
    form.add_field("channelId", str(await channel_id(alice)))
    form.add_field("name", "My first clip")
    form.add_field("tags[]", "demo")
    form.add_field("tags[]", "test")
    form.add_field("videofile", clip.read_bytes(), filename="clip.mp4", content_type="video/mp4")
    status, body = await alice.post("/api/v1/videos/upload", data=form)
    assert status == 200, body
    video = body["video"]
    assert set(video) == {"id", "uuid", "shortUUID"}
    assert await original_bytes(instance, video["id"]) == clip.read_bytes()
    status, details = await alice.get(f"/api/v1/videos/{video['uuid']}")
    assert status == 200
    assert details["name"] == "My first clip" and sorted(details["tags"]) == ["demo", "test"]
    assert 0 <= details["progress"] <= 100


async def test_multipart_refuses_bad_fields_and_keeps_nothing(instance: Instance, clip: Path) -> None:
    alice = await instance.user_client("alice")
    form = aiohttp.FormData()
    form.add_field("channelId", str(await channel_id(alice)))
    form.add_field("name", "x")
    form.add_field("videofile", clip.read_bytes(), filename="clip.mp4")
    status, body = await alice.post("/api/v1/videos/upload", data=form)
    assert status == 400 and body["field"] == "name"
    assert list((instance.settings.data_dir / "uploads").glob("*.part")) == []
    assert await instance.shoal.storage.list("originals") == []


async def test_multipart_to_someone_elses_channel_is_forbidden(instance: Instance, clip: Path) -> None:
    alice = await instance.user_client("alice")
    bob = await instance.user_client("bob")
    form = aiohttp.FormData()
    form.add_field("channelId", str(await channel_id(alice)))
    form.add_field("name", "Not mine")
    form.add_field("videofile", clip.read_bytes(), filename="clip.mp4")
    status, body = await bob.post("/api/v1/videos/upload", data=form)
    assert status == 403 and body["code"] == "not_owner"


async def test_resumable_upload_resumes_after_an_interruption(make_instance, clip: Path) -> None:
    instance = await make_instance(keep_originals=True)
    alice = await instance.user_client("alice")
    data = clip.read_bytes()
    total = len(data)
    upload_id = await start(alice, await channel_id(alice), total)

    status, info = await put_chunk(alice, upload_id, data[:50_000], 0, total)
    assert status == 308 and info["range"] == "bytes=0-49999"

    # The connection drops in the middle of the next chunk: only part of it arrives.
    headers = {
        "Authorization": f"Bearer {alice.token}",
        "Content-Range": f"bytes 50000-{total - 1}/{total}",
        "Content-Length": str(total - 50_000),
    }
    reader, writer = await asyncio.open_connection("127.0.0.1", instance.settings.listen_port)
    head = f"PUT {RESUMABLE}?upload_id={upload_id} HTTP/1.1\r\nHost: x\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode() + data[50_000:80_000])
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.close()
    await asyncio.sleep(0.3)

    status, info = await put_chunk(alice, upload_id, b"", 0, total)
    assert status == 308
    offset = int(info["range"].split("-")[1]) + 1
    assert 50_000 <= offset <= 80_000

    status, info = await put_chunk(alice, upload_id, data[offset + 10 :], offset + 10, total)
    assert status == 409 and info["body"]["code"] == "range_mismatch"
    assert info["range"] == f"bytes=0-{offset - 1}"

    status, info = await put_chunk(alice, upload_id, data[offset:], offset, total)
    assert status == 200, info
    video = info["body"]["video"]
    got = await original_bytes(instance, video["id"])
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    assert not resumable_path(instance.shoal, upload_id).exists()
    # Asking, or sending the last chunk again (a retry), answers the same video.
    status, again = await put_chunk(alice, upload_id, b"", 0, total)
    assert status == 200 and again["body"]["video"] == video
    status, again = await put_chunk(alice, upload_id, data[offset:], offset, total)
    assert status == 200 and again["body"]["video"] == video


async def test_resumable_start_twice_answers_the_same_upload(instance: Instance) -> None:
    alice = await instance.user_client("alice")
    channel = await channel_id(alice)
    first = await start(alice, channel, 1000)
    await put_chunk(alice, first, b"x" * 100, 0, 1000)
    status, body = await alice.post(
        RESUMABLE,
        json={"name": "Resumed clip", "channelId": channel, "filename": "clip.mp4"},
        headers={"X-Upload-Content-Length": "1000", "X-Upload-Content-Type": "video/mp4"},
    )
    assert status == 200 and body["uploadId"] == first


async def test_resumable_cancel_and_expiry_remove_the_bytes(make_instance) -> None:
    instance = await make_instance(upload_session_ttl=1)
    alice = await instance.user_client("alice")
    channel = await channel_id(alice)
    cancelled = await start(alice, channel, 1000, "Cancelled one")
    await put_chunk(alice, cancelled, b"x" * 100, 0, 1000)
    status, _ = await alice.delete(f"{RESUMABLE}?upload_id={cancelled}")
    assert status == 204
    assert not resumable_path(instance.shoal, cancelled).exists()

    idle = await start(alice, channel, 1000, "Idle one")
    await put_chunk(alice, idle, b"y" * 100, 0, 1000)
    await asyncio.sleep(1.2)
    assert await expire_uploads(instance.shoal) >= 1
    assert not resumable_path(instance.shoal, idle).exists()
    async with instance.shoal.db.read() as session:
        assert await session.get(UploadSession, idle) is None


async def test_size_limits_and_quota(make_instance) -> None:
    instance = await make_instance(max_upload_size=5000, user_video_quota=3000)
    alice = await instance.user_client("alice")
    channel = await channel_id(alice)
    status, body = await alice.post(
        RESUMABLE,
        json={"name": "Too big", "channelId": channel, "filename": "a.mp4"},
        headers={"X-Upload-Content-Length": "6000"},
    )
    assert status == 413 and body["code"] == "max_file_size_reached"
    status, body = await alice.post(
        RESUMABLE,
        json={"name": "Over quota", "channelId": channel, "filename": "a.mp4"},
        headers={"X-Upload-Content-Length": "4000"},
    )
    assert status == 413 and body["code"] == "quota_reached"
    upload_id = await start(alice, channel, 1000)
    status, info = await put_chunk(alice, upload_id, b"z" * 1500, 0, 1000)
    assert status == 400 and info["body"]["code"] in ("invalid_content_range", "max_file_size_reached")


async def test_direct_upload_to_s3(instance: Instance, clip: Path) -> None:
    alice = await instance.user_client("alice")
    channel = await channel_id(alice)
    data = clip.read_bytes()
    status, body = await alice.post(
        "/api/v1/videos/upload-direct",
        json={
            "name": "Straight to the bucket",
            "channelId": channel,
            "filename": "clip.mp4",
            "size": len(data),
        },
    )
    if not SCALED:
        assert status == 400 and body["code"] == "direct_upload_unavailable"
        return
    assert status == 201, body
    part_size = body["partSize"]
    etags = []
    async with aiohttp.ClientSession() as raw:
        for part in body["parts"]:
            start_at = (part["partNumber"] - 1) * part_size
            async with raw.put(part["url"], data=data[start_at : start_at + part_size]) as resp:
                assert resp.status == 200
                etags.append({"partNumber": part["partNumber"], "etag": resp.headers["ETag"]})
    status, done = await alice.post(
        f"/api/v1/videos/upload-direct/{body['uploadId']}/complete", json={"parts": etags}
    )
    assert status == 200, done
    assert await original_bytes(instance, done["video"]["id"]) == data


async def test_multipart_fields_are_bounded_in_number_and_size(instance: Instance, clip: Path) -> None:
    """Fields before the file are held in memory: thousands of them, or a few large ones, are
    refused at once, and nothing is kept."""
    alice = await instance.user_client("alice")
    channel = str(await channel_id(alice))
    many = aiohttp.FormData()
    many.add_field("channelId", channel)
    many.add_field("name", "Many tags")
    for number in range(5000):
        many.add_field("tags[]", f"tag{number}")
    many.add_field("videofile", clip.read_bytes(), filename="clip.mp4")
    status, body = await alice.post("/api/v1/videos/upload", data=many)
    assert status == 400 and body["code"] == "too_many_fields", body

    large = aiohttp.FormData()
    large.add_field("channelId", channel)
    large.add_field("name", "Large fields")
    for number in range(10):
        large.add_field(f"description{number}", "d" * 60_000)
    large.add_field("videofile", clip.read_bytes(), filename="clip.mp4")
    status, body = await alice.post("/api/v1/videos/upload", data=large)
    assert status == 413 and body["code"] == "fields_too_large", body
    assert list((instance.settings.data_dir / "uploads").glob("*.part")) == []
    assert await instance.shoal.storage.list("originals") == []


async def test_scratch_folders_left_by_a_crash_are_swept(make_instance) -> None:
    """Thumbnail staging, processing folders and working folders a crashed process left behind
    go with the expired uploads; fresh ones, and the folder of a video still processing, stay."""
    import os
    import time
    import uuid

    from instance.models import VideoState
    from instance.services.uploads import scratch_dir, uploads_dir
    from tests.instance.test_videos import new_video

    instance = await make_instance(upload_session_ttl=60)
    await instance.create_user("alice")
    busy = await new_video(instance, "alice", "Still processing", state=VideoState.PROBED)
    data = instance.settings.data_dir
    old = time.time() - 3600
    left = [
        uploads_dir(instance.shoal) / "thumbnail-0123456789abcdef",
        data / "work" / str(uuid.uuid4()),
        scratch_dir(instance.shoal) / "tmpleftover",
    ]
    kept = [uploads_dir(instance.shoal) / "thumbnail-fedcba9876543210", data / "work" / busy.uuid]
    for folder in left + kept:
        folder.mkdir(parents=True)
        (folder / "upload").write_bytes(b"x" * 100)
    for folder in left + [kept[1]]:
        os.utime(folder, (old, old))
    assert await expire_uploads(instance.shoal) >= len(left)
    assert [folder for folder in left if folder.exists()] == []
    assert all(folder.exists() for folder in kept)


async def test_resumable_chunks_through_two_web_processes(make_instance, clip: Path) -> None:
    """Two web processes on one database and data folder (behind a load balancer): the same
    chunk sent to both is written once, at its offset; the file arrives whole; the retried last
    chunk answers the video; an empty file is refused."""
    from instance.app import create_app
    from tests.conftest import ShoalTestServer, free_port

    instance = await make_instance(keep_originals=True, worker=False)
    port = free_port()
    second = ShoalTestServer(create_app(instance.settings), host="127.0.0.1", port=port)
    await second.start_server()
    try:
        alice = await instance.user_client("alice")
        other = ApiClient(alice.session, f"http://127.0.0.1:{port}", alice.token)
        data = clip.read_bytes()
        total = len(data)
        upload_id = await start(alice, await channel_id(alice), total)

        async def slow(body: bytes):
            await asyncio.sleep(0.3)  # both requests are in before a byte of either arrives
            for at in range(0, len(body), 16_384):
                yield body[at : at + 16_384]
                await asyncio.sleep(0.01)

        async def send(client: ApiClient, begin: int, end: int) -> int:
            headers = {
                "Authorization": f"Bearer {client.token}",
                "Content-Range": f"bytes {begin}-{end - 1}/{total}",
                "Content-Type": "application/octet-stream",
            }
            url = f"{client.base_url}{RESUMABLE}?upload_id={upload_id}"
            body = slow(data[begin:end])
            async with client.session.put(url, data=body, headers=headers, allow_redirects=False) as resp:
                await resp.read()
                return resp.status

        half = total // 2
        statuses = sorted(await asyncio.gather(send(alice, 0, half), send(other, 0, half)))
        assert statuses[0] == 308 and statuses[1] in (409, 429), statuses
        status, info = await put_chunk(other, upload_id, b"", 0, total)
        assert status == 308 and info["range"] == f"bytes=0-{half - 1}"

        statuses = sorted(await asyncio.gather(send(other, half, total), send(alice, half, total)))
        assert statuses[0] == 200 and statuses[1] in (200, 409, 429), statuses
        status, info = await put_chunk(alice, upload_id, data[half:], half, total)
        assert status == 200, info
        video = info["body"]["video"]
        got = await original_bytes(instance, video["id"])
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
        async with instance.shoal.db.read() as session:
            from sqlalchemy import func, select

            from instance.models import Video

            assert await session.scalar(select(func.count(Video.id))) == 1

        status, body = await alice.post(
            RESUMABLE,
            json={"name": "Nothing at all", "channelId": await channel_id(alice), "filename": "empty.mp4"},
            headers={"X-Upload-Content-Length": "0", "X-Upload-Content-Type": "video/mp4"},
        )
        assert status == 400 and body["code"] == "empty_file", body
    finally:
        await second.close()
