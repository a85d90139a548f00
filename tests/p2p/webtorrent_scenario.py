"""A WebTorrent client fetches a rendition from the seeder over WebRTC (run in a namespace).

WebRTC never offers loopback candidates, so this script runs inside ``tests/netns-run.sh``: it
starts an embedded instance bound to 198.18.0.1 with the seeder in the web process (its
default), uploads a clip, waits until the seeder seeds its rendition, and gives a copy of the
torrent reduced to the instance's WebSocket tracker (no web seed, no HTTP tracker) to a client,
so every byte crosses a WebRTC data channel from the seeder: ``node`` runs
``tests/p2p/webtorrent/download.mjs`` (WebTorrent 3), ``libtorrent`` a session of the PyPI
libtorrent 2.1 (built with WebTorrent support) in its own process (``libtorrent_client.py``).
Then it stops the seeder (timing how long its session takes to close after the WebRTC
exchange) and prints one JSON document; ``test_webtorrent.py`` asserts on it.
Usage: ``tests/netns-run.sh python -m tests.p2p.webtorrent_scenario WORKDIR node|libtorrent``
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import libtorrent as lt

from instance.web.context import SHOAL
from p2p.seeder import seeder_of
from tests.media import make_clip
from tests.netns import HOST, namespace_instance, namespace_settings
from tests.support import new_user_client, publish, wait_for

CLIENT_DIR = Path(__file__).resolve().parent / "webtorrent"
TIMEOUT = 240


def webrtc_only(torrent: bytes) -> bytes:
    """The torrent with its WebSocket tracker alone: no web seed, no HTTP tracker."""
    meta = lt.bdecode(torrent)
    meta.pop(b"url-list", None)
    meta[b"announce-list"] = [tier for tier in meta[b"announce-list"] if tier[0].startswith(b"ws")]
    meta[b"announce"] = meta[b"announce-list"][0][0]
    return lt.bencode(meta)


async def node_client(torrent: Path, out: Path) -> dict[str, Any]:
    """WebTorrent 3 in Node: its report (path, wires, downloaded, length) and exit status."""
    proc = await asyncio.create_subprocess_exec(
        "node", str(CLIENT_DIR / "download.mjs"), str(torrent), str(out), str(TIMEOUT),
        cwd=CLIENT_DIR, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, _ = await proc.communicate()
    report = json.loads(stdout.decode().strip().splitlines()[-1])
    return {**report, "exit": proc.returncode}


async def libtorrent_client(torrent: Path, out: Path) -> dict[str, Any]:
    """A libtorrent 2.1 session (WebTorrent on) in its own process (``libtorrent_client.py``)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.p2p.libtorrent_client", str(torrent), str(out), str(TIMEOUT), HOST,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, _ = await proc.communicate()
    report = json.loads(stdout.decode().strip().splitlines()[-1])
    return {**report, "exit": report["exit"] or proc.returncode}


def seeder_only(torrent: bytes) -> bytes:
    """The torrent as published without its web seed (its trackers: HTTP, then WebSocket)."""
    meta = lt.bdecode(torrent)
    meta.pop(b"url-list", None)
    return lt.bencode(meta)


async def transmission_client(torrent: Path, out: Path) -> dict[str, Any]:
    """transmission-cli (3.00; it ignores peers on 127.0.0.0/8, hence the namespace): it never
    exits by itself, so a script it runs when done leaves a mark, then it is stopped."""
    done = out.parent / "transmission-done"
    script = out.parent / "transmission-done.sh"
    script.write_text(f"#!/bin/sh\ntouch {done}\n")
    script.chmod(0o755)
    proc = await asyncio.create_subprocess_exec(
        "transmission-cli", "-w", str(out), "-g", str(out.parent / "transmission-config"),
        "-f", str(script), "-p", "51413", str(torrent),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if done.exists():
            break
        await asyncio.sleep(0.3)
    proc.terminate()
    await proc.wait()
    info = lt.torrent_info(str(torrent))
    path = out / info.name()
    return {
        "path": str(path),
        "downloaded": path.stat().st_size if path.is_file() else 0,
        "length": info.total_size(),
        "exit": 0 if done.exists() else 1,
    }


CLIENTS = {"node": node_client, "libtorrent": libtorrent_client, "transmission": transmission_client}
PREPARE = {"node": webrtc_only, "libtorrent": webrtc_only, "transmission": seeder_only}


async def run(workdir: Path, client: str) -> dict[str, Any]:
    # The seeder runs in the web process of an instance without Redis by default.
    settings = namespace_settings(
        workdir, "webtorrent-scenario", transcoding_resolutions="144", seeder_enabled=True
    )
    base = settings.public_url
    result: dict[str, Any] = {}
    async with namespace_instance(settings) as app:
        shoal = app[SHOAL]
        async with aiohttp.ClientSession() as http:
            alice = await new_user_client(shoal, http, base, "alice")
            clip = make_clip(workdir, "webtorrent.mp4", 320, 180, 25, 3.0)
            video = await publish(alice, clip, "Over WebRTC", timeout=TIMEOUT, privacy=1)

            async def torrent_file() -> dict[str, Any] | None:
                status, body = await alice.get(f"/api/v1/videos/{video['id']}")
                assert status == 200, body
                files = body["streamingPlaylists"][0]["files"] if body["streamingPlaylists"] else []
                return files[0] if files and files[0]["torrentUrl"] else None

            file = await wait_for(torrent_file, "the torrent", TIMEOUT, interval=0.1)
            async with http.get(file["torrentUrl"]) as resp:
                torrent = await resp.read()
            async with http.get(file["fileUrl"]) as resp:
                expected = await resp.read()
        info_hash = str(lt.torrent_info(torrent).info_hashes().v1)
        seeder = seeder_of(shoal)
        assert seeder is not None

        async def seeding() -> bool:
            return info_hash in seeder.handles and seeder.handles[info_hash].status().is_seeding

        await wait_for(seeding, "the seeder", TIMEOUT, interval=0.1)
        (workdir / "client.torrent").write_bytes(PREPARE[client](torrent))
        out = workdir / "out"
        out.mkdir()
        started = time.monotonic()
        report = await CLIENTS[client](workdir / "client.torrent", out)
        result["client"] = {**report, "seconds": time.monotonic() - started}
        if report["exit"] == 0:
            got = Path(report["path"]).read_bytes()
            result["bytes_equal"] = got == expected
            result["size"] = len(expected)
        result["seeder_uploaded"] = seeder.handles[info_hash].status().all_time_upload
        started = time.monotonic()
        await seeder.stop()
        result["seeder_stop_seconds"] = time.monotonic() - started
    return result


def main() -> None:
    workdir, client = Path(sys.argv[1]), sys.argv[2]
    workdir.mkdir(parents=True, exist_ok=True)
    print(json.dumps(asyncio.run(run(workdir, client)), default=str))


if __name__ == "__main__":
    main()
