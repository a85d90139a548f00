"""A process killed with SIGKILL mid-transcode loses nothing: after a restart the video is
published once, with no duplicate renditions and no orphan files."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from instance.models import Rendition, Video
from tests import media
from tests.conftest import Instance
from tests.support import ApiClient, backend_env, free_port, serve_env, start_process, upload, wait_http

CRASHED = "Survives a crash"


@pytest.fixture(scope="session")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long enough (12 s of 720p) that a transcode is surely caught in the middle."""
    return media.make_clip(tmp_path_factory.mktemp("long"), "long.mp4", 1280, 720, 30, 12.0)


async def wait_video(client: ApiClient, video_id: int, predicate: Any, seconds: float) -> dict[str, Any]:
    """Poll the video until ``predicate`` holds for its details; returns them."""
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
    env = serve_env(
        tmp_path / "data", port, admin_user="alice", admin_password="password123", jobs_sweep_interval=0.5
    )
    log = tmp_path / "serve.log"
    proc = start_process(["serve"], env, log)
    try:
        await wait_http(url + "/api/v1/config")
        async with aiohttp.ClientSession() as session:
            client = await ApiClient(session, url).logged_in("alice", "password123")
            ref = await upload(client, long_clip, CRASHED)
            await wait_video(client, ref["id"], mid_transcode, 120)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            proc = start_process(["serve"], env, log)
            await wait_http(url + "/api/v1/config")
            client = await ApiClient(session, url).logged_in("alice", "password123")
            body = await wait_video(client, ref["id"], published, 180)
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
    env = backend_env(settings, tmp_path / "worker", jobs_sweep_interval=0.5)
    log = tmp_path / "worker.log"
    first = start_process(["worker"], env, log)
    second = None
    try:
        alice = await instance.user_client("alice")
        ref = await upload(alice, long_clip, CRASHED)
        await wait_video(alice, ref["id"], mid_transcode, 120)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        second = start_process(["worker"], env, log)
        body = await wait_video(alice, ref["id"], published, 180)
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
