"""A process killed with SIGKILL mid-transcode loses nothing: after a restart the video is
published once, with no duplicate renditions and no orphan files."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from instance.models import Rendition, Video
from tests import media
from tests.conftest import ApiClient, Instance, free_port

SHOAL = str(Path(sys.executable).parent / "shoal")


@pytest.fixture(scope="session")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long enough (12 s of 720p) that a transcode is surely caught in the middle."""
    return media.make_clip(tmp_path_factory.mktemp("long"), "long.mp4", 1280, 720, 30, 12.0)


async def upload(client: ApiClient, path: Path) -> dict[str, Any]:
    status, me = await client.get("/api/v1/users/me")
    assert status == 200, me
    form = aiohttp.FormData()
    form.add_field("channelId", str(me["videoChannels"][0]["id"]))
    form.add_field("name", "Survives a crash")
    form.add_field("videofile", io.BytesIO(path.read_bytes()), filename=path.name)
    status, body = await client.post("/api/v1/videos/upload", data=form)
    assert status == 200, body
    return body["video"]


async def wait_for(client: ApiClient, video_id: int, predicate: Any, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, body = await client.get(f"/api/v1/videos/{video_id}")
        if status == 200 and predicate(body):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(
        f"condition not met within {seconds} s; last: {body.get('state')} {body.get('progress')}"
    )


def mid_transcode(body: dict[str, Any]) -> bool:
    return body["state"]["id"] == 2 and body.get("progress", 0) >= 10


def published(body: dict[str, Any]) -> bool:
    return body["state"]["id"] in (1, 7)


def start_process(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [SHOAL, *argv], env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


async def wait_http(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


async def check_clean(storage: Any, data_dir: Path, body: dict[str, Any]) -> None:
    """Exactly the published files are in storage; no work dir, no original, no upload left."""
    assert body["state"]["id"] == 1, body.get("failureReason")
    playlist = body["streamingPlaylists"][0]
    names = {playlist["playlistUrl"].rsplit("/", 1)[1], playlist["segmentsSha256Url"].rsplit("/", 1)[1]}
    for file in playlist["files"]:
        names |= {file["fileUrl"].rsplit("/", 1)[1], file["playlistUrl"].rsplit("/", 1)[1]}
    stored = {key.rsplit("/", 1)[1] for key in await storage.list(f"hls/{body['uuid']}")}
    assert stored == names
    assert await storage.list(f"originals/{body['uuid']}") == []
    assert not (data_dir / "work" / body["uuid"]).exists()
    assert [p for p in (data_dir / "uploads").rglob("*") if p.is_file()] == []


@pytest.mark.embedded_only
async def test_embedded_serve_killed_mid_transcode(tmp_path: Path, long_clip: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")},
        "SHOAL_DATA_DIR": str(tmp_path / "data"),
        "SHOAL_LISTEN": f"127.0.0.1:{port}",
        "SHOAL_PUBLIC_URL": url,
        "SHOAL_ADMIN_USER": "alice",
        "SHOAL_ADMIN_PASSWORD": "password123",
        "SHOAL_JOBS_SWEEP_INTERVAL": "0.5",
    }
    log = tmp_path / "serve.log"
    proc = start_process(["serve"], env, log)
    try:
        await wait_http(url + "/api/v1/config")
        async with aiohttp.ClientSession() as session:
            client = ApiClient(session, url)
            client = client.as_user(await client.login("alice", "password123"))
            ref = await upload(client, long_clip)
            await wait_for(client, ref["id"], mid_transcode, 120)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            proc = start_process(["serve"], env, log)
            await wait_http(url + "/api/v1/config")
            client = ApiClient(session, url)
            client = client.as_user(await client.login("alice", "password123"))
            body = await wait_for(client, ref["id"], published, 180)
    finally:
        proc.terminate()
        # A stop that lands while the torrents are being made can wait out SQLite's 30 s busy
        # timeout before it gives the job back (logged); the row is retaken after its lease.
        proc.wait(timeout=60)
    from instance.storage import storage_from_url

    storage = storage_from_url(f"file://{tmp_path / 'data' / 'storage'}")
    await check_clean(storage, tmp_path / "data", body)
    assert len(body["streamingPlaylists"][0]["files"]) == 4, log.read_text()[-3000:]


@pytest.mark.scaled_only
async def test_worker_killed_mid_transcode_another_finishes(
    make_instance, tmp_path: Path, long_clip: Path
) -> None:
    instance: Instance = await make_instance(worker=False, jobs_sweep_interval=0.5)
    settings = instance.settings
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")},
        "SHOAL_DATA_DIR": str(tmp_path / "worker"),
        "SHOAL_DATABASE_URL": settings.effective_database_url,
        "SHOAL_REDIS_URL": settings.redis_url or "",
        "SHOAL_REDIS_PREFIX": settings.redis_prefix,
        "SHOAL_STORAGE_URL": settings.effective_storage_url,
        "SHOAL_S3_ENDPOINT_URL": settings.s3_endpoint_url or "",
        "SHOAL_S3_ACCESS_KEY": settings.s3_access_key.get_secret_value() if settings.s3_access_key else "",
        "SHOAL_S3_SECRET_KEY": settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else "",
        "SHOAL_PUBLIC_URL": settings.public_url,
        "SHOAL_SECRET_KEY": settings.secret_key.get_secret_value() if settings.secret_key else "",
        "SHOAL_JOBS_SWEEP_INTERVAL": "0.5",
    }
    log = tmp_path / "worker.log"
    first = start_process(["worker"], env, log)
    second = None
    try:
        alice = await instance.user_client("alice")
        ref = await upload(alice, long_clip)
        await wait_for(alice, ref["id"], mid_transcode, 120)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        second = start_process(["worker"], env, log)
        body = await wait_for(alice, ref["id"], published, 180)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=20)
    await check_clean(instance.shoal.storage, tmp_path / "worker", body)
    async with instance.shoal.db.read() as session:
        from sqlalchemy import func, select

        count = await session.scalar(
            select(func.count()).select_from(Rendition).where(Rendition.video_id == ref["id"])
        )
        video = await session.get(Video, ref["id"])
    assert count == 4 and video is not None and video.source_key is None, log.read_text()[-3000:]
