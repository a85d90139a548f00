"""The scaled topology without Docker, on loopback: PostgreSQL, Redis, moto_server as S3, two
`shoal serve` processes behind the real nginx of deploy/nginx/shoal.conf, two `shoal worker`s.

Uploads go through nginx; whichever worker takes the transcode is killed with SIGKILL in the
middle and the other one finishes it; the video is then watched through nginx (the master
playlist with ffprobe, segments from S3 through nginx's cache) and the events stream is read
through nginx. Finally one web process stops and nginx keeps answering through the other.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from sqlalchemy import select

from instance.models import WorkItem
from tests import media
from tests.conftest import Instance
from tests.deploy import nginxconf
from tests.instance.test_restart import mid_transcode, published, wait_video
from tests.support import ApiClient, backend_env, free_port, start_process, stop_process, upload, wait_http


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long enough (12 s of 720p) that the transcode is surely caught in the middle."""
    return media.make_clip(tmp_path_factory.mktemp("topology"), "long.mp4", 1280, 720, 30, 12.0)


def shared_env(settings: Any, public_url: str) -> dict[str, str]:
    """The settings every process of the deployment shares (what deploy/.env holds)."""
    return backend_env(
        settings,
        public_url=public_url,
        s3_public_url=f"{public_url}/s3",
        workers="external",
        trust_proxy="true",
        jobs_sweep_interval=0.5,
        jobs_concurrency=1,
        federation_allow_hosts="127.0.0.1",
    )


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None:
        stop_process(proc)


async def running_job_owner(instance: Instance, video_uuid: str) -> str | None:
    """``host:pid:random`` of the worker holding the video's process_video row."""
    async with instance.shoal.db.read() as session:
        rows = (
            await session.scalars(
                select(WorkItem).where(WorkItem.kind == "process_video", WorkItem.state == "running")
            )
        ).all()
    for row in rows:
        if video_uuid in (row.subject or "") or video_uuid in json.dumps(row.payload):
            return row.locked_by
    return rows[0].locked_by if len(rows) == 1 else None


@pytest.mark.scaled_only
async def test_scaled_topology_behind_nginx(make_instance, tmp_path: Path, long_clip: Path) -> None:
    base: Instance = await make_instance(worker=False, jobs_sweep_interval=0.5)
    settings = base.settings
    bucket = urlsplit(settings.effective_storage_url).netloc
    s3 = urlsplit(settings.s3_endpoint_url or "").netloc
    web_ports = [free_port(), free_port()]
    site = nginxconf.prepare(
        tmp_path / "nginx",
        web=[f"127.0.0.1:{port}" for port in web_ports],
        storage_dir=tmp_path / "no-local-storage",
        s3_endpoint=s3,
        bucket=bucket,
    )
    env = shared_env(settings, site.https_url)
    log = tmp_path / "processes.log"
    webs = [
        start_process(
            ["serve"],
            {**env, "SHOAL_LISTEN": f"127.0.0.1:{port}", "SHOAL_DATA_DIR": str(tmp_path / f"web{i}")},
            log,
        )
        for i, port in enumerate(web_ports)
    ]
    workers: dict[int, subprocess.Popen[bytes]] = {}
    for i in range(2):
        proc = start_process(["worker"], {**env, "SHOAL_DATA_DIR": str(tmp_path / f"worker{i}")}, log)
        workers[proc.pid] = proc
    short = media.make_clip(tmp_path, "short.mp4", 640, 360, 30, 2.0)
    try:
        for port in web_ports:
            await wait_http(f"http://127.0.0.1:{port}/api/v1/config", 60)
        with nginxconf.running(site):
            connector = aiohttp.TCPConnector(ssl=False)
            async with aiohttp.ClientSession(connector=connector) as session:
                front = ApiClient(session, site.https_url)
                await base.create_user("alice")
                alice = front.as_user(await front.login("alice", "password123"))

                # 1. a long upload through nginx; kill -9 whichever worker transcodes it
                ref = await upload(alice, long_clip, "Survives a crash")
                await wait_video(alice, ref["id"], mid_transcode, 180)
                owner = None
                for _ in range(50):
                    owner = await running_job_owner(base, ref["uuid"])
                    if owner:
                        break
                    await asyncio.sleep(0.1)
                assert owner, "no worker holds the process_video row"
                pid = int(owner.split(":")[1])
                assert pid in workers, (owner, list(workers))
                os.kill(pid, signal.SIGKILL)
                workers.pop(pid).wait(timeout=10)
                survivor = next(iter(workers.values()))
                body = await wait_video(alice, ref["id"], published, 240)
                assert body["state"]["id"] == 1, body.get("failureReason")
                assert survivor.poll() is None
                done: list[WorkItem] = []
                for _ in range(150):  # the row is marked succeeded just after the video is published
                    async with base.shoal.db.read() as db:
                        done = list(
                            await db.scalars(
                                select(WorkItem).where(
                                    WorkItem.kind == "process_video", WorkItem.state == "succeeded"
                                )
                            )
                        )
                    if done:
                        break
                    await asyncio.sleep(0.2)
                assert len(done) == 1 and done[0].attempts >= 2, [(r.attempts, r.locked_by) for r in done]
                assert done[0].locked_by is None or done[0].locked_by.split(":")[1] != str(pid)

                # 2. a second upload through nginx, followed live on the events stream (SSE) via nginx
                second = await upload(alice, short, "Survives a crash")
                events: list[dict[str, Any]] = []
                url = f"{site.https_url}/api/v1/videos/{second['id']}/events"
                headers = {"Authorization": f"Bearer {alice.token}"}
                async with session.get(
                    url, headers=headers, timeout=aiohttp.ClientTimeout(total=240)
                ) as resp:
                    assert resp.status == 200 and resp.content_type == "text/event-stream"
                    async for line in resp.content:
                        if line.startswith(b"data: "):
                            events.append(json.loads(line[6:]))
                assert events and events[-1]["stateName"] == "published", events
                ws_events = []
                async with session.ws_connect(url, headers=headers) as ws:
                    async for msg in ws:
                        ws_events.append(json.loads(msg.data))
                assert ws_events[-1]["stateName"] == "published"

                # 3. watch through nginx: public files are linked at the S3 public URL, nginx's /s3/ cache
                master = body["streamingPlaylists"][0]["playlistUrl"]
                assert master.startswith(f"{site.https_url}/s3/"), master
                probe = await asyncio.to_thread(
                    subprocess.run,
                    [
                        "ffprobe",
                        "-v",
                        "error",
                        "-show_entries",
                        "stream=codec_type,height",
                        "-of",
                        "json",
                        master,
                    ],
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                streams = json.loads(probe.stdout or "{}").get("streams", [])
                assert any(s["codec_type"] == "video" for s in streams), probe.stderr
                file_url = body["streamingPlaylists"][0]["files"][0]["fileUrl"]
                statuses = []
                for _ in range(2):
                    async with session.get(file_url, headers={"Range": "bytes=0-999"}) as resp:
                        assert resp.status == 206, resp.status
                        assert len(await resp.read()) == 1000
                        statuses.append(resp.headers.get("X-Cache-Status"))
                assert statuses[-1] == "HIT", statuses

                # 4. one web process goes away; nginx answers through the other
                stop(webs[0])
                for _ in range(6):
                    status, page = await front.get("/api/v1/videos?count=5")
                    assert status == 200, page
                    assert page["total"] >= 2
    finally:
        for proc in [*webs, *workers.values()]:
            stop(proc)
