"""Benchmark: federation fan-out — one video published to 1,000 follower inboxes on 50 hosts.

A real `shoal serve` (embedded mode: SQLite, in-process jobs, so deliveries share the web
process) has one channel followed by 1,000 remote accounts, 20 on each of 50 receiver
hosts: 50 aiohttp servers on distinct loopback ports (``127.0.0.1:PORT`` is its own host
for delivery: rows, per-host limits and pauses are keyed by host and port). Each receiver
answers 202 and records (inbox, activity id), so duplicates and losses are counted.

Each round makes one private video public through the API (``PUT /api/v1/videos/{id}``):
Shoal writes one durable ``deliver`` row per inbox for the ``Create`` and for the channel's
``Announce`` (2,000 rows), signs every POST (RSA-2048, draft-cavage) and records each outcome.
Measured: deliveries per second and the time until every one is acknowledged, and the web
process's p99 on ``GET /api/v1/videos`` (50 requests/s, open loop) during the fan-out, against
the same load when idle.

Baselines in the same run, to the same receivers: a bare aiohttp client POSTing the same
number of requests with the same per-host concurrency, unsigned and signed (no rows).
Target: ≥ 1,000 signed, durable deliveries/s, each delivered exactly once, p99 < 100 ms.

    python bench/fanout.py [--rounds 3] [--hosts 50] [--inboxes 1000] [--api-rate 50] [--scaled]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.serve import drop_database, machine, scratch_database  # noqa: E402
from tests.support import SHOAL_CLI, ApiClient, free_port, serve_env, start_process, stop_process, wait_http  # noqa: E402

API_RATE = 50.0  # GET /api/v1/videos per second during the runs
PER_HOST = 8  # as federation.sender.PER_HOST
TARGET_RATE = 1000.0
TARGET_P99_MS = 100.0

RECEIVERS = r"""
import asyncio, json, sys
from aiohttp import web

hosts = int(sys.argv[1])
seen = {}
posts = 0

async def inbox(request):
    global posts
    body = await request.read()
    posts += 1
    try:
        activity_id = json.loads(body).get("id")
    except ValueError:
        activity_id = None
    key = (request.host, request.path, activity_id)
    seen[key] = seen.get(key, 0) + 1
    return web.Response(status=202)

async def stats(request):
    dupes = sum(n - 1 for n in seen.values())
    prefix = request.query.get("prefix", "")
    matching = sum(1 for (_, _, a) in seen if a and a.startswith(prefix))
    return web.json_response({"posts": posts, "unique": len(seen), "duplicates": dupes, "matching": matching})

async def main():
    ports = []
    for i in range(hosts):
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post("/{tail:.*}", inbox)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        ports.append(site._server.sockets[0].getsockname()[1])
    control = web.Application()
    control.router.add_get("/stats", stats)
    runner = web.AppRunner(control, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(json.dumps({"ports": ports, "control": site._server.sockets[0].getsockname()[1]}), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@dataclass
class Round:
    label: str
    deliveries: int
    seconds: float
    p99_ms: float | None = None
    idle_p99_ms: float | None = None
    duplicates: int = 0
    failed_rows: int = 0
    retried_rows: int = 0
    rows_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.deliveries / self.seconds if self.seconds else 0.0


async def fill(env: dict[str, str], ports: list[int], inboxes: int, videos: int) -> list[str]:
    """A user with ``videos`` private videos (rendition rows only) and ``inboxes`` remote
    followers of its channel spread evenly over the receiver ports; returns the video UUIDs."""
    from sqlalchemy import select

    from instance.core import open_shoal
    from instance.models import Actor, ActorKind, Follow, FollowState, Privacy, Rendition, Video, VideoState
    from instance.models.actor import handle_key
    from instance.services.users import create_user
    from instance.settings import load_settings

    settings = load_settings(
        **{k.removeprefix("SHOAL_").lower(): v for k, v in env.items() if k.startswith("SHOAL_")}
    )
    uuids = []
    async with open_shoal(settings, http=False) as shoal:
        async with shoal.db.write() as session:
            await create_user(
                shoal, session, username="bench", email="bench@example.org", password="bench-pass"
            )
        async with shoal.db.write() as session:
            channel = await session.scalar(
                select(Actor)
                .where(Actor.kind == ActorKind.GROUP, Actor.host.is_(None))
                .order_by(Actor.id)
                .limit(1)
            )
            assert channel is not None
            for n in range(videos):
                video = Video(
                    channel_id=channel.id,
                    name=f"Fan-out video {n}",
                    description="Published to every follower at once.",
                    privacy=Privacy.PRIVATE,
                    state=VideoState.PUBLISHED,
                    duration=60.0,
                )
                session.add(video)
                await session.flush()
                video.master_playlist = f"hls/{video.uuid}/m-master.m3u8"
                video.segments_sha256 = f"hls/{video.uuid}/m-segments-sha256.json"
                for height in (720, 360):
                    session.add(
                        Rendition(
                            video_id=video.id,
                            height=height,
                            width=height * 16 // 9,
                            fps=30.0,
                            bitrate=1000,
                            playlist_path=f"hls/{video.uuid}/f-{height}.m3u8",
                            file_path=f"hls/{video.uuid}/f-{height}-fragmented.mp4",
                            size=1000 * height,
                        )
                    )
                uuids.append(video.uuid)
            for i in range(inboxes):
                port = ports[i % len(ports)]
                host = f"127.0.0.1:{port}"
                ap_id = f"http://{host}/users/u{i}"
                actor = Actor(
                    kind=ActorKind.PERSON,
                    preferred_username=f"u{i}",
                    host=host,
                    handle_key=handle_key(f"u{i}", host),
                    ap_id=ap_id,
                    inbox_url=f"{ap_id}/inbox",
                    followers_url=f"{ap_id}/followers",
                )
                session.add(actor)
                await session.flush()
                session.add(Follow(follower_id=actor.id, target_id=channel.id, state=FollowState.ACCEPTED))
    return uuids


async def token_for(session: aiohttp.ClientSession, url: str) -> str:
    return await ApiClient(session, url).login("bench", "bench-pass")


class Load:
    """Open-loop reads of /api/v1/videos at ``rate`` requests per second (a steady audience,
    not a saturating one); latencies kept with their start time."""

    def __init__(self, url: str, rate: float) -> None:
        self.url = url + "/api/v1/videos?count=20"
        self.rate = rate
        self.samples: list[tuple[float, float]] = []
        self.errors = 0
        self._stop = asyncio.Event()
        self._pending: set[asyncio.Task[None]] = set()

    async def _one(self) -> None:
        began = time.monotonic()
        try:
            async with self._session.get(self.url) as resp:
                await resp.read()
                if resp.status != 200:
                    self.errors += 1
        except aiohttp.ClientError:
            self.errors += 1
        self.samples.append((began, (time.monotonic() - began) * 1000))

    async def _drive(self) -> None:
        step = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            task = asyncio.create_task(self._one())
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            next_at += step
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def __aenter__(self) -> Load:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        self._driver = asyncio.create_task(self._drive())
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stop.set()
        await self._driver
        await asyncio.gather(*self._pending)
        await self._session.close()

    def p99(self, since: float, until: float) -> float | None:
        window = sorted(ms for at, ms in self.samples if since <= at <= until)
        if len(window) < 20:
            return None
        return window[min(len(window) - 1, int(len(window) * 0.99))]


async def receiver_stats(session: aiohttp.ClientSession, control: str, prefix: str = "") -> dict[str, int]:
    async with session.get(f"{control}/stats", params={"prefix": prefix}) as resp:
        return await resp.json()


async def bare_client(inboxes: list[str], signed: bool, tag: str) -> float:
    """POST one small activity to every inbox, ``PER_HOST`` at a time per host; seconds taken."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from federation.signatures import sign_headers

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    body = json.dumps({"type": "Create", "id": f"urn:{tag}", "actor": "http://bench/actor"}).encode()
    slots: dict[str, asyncio.Semaphore] = {}
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=PER_HOST)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post(inbox: str) -> None:
            host = inbox.split("/")[2]
            async with slots.setdefault(host, asyncio.Semaphore(PER_HOST)):
                headers = {"Content-Type": "application/activity+json"}
                if signed:
                    headers.update(
                        sign_headers(
                            "POST", inbox, key_id="http://bench/actor#main-key", private_pem=pem, body=body
                        )
                    )
                async with session.post(inbox, data=body, headers=headers) as resp:
                    await resp.read()
                    assert resp.status == 202

        began = time.monotonic()
        await asyncio.gather(*(post(inbox) for inbox in inboxes))
        return time.monotonic() - began


async def rows_of(database: str, since_id: int) -> tuple[int, int, int, int]:
    """(succeeded, failed, retried, last id) of the ``deliver`` rows after ``since_id``."""
    query = "SELECT state, attempts, id FROM work_items WHERE kind = 'deliver' AND id > "
    if database.startswith("postgresql"):
        import asyncpg

        conn = await asyncpg.connect(database)
        try:
            rows = [tuple(r) for r in await conn.fetch(query + "$1", since_id)]
        finally:
            await conn.close()
    else:
        with sqlite3.connect(database) as db:
            rows = db.execute(query + "?", (since_id,)).fetchall()
    succeeded = sum(1 for state, _, _ in rows if state == "succeeded")
    failed = sum(1 for state, _, _ in rows if state == "failed")
    retried = sum(1 for _, attempts, _ in rows if attempts > 1)
    return succeeded, failed, retried, max((i for _, _, i in rows), default=since_id)


async def scaled_env(env: dict[str, str], pg: str, redis: str) -> tuple[str, str]:
    """PostgreSQL (a scratch database) and Redis for the scaled mode; returns (database, url)."""
    name = f"shoal_bench_fanout_{os.getpid()}"
    database = pg.rsplit("/", 1)[0] + "/" + name
    env["SHOAL_DATABASE_URL"] = await scratch_database(pg, name)
    env["SHOAL_REDIS_URL"] = redis
    env["SHOAL_REDIS_PREFIX"] = f"shoalbench{os.getpid()}"
    return name, database


async def run(
    work: Path,
    hosts: int,
    inboxes: int,
    rounds: int,
    api_rate: float,
    profile: str | None,
    scaled: bool = False,
    pg: str = "",
    redis: str = "",
) -> tuple[list[Round], dict[str, int]]:
    receivers = await asyncio.create_subprocess_exec(
        sys.executable, "-c", RECEIVERS, str(hosts), stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    try:
        assert receivers.stdout is not None
        info = json.loads(await receivers.stdout.readline())
        ports, control = info["ports"], f"http://127.0.0.1:{info['control']}"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        data = work / "data"
        env = serve_env(
            data,
            port,
            log_level="WARNING",
            secret_key="bench-secret",
            federation_allow_hosts="127.0.0.1",
            p2p_enabled="false",
        )
        dropper = None
        database = str(data / "shoal.db")
        if scaled:
            dropper, database = await scaled_env(env, pg, redis)
        await asyncio.to_thread(
            subprocess.run, [SHOAL_CLI, "db", "upgrade"], env=env, check=True, capture_output=True
        )
        uuids = await fill(env, ports, inboxes, rounds)
        inbox_urls = [f"http://127.0.0.1:{ports[i % len(ports)]}/users/u{i}/inbox" for i in range(inboxes)]
        results: list[Round] = []
        async with aiohttp.ClientSession() as session:
            for signed in (False, True):
                await bare_client(inbox_urls[: len(ports)], signed, f"warm-{signed}")
                seconds = await bare_client(inbox_urls, signed, f"bare-{signed}")
                label = "bare aiohttp client, " + ("signed" if signed else "unsigned") + ", no rows"
                results.append(Round(label, inboxes, seconds))
                print(f"  {label:48} {inboxes / seconds:8.0f} deliveries/s", flush=True)

            serve = [SHOAL_CLI, "serve"]
            if profile:
                serve = [sys.executable, "-m", "cProfile", "-o", profile, *serve]
            proc = start_process(serve, env, work / "serve.log")
            worker = start_process([SHOAL_CLI, "worker"], env, work / "worker.log") if scaled else None
            try:
                await wait_http(url + "/api/v1/config")
                token = await token_for(session, url)
                headers = {"Authorization": f"Bearer {token}"}
                last_row = (await rows_of(database, 0))[3]
                async with Load(url, api_rate) as load:
                    await asyncio.sleep(4)
                    for n, uuid in enumerate(uuids):
                        idle_end = time.monotonic()
                        idle_p99 = load.p99(idle_end - 3, idle_end)
                        before = (await receiver_stats(session, control))["unique"]
                        began = time.monotonic()
                        async with session.put(
                            f"{url}/api/v1/videos/{uuid}", json={"privacy": 1}, headers=headers
                        ) as resp:
                            assert resp.status == 204, await resp.text()
                        put_seconds = time.monotonic() - began
                        expected = 2 * inboxes  # the Create and the channel's Announce
                        while True:
                            stats = await receiver_stats(session, control)
                            if stats["unique"] - before >= expected:
                                break
                            if time.monotonic() - began > 300:
                                raise RuntimeError(f"only {stats['unique'] - before} of {expected} delivered")
                            await asyncio.sleep(0.02)
                        seconds = time.monotonic() - began
                        p99 = load.p99(began, began + seconds)
                        # Every row recorded as succeeded (the receivers' 202s are in the database).
                        deadline = time.monotonic() + 60
                        while True:
                            succeeded, failed, retried, newest = await rows_of(database, last_row)
                            if succeeded + failed >= expected or time.monotonic() > deadline:
                                break
                            await asyncio.sleep(0.1)
                        last_row = newest
                        result = Round(
                            f"shoal, signed, durable (round {n + 1})",
                            expected,
                            seconds,
                            p99,
                            idle_p99,
                            stats["duplicates"],
                            failed,
                            retried,
                            put_seconds,
                        )
                        if succeeded != expected:
                            result.notes.append(f"{succeeded} rows succeeded")
                        results.append(result)
                        print(
                            f"  {result.label:48} {result.rate:8.0f} deliveries/s, {seconds:.2f} s, "
                            f"p99 {p99 or 0:.1f} ms (idle {idle_p99 or 0:.1f} ms); "
                            f"the PUT (rows written) took {put_seconds:.2f} s",
                            flush=True,
                        )
                        await asyncio.sleep(4)
                final = await receiver_stats(session, control)
            finally:
                stop_process(proc)
                if worker is not None:
                    stop_process(worker)
                if dropper:
                    await drop_database(pg, dropper)
        return results, final
    finally:
        receivers.terminate()
        await receivers.wait()


def table(results: list[Round]) -> str:
    rows = [
        "| sender | deliveries | seconds to all acknowledged (rows written in) | deliveries/s "
        "(after the rows) | p99 /api/v1/videos during (idle) | duplicates | failed/retried rows | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        p99 = f"{r.p99_ms:.1f} ms ({r.idle_p99_ms:.1f} ms)" if r.p99_ms is not None and r.idle_p99_ms else ""
        target = ""
        written = f" ({r.rows_seconds:.2f})" if r.rows_seconds else ""
        after = f" ({r.deliveries / (r.seconds - r.rows_seconds):,.0f})" if r.rows_seconds else ""
        if r.label.startswith("shoal"):
            ok = (
                r.rate >= TARGET_RATE
                and (r.p99_ms or 0) < TARGET_P99_MS
                and not r.duplicates
                and not r.failed_rows
            )
            target = f"≥ 1,000/s, p99 < 100 ms: {'ok' if ok else 'MISSED'}"
        rows.append(
            f"| {r.label} | {r.deliveries:,} | {r.seconds:.2f}{written} | {r.rate:,.0f}{after} | {p99} | "
            f"{r.duplicates if r.label.startswith('shoal') else ''} | "
            f"{f'{r.failed_rows}/{r.retried_rows}' if r.label.startswith('shoal') else ''} | {target} |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="videos published, one per round")
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--inboxes", type=int, default=1000)
    parser.add_argument(
        "--scaled", action="store_true", help="PostgreSQL + Redis, deliveries in a `shoal worker`"
    )
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test", help="for --scaled")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="for --scaled")
    parser.add_argument("--profile", help="write a cProfile of the web process to this file")
    parser.add_argument("--api-rate", type=float, default=API_RATE, help="GET /api/v1/videos per second")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="shoal-bench-fanout-"))
    started = time.monotonic()
    try:
        results, final = asyncio.run(
            run(
                work,
                args.hosts,
                args.inboxes,
                args.rounds,
                args.api_rate,
                args.profile,
                args.scaled,
                args.pg,
                args.redis,
            )
        )
    finally:
        if os.environ.get("SHOAL_BENCH_KEEP"):
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    shoal_rounds = [r for r in results if r.label.startswith("shoal")]
    print()
    print(
        f"Machine: {machine()}; {args.inboxes:,} inboxes on {args.hosts} hosts; "
        f"{args.api_rate:g} GET /api/v1/videos per second throughout; "
        + (
            "scaled (PostgreSQL, Redis, one `shoal worker`)"
            if args.scaled
            else "embedded (SQLite, jobs in the web process)"
        )
    )
    print(table(results))
    if shoal_rounds:
        print(
            f"median: {statistics.median(r.rate for r in shoal_rounds):,.0f} deliveries/s; "
            f"receivers saw {final['posts']:,} POSTs, {final['duplicates']} duplicates"
        )
    print(f"({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
