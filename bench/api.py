"""Benchmark: the hot read paths of the API with 10,000 videos, on SQLite and on PostgreSQL.

For each database a fresh instance gets 10,000 published public videos, then `shoal serve`
is measured with wrk (64 connections) on:

  list     GET /api/v1/videos?count=20           (the home page's query)
  watch    GET /w/<shortUUID>                    (the watch page; the API's video if absent)
  video    GET /api/v1/videos/<id>

The baseline in the same run is the list's JSON served from memory by a bare aiohttp handler.
Targets: list ≥ 2,500 req/s with p99 < 50 ms in both modes; watch page ≥ 1,000 req/s.

    python bench/api.py [--duration 5] [--videos 10000] [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.serve import drop_database, machine, parse_wrk, scratch_database  # noqa: E402
from tests.support import SHOAL_CLI, free_port, serve_env, start_process, stop_process, wait_http  # noqa: E402

CONNECTIONS = 64
LIST_TARGET = (2500.0, 50.0)
WATCH_TARGET = 1000.0

MEMORY_SERVER = """
import sys
from aiohttp import web
body = open(sys.argv[1], "rb").read()
async def handler(request):
    return web.Response(body=body, content_type="application/json")
app = web.Application()
app.router.add_get("/api/v1/videos", handler)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[2]), access_log=None, print=None)
"""


@dataclass
class Result:
    mode: str
    path: str
    rps: float
    p99_ms: float
    errors: int


def wrk(url: str, duration: float) -> tuple[float, float, int]:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{CONNECTIONS}",
            f"-d{max(1, round(duration))}s",
            "--latency",
            "--timeout",
            "10s",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps, _, p99, errors = parse_wrk(out)
    return rps, p99, errors


async def fill(env: dict[str, str], videos: int) -> None:
    """Create a user and ``videos`` published public videos in one transaction per 2,000."""
    from sqlalchemy import select

    from instance.core import open_shoal
    from instance.models import Actor, Privacy, Video, VideoState
    from instance.services.users import create_user
    from instance.settings import load_settings

    settings = load_settings(
        **{k.removeprefix("SHOAL_").lower(): v for k, v in env.items() if k.startswith("SHOAL_")}
    )
    async with open_shoal(settings, http=False) as shoal:
        async with shoal.db.write() as session:
            await create_user(
                shoal, session, username="bench", email="bench@example.org", password="bench-pass"
            )
        async with shoal.db.read() as session:
            channel_id = await session.scalar(
                select(Actor.id)
                .where(Actor.kind == "Group", Actor.host.is_(None))
                .order_by(Actor.id)
                .limit(1)
            )
        start_at = datetime.now(UTC) - timedelta(days=400)
        for first in range(0, videos, 2000):
            async with shoal.db.write() as session:
                for i in range(first, min(videos, first + 2000)):
                    when = start_at + timedelta(minutes=i)
                    session.add(
                        Video(
                            channel_id=channel_id,
                            name=f"Bench video {i}",
                            description=f"Video number {i} of the API benchmark.",
                            tags=["bench", f"t{i % 50}"],
                            privacy=Privacy.PUBLIC,
                            state=VideoState.PUBLISHED,
                            duration=60.0 + i % 600,
                            views=i * 7 % 1000,
                            created_at=when,
                            published_at=when,
                            updated_at=when,
                        )
                    )


async def prepare(mode: str, work: Path, pg: str, videos: int) -> tuple[dict[str, str], str | None]:
    port = free_port()
    env = serve_env(work / mode, port, log_level="WARNING", secret_key="bench-secret")
    dropper = None
    if mode == "postgresql":
        name = f"shoal_bench_api_{os.getpid()}"
        env["SHOAL_DATABASE_URL"] = await scratch_database(pg, name)
        dropper = name
    await asyncio.to_thread(
        subprocess.run, [SHOAL_CLI, "db", "upgrade"], env=env, check=True, capture_output=True
    )
    await fill(env, videos)
    return env, dropper


async def run_mode(mode: str, work: Path, pg: str, videos: int, duration: float) -> list[Result]:
    env, dropper = await prepare(mode, work, pg, videos)
    url = env["SHOAL_PUBLIC_URL"]
    results: list[Result] = []
    proc = start_process([SHOAL_CLI, "serve"], env, work / f"{mode}.log")
    try:
        await wait_http(url + "/api/v1/config")
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/api/v1/videos?count=20") as resp:
                listing = await resp.read()
                first = (await resp.json())["data"][0]
            async with session.get(f"{url}/w/{first['shortUUID']}") as resp:
                watch = f"/w/{first['shortUUID']}" if resp.status == 200 else f"/api/v1/videos/{first['id']}"
        paths = {
            "list": "/api/v1/videos?count=20",
            "watch": watch,
            "video": f"/api/v1/videos/{first['uuid']}",
        }
        for label, path in paths.items():
            wrk(url + path, 1)
            rps, p99, errors = wrk(url + path, duration)
            results.append(
                Result(mode, f"{label} {path if label != 'watch' else watch}", rps, p99, errors)
            )
            print(f"  {mode:10} {label:6} {rps:8.0f} req/s {p99:8.2f} ms p99 ({errors} errors)", flush=True)
    finally:
        stop_process(proc)
        if dropper:
            await drop_database(pg, dropper)
    if mode == "sqlite":
        body = work / "listing.json"
        body.write_bytes(listing)
        port = free_port()
        argv = [sys.executable, "-c", MEMORY_SERVER, str(body), str(port)]
        memory = start_process(argv, env, work / "memory.log")
        try:
            await wait_http(f"http://127.0.0.1:{port}/api/v1/videos")
            wrk(f"http://127.0.0.1:{port}/api/v1/videos", 1)
            rps, p99, errors = wrk(f"http://127.0.0.1:{port}/api/v1/videos", duration)
            results.insert(0, Result("memory", "list (same JSON, bare aiohttp)", rps, p99, errors))
            print(f"  memory     list   {rps:8.0f} req/s {p99:8.2f} ms p99", flush=True)
        finally:
            stop_process(memory)
    return results


def table(results: list[Result]) -> str:
    memory = next((r.rps for r in results if r.mode == "memory"), 0.0)
    rows = [
        "| database | request | req/s | p99 ms | errors | vs memory | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        target = ""
        if r.path.startswith("list") and r.mode != "memory":
            ok = r.rps >= LIST_TARGET[0] and r.p99_ms < LIST_TARGET[1]
            target = f"≥ 2,500 req/s, p99 < 50 ms {'ok' if ok else 'MISSED'}"
        elif r.path.startswith("watch"):
            target = f"≥ 1,000 req/s {'ok' if r.rps >= WATCH_TARGET else 'MISSED'}"
        ratio = f"{r.rps / memory:.2f}×" if memory else ""
        rows.append(
            f"| {r.mode} | {r.path} | {r.rps:,.0f} | {r.p99_ms:.1f} | {r.errors} | {ratio} | {target} |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--videos", type=int, default=10_000)
    parser.add_argument(
        "--pg",
        default=os.environ.get("SHOAL_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="a PostgreSQL server (a scratch database is created and dropped there)",
    )
    parser.add_argument("--only", choices=["sqlite", "postgresql"], help="one database only")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench/api.py needs wrk (deploy/system-deps.sh test)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="shoal-bench-api-"))
    results: list[Result] = []
    started = time.monotonic()
    try:
        for mode in ("sqlite", "postgresql"):
            if args.only and mode != args.only:
                continue
            results += asyncio.run(run_mode(mode, work, args.pg, args.videos, args.duration))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(
        f"Machine: {machine()}; {args.videos:,} videos; wrk -t2 -c{CONNECTIONS}, {args.duration:g} s per run"
    )
    print(table(results))
    print(f"({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
