"""Benchmark: P2P offload with BitTorrent clients — what the origin sends against what viewers get.

Part (a) of the P2P benchmark (part (b), Chromium pages, is ``bench/p2p_browser.py``). An
embedded instance on loopback runs the seeder in its web process and publishes a generated
clip (one rung). Six libtorrent client sessions ("viewers") then join the rung's torrent a few
seconds apart, each downloading at most ``--speed`` times the rung's bitrate (a player that
buffers ahead), and stay in the swarm after completing (as a player keeps its segments). The
seeder's upload is limited to what one such viewer takes, so the other copies must come from
the viewers themselves.

Five modes, one after the other, against the same instance and rung:

- ``seeding``: the clients' torrent has no web seed; the origin's only egress is the seeder.
- ``super-seeding``: the same, the seeder in BEP 16 super-seeding mode (``seeder_super_seeding``,
  the default): it hands each peer pieces nobody has yet and waits until they are passed on, so
  it sends each piece about once (plain seeding for a downloader left alone with it, or not served).
- ``web seed + …``: the torrent as published: with local storage its ``url-list`` is the
  web-seed route (``p2p/webseed.py``), which answers ``503`` while the seeder serves the client;
  the origin also sends whatever the clients fetch over HTTP.
- ``file URL web seed + super-seeding``: the baseline, the ``url-list`` as PeerTube (and Shoal
  before the route) publishes it: the file's plain URL, an always-unchoked fast peer.

Measured: **origin sent** = the seeder's payload upload (libtorrent's counter) + the bytes of
the rung's file route answered over HTTP (the Content-Length of every 200/206, counted by the
instance); **delivered** = what the clients downloaded (their payload counters); **offload** =
1 − origin / delivered; **copies** = origin / file size. Target: ≤ 1.5 copies for 6 viewers
(≥ 75 % offload), with the web seed listed.

    python bench/p2p.py [--clients 6] [--interval 3] [--seconds 30] [--speed 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import libtorrent as lt
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from instance.app import create_app  # noqa: E402
from instance.settings import load_settings  # noqa: E402
from instance.web.context import SHOAL  # noqa: E402
from p2p.seeder import close_session, seeder_of  # noqa: E402
from tests.support import free_port, new_user_client, publish, wait_for  # noqa: E402

HOST = "127.0.0.1"
# (the clients' web seed: none, the torrent's own (local storage: /p2p/web-seed/…, which stands
# back while the seeder serves the client) or the file's plain URL (PeerTube's web seed, and ours
# before); the seeder in BEP 16 super-seeding mode)
MODES = [(None, False), (None, True), ("route", False), ("route", True), ("file", True)]
WEB_SEED_NAMES = {None: "", "route": "web seed + ", "file": "file URL web seed + "}


def make_clip(path: Path, seconds: float) -> None:
    """A testsrc2 clip with a tone (480p, 25 fps): enough motion that the bitrate is real."""
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=854x480:rate=25:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
         "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
         str(path)],
        check=True,
    )  # fmt: skip


def limit_local_peers(session: lt.session) -> None:
    """Rate limits for loopback peers too: libtorrent exempts peers on the local network (its
    ``local`` peer class), and every peer here is on loopback."""
    rules = lt.ip_filter()
    rules.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
    rules.add_rule("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1 << lt.session.global_peer_class_id)
    session.set_peer_class_filter(rules)


def client_session(download_limit: int) -> lt.session:
    session = lt.session(
        {
            "listen_interfaces": f"{HOST}:0",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "allow_multiple_connections_per_ip": True,
            "webtorrent_stun_server": "",
            "ssrf_mitigation": False,
            "announce_to_all_tiers": True,
            "announce_to_all_trackers": True,
            "stop_tracker_timeout": 1,
            "download_rate_limit": download_limit,
            "alert_mask": 0,
        }
    )
    limit_local_peers(session)
    return session


class Counter:
    """Bytes the instance answered on the rung's file route (Content-Length of 200/206)."""

    def __init__(self) -> None:
        self.suffix: str | None = None
        self.bytes = 0

    async def on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        if self.suffix and request.path.endswith(self.suffix) and response.status in (200, 206):
            self.bytes += int(response.headers.get("Content-Length", "0") or 0)


async def publish_clip(base: str, app: web.Application, workdir: Path, seconds: float) -> dict[str, Any]:
    clip = workdir / "clip.mp4"
    make_clip(clip, seconds)
    async with aiohttp.ClientSession() as http:
        alice = await new_user_client(app[SHOAL], http, base, "alice")
        video = await publish(alice, clip, "Offload", timeout=600, privacy=1)

        async def torrent() -> dict[str, Any] | None:
            status, body = await alice.get(f"/api/v1/videos/{video['id']}")
            assert status == 200, body
            files = body["streamingPlaylists"][0]["files"]
            return {"file": files[0], "body": body} if files and files[0]["torrentUrl"] else None

        found = await wait_for(torrent, "the torrent", 600, interval=0.5)
        async with http.get(found["file"]["torrentUrl"]) as resp:
            torrent_bytes = await resp.read()
        return {"file": found["file"], "torrent": torrent_bytes, "duration": found["body"]["duration"]}


async def run_mode(
    args: argparse.Namespace,
    app: web.Application,
    counter: Counter,
    torrent: bytes,
    web_seed: str | None,
    super_seeding: bool,
    file_url: str,
    size: int,
    viewer_rate: int,
    workdir: Path,
) -> dict[str, Any]:
    """One swarm: clients join every ``interval`` seconds; returns the byte counts."""
    meta = lt.bdecode(torrent)
    # Desktop clients: the HTTP tracker only (WebRTC never connects on loopback).
    meta[b"announce-list"] = [t for t in meta[b"announce-list"] if not t[0].startswith(b"ws")]
    meta[b"announce"] = meta[b"announce-list"][0][0]
    if web_seed is None:
        meta.pop(b"url-list", None)
    elif web_seed == "file":
        meta[b"url-list"] = [file_url.encode()]
    info = lt.torrent_info(lt.bencode(meta))
    seeder = seeder_of(app[SHOAL])
    assert seeder is not None
    info_hash = str(info.info_hashes().v1)
    seed_handle = seeder.handles[info_hash]
    # Also what the seeder's policy follows (super-seeding while the swarm is shared and served).
    seeder.set_super_seeding(super_seeding)
    seeder_before = seed_handle.status().all_time_upload
    http_before = counter.bytes
    sessions: list[lt.session] = []
    handles: list[lt.torrent_handle] = []
    started = time.monotonic()
    done_at: dict[int, float] = {}
    joined: list[float] = []
    deadline = started + args.seconds + args.interval * args.clients + 120
    while time.monotonic() < deadline:
        now = time.monotonic()
        if len(sessions) < args.clients and now - started >= args.interval * len(sessions):
            session = client_session(int(viewer_rate * args.speed))
            params = lt.add_torrent_params()
            params.ti = lt.torrent_info(info)
            params.save_path = str(workdir / f"{web_seed or 'bt'}-{super_seeding}-{len(sessions)}")
            params.flags &= ~(lt.torrent_flags.paused | lt.torrent_flags.auto_managed)
            sessions.append(session)
            handles.append(session.add_torrent(params))
            joined.append(now)
        for index, handle in enumerate(handles):
            if index not in done_at and handle.status().is_seeding:
                done_at[index] = time.monotonic()
        if len(done_at) == args.clients:
            break
        await asyncio.sleep(0.25)
    await asyncio.sleep(1.5)  # libtorrent updates its counters once a second
    delivered = sum(h.status().total_payload_download for h in handles)
    seeder_sent = seed_handle.status().all_time_upload - seeder_before
    http_sent = counter.bytes - http_before
    for session, handle in zip(sessions, handles, strict=True):
        session.remove_torrent(handle)
        session.pause()
    await asyncio.sleep(1.0)  # let the stopped announces reach the tracker (this process)
    holders = [[session] for session in sessions]
    del session, handles
    sessions.clear()
    for holder in holders:  # destroyed off the event loop (the destructor holds the GIL)
        await asyncio.to_thread(close_session, holder)
    origin = seeder_sent + http_sent
    return {
        "mode": WEB_SEED_NAMES[web_seed] + ("super-seeding" if super_seeding else "seeding"),
        "clients": args.clients,
        "completed": len(done_at),
        "seconds": [round(done_at[i] - joined[i], 1) for i in sorted(done_at)],
        "file_bytes": size,
        "seeder_bytes": seeder_sent,
        "http_bytes": http_sent,
        "origin_bytes": origin,
        "delivered_bytes": delivered,
        "copies": round(origin / size, 2),
        "offload": round(1 - origin / delivered, 3) if delivered else 0.0,
    }


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="shoal-bench-p2p-") as tmp:
        workdir = Path(tmp)
        port = free_port(HOST)
        base = f"http://{HOST}:{port}"
        # The seeder's limit is set once the rung's bitrate is known (one viewer's worth).
        settings = load_settings(
            public_url=base, listen=f"{HOST}:{port}", data_dir=workdir / "data",
            database_url=f"sqlite+aiosqlite:///{workdir / 'shoal.db'}", secret_key="bench-p2p",
            transcoding_resolutions="480", seeder_enabled=True, rate_limit_tracker="100000/60",
            seeder_stun_server="",
        )  # fmt: skip
        (workdir / "data").mkdir()
        app = create_app(settings)
        counter = Counter()
        app.on_response_prepare.append(counter.on_prepare)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, HOST, port).start()
        try:
            published = await publish_clip(base, app, workdir, args.clip)
            file = published["file"]
            size = int(file["size"])
            viewer_rate = int(size / max(float(published["duration"]), 1.0))
            counter.suffix = "/" + os.path.basename(file["fileUrl"])
            seeder = seeder_of(app[SHOAL])
            assert seeder is not None and seeder.session is not None
            info_hash = str(lt.torrent_info(published["torrent"]).info_hashes().v1)
            deadline = time.monotonic() + 120
            while info_hash not in seeder.handles and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.3)
            seeder.session.apply_settings({"upload_rate_limit": int(viewer_rate * args.speed)})
            limit_local_peers(seeder.session)
            print(
                f"rung: {size} bytes, {published['duration']} s, one viewer = "
                f"{viewer_rate * args.speed / 1000:.0f} kB/s ({args.speed}x the bitrate); "
                "seeder upload limited to that",
                file=sys.stderr,
            )
            results = []
            for web_seed, super_seeding in MODES:
                results.append(
                    await run_mode(
                        args,
                        app,
                        counter,
                        published["torrent"],
                        web_seed,
                        super_seeding,
                        file["fileUrl"],
                        size,
                        viewer_rate,
                        workdir,
                    )
                )
            return results
        finally:
            await runner.cleanup()


def print_table(results: list[dict[str, Any]]) -> None:
    print(f"{'mode':<34} {'viewers':>7} {'done':>5} {'delivered':>11} {'seeder':>10} {'http':>10} "
          f"{'origin':>10} {'copies':>6} {'offload':>8}")  # fmt: skip
    for r in results:
        print(
            f"{r['mode']:<34} {r['clients']:>7} {r['completed']:>5} {r['delivered_bytes']:>11,} "
            f"{r['seeder_bytes']:>10,} {r['http_bytes']:>10,} {r['origin_bytes']:>10,} "
            f"{r['copies']:>6} {r['offload']:>7.1%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between two clients joining")
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="time allowed after the last client joined"
    )
    parser.add_argument("--speed", type=float, default=2.0, help="a viewer's download speed, × the bitrate")
    parser.add_argument("--clip", type=float, default=30.0, help="clip length in seconds")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"libtorrent {lt.__version__}")  # fmt: skip
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
