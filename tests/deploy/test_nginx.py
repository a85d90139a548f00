"""deploy/nginx/shoal.conf with the real Debian nginx: `nginx -t`, then in front of a real instance."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests import media
from tests.conftest import ApiClient, free_port
from tests.deploy import nginxconf
from tests.support import upload, wait_done


def test_nginx_accepts_the_deploy_config(tmp_path: Path) -> None:
    site = nginxconf.prepare(
        tmp_path / "nginx", web=["127.0.0.1:9001", "127.0.0.1:9002"], storage_dir=tmp_path
    )
    result = nginxconf.check_config(site)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_nginx_rejects_a_broken_config(tmp_path: Path) -> None:
    """The check can fail: the same config with a typo is refused."""
    site = nginxconf.prepare(tmp_path / "nginx", web=["127.0.0.1:9001"], storage_dir=tmp_path)
    conf = site.directory / "shoal.conf"
    conf.write_text(conf.read_text().replace("proxy_cache_lock on;", "proxy_cache_lock maybe;", 1))
    result = nginxconf.check_config(site)
    assert result.returncode != 0 and "proxy_cache_lock" in result.stderr


def test_deploy_config_covers_the_required_features() -> None:
    text = nginxconf.DEPLOY_CONF.read_text()
    for needle in (
        "ssl http2",
        "client_max_body_size 8g",
        "proxy_request_buffering off",
        "$http_upgrade",
        "/tracker/socket",
        "/events$",
        "internal;",
        "proxy_cache shoal_s3",
        "limit_req zone=shoal_api",
        "try_files /public-hls/$hls_uuid/$hls_file @shoal_files;",
    ):
        assert needle in text, needle
    # Public files no longer wait on an access check per video.
    assert "auth_request" not in text and "/internal/file-access/" not in text


async def curl(*args: str) -> subprocess.CompletedProcess[str]:
    """curl in a thread: the instance under test runs on this event loop."""
    return await asyncio.to_thread(
        subprocess.run, ["curl", "-sk", *args], capture_output=True, text=True, timeout=30
    )


async def behind_nginx(make_instance, tmp_path: Path):
    """An instance behind the deploy config (templated for this test): nginx sends its local
    storage files (public ones through Shoal's public links, the others with ``X-Accel-Redirect``
    after Shoal's checks); returns (site, instance)."""
    port = free_port()
    site = nginxconf.prepare(
        tmp_path / "nginx", web=[f"127.0.0.1:{port}"], storage_dir=tmp_path / "web" / "storage"
    )
    instance = await make_instance(
        "web",
        port=port,
        public_url=site.https_url,
        trust_proxy=True,
        accel_redirect_prefix="/internal-storage/",
    )
    return site, instance


@pytest.mark.embedded_only
async def test_instance_behind_nginx_files_sent_by_nginx(make_instance, tmp_path: Path) -> None:
    """Upload through nginx, watch the events over a WebSocket through nginx, then read the
    private video's files through nginx: Shoal checks the token, nginx sends the bytes."""
    site, instance = await behind_nginx(make_instance, tmp_path)
    clip = media.make_clip(tmp_path, "short.mp4", 640, 360, 30, 2.0)
    with nginxconf.running(site):
        assert "HTTP/2 200" in (await curl("-D-", "-o/dev/null", site.https_url + "/api/v1/config")).stdout
        assert site.https_url in (await curl("-D-", "-o/dev/null", site.http_url + "/about")).stdout
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as session:
            anonymous = ApiClient(session, site.https_url)
            await instance.create_user("alice")
            alice = anonymous.as_user(await anonymous.login("alice", "password123"))
            ref = await upload(alice, clip, "Behind nginx", privacy=3)
            events: list[dict[str, Any]] = []
            url = f"{site.https_url}/api/v1/videos/{ref['id']}/events"
            headers = {"Authorization": f"Bearer {alice.token}"}
            async with session.ws_connect(url, headers=headers) as ws:
                async for msg in ws:
                    events.append(json.loads(msg.data))
            assert events and events[-1]["stateName"] == "published", events
            video = await wait_done(alice, ref["id"])
            master = video["streamingPlaylists"][0]["playlistUrl"]
            assert master.startswith(site.https_url + "/static/streaming-playlists/hls/private/")
            public_links = tmp_path / "web" / "storage" / "public-hls"
            assert not public_links.exists() or not os.listdir(public_links), "a private video was linked"

            async with session.get(master) as resp:
                assert resp.status == 403
            status, body = await alice.post(f"/api/v1/videos/{video['uuid']}/token")
            assert status == 200, body
            token = body["files"]["token"]
            async with session.get(master, params={"videoFileToken": token}) as resp:
                assert resp.status == 200
                assert "videoFileToken=" in await resp.text()

            file_url = video["streamingPlaylists"][0]["files"][0]["fileUrl"]
            name = file_url.rsplit("/", 1)[1]
            stored = (tmp_path / "web" / "storage" / "hls" / video["uuid"] / name).read_bytes()
            ranged = {"Range": "bytes=100-1099"}
            async with session.get(file_url, params={"videoFileToken": token}, headers=ranged) as resp:
                assert resp.status == 206, await resp.text()
                assert resp.headers["Server"].startswith("nginx")
                assert resp.headers["Content-Range"] == f"bytes 100-1099/{len(stored)}"
                assert resp.headers["Access-Control-Allow-Origin"] == "*"
                assert await resp.read() == stored[100:1100]
            async with session.get(file_url) as resp:
                assert resp.status == 403
            internal = f"{site.https_url}/internal-storage/hls/{video['uuid']}/{name}"
            async with session.get(internal) as resp:
                assert resp.status == 404
        streams = await asyncio.to_thread(
            subprocess.run,
            [
                "ffprobe",
                "-v",
                "error",
                "-show_entries",
                "stream=codec_type",
                "-of",
                "json",
                f"{master}?videoFileToken={token}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert '"video"' in streams.stdout, streams.stderr


def blocking_get(url: str, *headers: str) -> tuple[int, dict[str, str], bytes]:
    """A GET that blocks this event loop, so the instance under test (on the same loop) cannot
    answer: whatever comes back was sent by nginx alone. (status, lower-cased headers, body);
    status 0 when nothing came back in time."""
    args = ["curl", "-sk", "-D-", "--max-time", "4", *(a for h in headers for a in ("-H", h)), url]
    result = subprocess.run(args, capture_output=True, timeout=30)
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/"):
        return 0, {}, b""
    lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in fields.items()}, body


def open_file_cache_valid() -> float:
    """How long nginx may follow a removed link (the deploy config's open_file_cache_valid)."""
    found = re.search(r"^\s*open_file_cache_valid (\d+)s;", nginxconf.DEPLOY_CONF.read_text(), re.MULTILINE)
    assert found, "open_file_cache_valid is not in the deploy config"
    return float(found.group(1))


@pytest.mark.embedded_only
async def test_public_files_sent_by_nginx_through_public_links(make_instance, tmp_path: Path) -> None:
    """Public HLS files come straight from the disk through nginx (the link Shoal keeps), even while
    Shoal cannot answer; a video made private loses its link at once, and nginx stops following it
    within open_file_cache_valid: then Shoal answers 403 file_token_required."""
    site, instance = await behind_nginx(make_instance, tmp_path)
    storage = tmp_path / "web" / "storage"
    clip = media.make_clip(tmp_path, "public.mp4", 320, 240, 30, 2.0)
    with nginxconf.running(site):
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as session:
            anonymous = ApiClient(session, site.https_url)
            await instance.create_user("alice")
            alice = anonymous.as_user(await anonymous.login("alice", "password123"))
            ref = await upload(alice, clip, "Public behind nginx")
            video = await wait_done(alice, ref["id"])
            link = storage / "public-hls" / video["uuid"]
            for _ in range(100):  # placed just after the published state commits
                if link.is_symlink():
                    break
                await asyncio.sleep(0.05)
            assert link.is_symlink() and os.readlink(link) == f"../hls/{video['uuid']}"
            playlist = video["streamingPlaylists"][0]
            master = playlist["playlistUrl"]
            assert "/private/" not in master
            file_url = playlist["files"][0]["fileUrl"]
            data = (storage / "hls" / video["uuid"] / file_url.rsplit("/", 1)[1]).read_bytes()

            # Shoal's event loop is blocked during these: nginx alone answers.
            status, headers, body = blocking_get(master)
            assert status == 200 and headers["server"].startswith("nginx"), (status, headers)
            assert headers["cache-control"] == "public, max-age=30"
            assert headers["content-type"] == "application/vnd.apple.mpegurl"
            assert headers["access-control-allow-origin"] == "*"
            assert headers["x-content-type-options"] == "nosniff"
            assert body.startswith(b"#EXTM3U")
            status, headers, body = blocking_get(file_url, "Range: bytes=10-1009")
            assert status == 206 and headers["content-range"] == f"bytes 10-1009/{len(data)}"
            assert headers["cache-control"] == "public, max-age=31536000, immutable"
            assert "Content-Range" in headers["access-control-expose-headers"]
            assert body == data[10:1010]
            for _ in range(3):
                async with session.get(file_url, headers={"Range": "bytes=10-1009"}) as resp:
                    assert resp.status == 206 and resp.headers["Server"].startswith("nginx")
                    assert resp.headers["Content-Range"] == f"bytes 10-1009/{len(data)}"
                    assert await resp.read() == data[10:1010]
            # A missing file is Shoal's problem document, not nginx's page.
            async with session.get(master.rsplit("/", 1)[0] + "/missing.m3u8") as resp:
                assert resp.status == 404 and (await resp.json())["code"] == "file_not_found"

            status, _ = await alice.put(f"/api/v1/videos/{video['id']}", json={"privacy": 3})
            assert status == 204
            assert not link.is_symlink() and not link.exists()
            loop = asyncio.get_running_loop()
            changed = loop.time()
            while True:
                async with session.get(file_url, headers={"Range": "bytes=0-99"}) as resp:
                    if resp.status == 403:
                        assert (await resp.json())["code"] == "file_token_required"
                        break
                    assert resp.status == 206
                waited = loop.time() - changed
                assert waited < open_file_cache_valid() + 2, f"still sent by nginx after {waited:.1f} s"
                await asyncio.sleep(0.25)
            # Closed, the files need Shoal: with its loop blocked, nothing comes back.
            assert blocking_get(file_url, "Range: bytes=0-99")[0] == 0

            status, _ = await alice.put(f"/api/v1/videos/{video['id']}", json={"privacy": 1})
            assert status == 204 and link.is_symlink()
            status, _, body = blocking_get(file_url, "Range: bytes=0-99")
            assert status == 206 and body == data[:100]
