"""Benchmark: HLS files through `shoal serve` and behind the deploy/ nginx, against nginx alone.

A real `shoal serve` (embedded mode) publishes a short upload; a 2 MB segment and a 2 KB
playlist are then added to that video's HLS folder. wrk fetches each file at 32 and 128
connections from:

  nginx          nginx serving the storage folder itself (sendfile), plain HTTP — the baseline
  shoal          `shoal serve` directly (access check, sendfile for segments; playlists from memory,
                 repeated below the HTTP parser while hot)
  nginx+shoal    deploy/nginx/shoal.conf in front of `shoal serve` over TLS: public files sent by nginx
                 through Shoal's public-hls/ links, the rest through Shoal (X-Accel-Redirect) —
                 compared with nginx alone over TLS

All servers run at once and the wrk runs interleave in rotating order over several rounds,
so load from other tenants of the machine hurts them alike. Each row shows the medians of
req/s, MB/s and p99, and the median of the per-round ratios to its nginx baseline.

    python bench/serve.py [--duration 5] [--rounds 3] [--work DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import media  # noqa: E402
from tests.deploy import nginxconf  # noqa: E402
from tests.support import (  # noqa: E402
    ApiClient,
    free_port,
    publish,
    serve_env,
    start_process,
    stop_process,
    wait_http,
)

SEGMENT = 2 * 1024 * 1024
PLAYLIST = 2 * 1024
CONNECTIONS = (32, 128)
TARGETS = {("shoal", "segment"): 0.8, ("shoal", "playlist"): 0.35}
BEHIND_TARGET = 0.95


@dataclass
class Result:
    server: str
    file: str
    connections: int
    rps: float
    mbps: float
    p99_ms: float
    errors: int


def parse_wrk(out: str) -> tuple[float, float, float, int]:
    """req/s, MB/s, p99 (ms) and non-2xx/3xx or socket errors from wrk --latency output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    scale = {"B": 1e-6, "KB": 1e-3 * 1.024, "MB": 1.048576, "GB": 1073.741824}[transfer.group(2)]
    mbps = float(transfer.group(1)) * scale
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(x) for x in m.groups())
    return rps, mbps, p99_ms, errors


def wrk(url: str, connections: int, duration: float) -> tuple[float, float, float, int]:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
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
    return parse_wrk(out)


async def scratch_database(pg: str, name: str) -> str:
    """A fresh PostgreSQL database ``name`` beside ``pg`` (dropped first if left over); its
    SQLAlchemy URL (``postgresql+asyncpg://…``)."""
    import asyncpg

    conn = await asyncpg.connect(pg)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return "postgresql+asyncpg://" + pg.split("://", 1)[1].rsplit("/", 1)[0] + "/" + name


async def drop_database(pg: str, name: str) -> None:
    """Drop a database :func:`scratch_database` made (its connections closed by force)."""
    import asyncpg

    conn = await asyncpg.connect(pg)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def publish_video(url: str, clip: Path) -> str:
    """Log in as the admin, upload ``clip`` and wait until it is published; returns its UUID."""
    async with aiohttp.ClientSession() as session:
        admin = await ApiClient(session, url).logged_in("bench", "bench-password")
        return (await publish(admin, clip, "bench", timeout=300))["uuid"]


def baseline_nginx(directory: Path, storage: Path, http_port: int, https_port: int, tls: Path) -> Path:
    """nginx alone serving the storage folder at the same paths (sendfile), HTTP and TLS."""
    site = directory / "plain.conf"
    site.write_text(
        f"""
server {{
    listen 127.0.0.1:{http_port};
    listen 127.0.0.1:{https_port} ssl http2;
    ssl_certificate {tls}/fullchain.pem;
    ssl_certificate_key {tls}/privkey.pem;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    location /static/streaming-playlists/hls/ {{
        alias {storage}/hls/;
        add_header Access-Control-Allow-Origin *;
    }}
}}
"""
    )
    main = directory / "nginx.conf"
    main.write_text(nginxconf.main_config(directory, site))
    return main


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    distro = ""
    try:
        distro = re.search(r'PRETTY_NAME="([^"]+)"', Path("/etc/os-release").read_text()).group(1)
    except (OSError, AttributeError):
        pass
    return f"{os.cpu_count()} cores ({cpu}), {distro}, Python {platform.python_version()}"


async def run(
    work: Path, duration: float, rounds: int
) -> tuple[list[Result], dict[tuple[str, str, int], list[Result]]]:
    data = work / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = serve_env(
        data,
        port,
        admin_user="bench",
        admin_password="bench-password",
        log_level="WARNING",
        transcoding_resolutions=240,
    )
    clip = media.make_clip(work, "clip.mp4", 320, 240, 30, 2.0)
    log = work / "shoal.log"
    shoal = start_process(["serve"], env, log)
    try:
        await wait_http(url + "/api/v1/config")
        uuid = await publish_video(url, clip)
    finally:
        stop_process(shoal)
    folder = data / "storage" / "hls" / uuid
    (folder / "bench-segment.m4s").write_bytes(os.urandom(SEGMENT))
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:4", '#EXT-X-MAP:URI="init.mp4"']
    i = 0
    while len("\n".join(lines)) < PLAYLIST - 60:
        lines += ["#EXTINF:4.000000,", f"segment-{i:05d}.m4s"]
        i += 1
    text = "\n".join(lines) + "\n#EXT-X-ENDLIST\n"
    (folder / "bench-playlist.m3u8").write_text(text.ljust(PLAYLIST - 1) + "\n")
    paths = {
        "segment": f"/static/streaming-playlists/hls/{uuid}/bench-segment.m4s",
        "playlist": f"/static/streaming-playlists/hls/{uuid}/bench-playlist.m3u8",
    }

    # Every server runs at once and the runs interleave (rotating order, several rounds), so
    # load from other tenants of the machine hurts them alike; the table keeps the medians.
    plain_dir = work / "nginx-plain"
    tls = plain_dir / "tls"
    nginxconf.self_signed_cert(tls)
    plain_http, plain_https = free_port(), free_port()
    main = baseline_nginx(plain_dir, data / "storage", plain_http, plain_https, tls)
    accel_port = free_port()
    accel_env = {
        **env,
        "SHOAL_DATA_DIR": str(work / "data-accel"),
        "SHOAL_DATABASE_URL": f"sqlite+aiosqlite:///{data / 'shoal.db'}",
        "SHOAL_STORAGE_URL": f"file://{data / 'storage'}",
        "SHOAL_LISTEN": f"127.0.0.1:{accel_port}",
        "SHOAL_ACCEL_REDIRECT_PREFIX": "/internal-storage/",
        "SHOAL_TRUST_PROXY": "true",
    }
    site = nginxconf.prepare(
        work / "nginx-deploy", web=[f"127.0.0.1:{accel_port}"], storage_dir=data / "storage"
    )
    servers = {
        "nginx": f"http://127.0.0.1:{plain_http}",
        "nginx-tls": f"https://127.0.0.1:{plain_https}",
        "shoal": url,
        "nginx+shoal": site.https_url,
    }
    procs = [
        start_process([nginxconf.NGINX, "-c", str(main), "-p", str(plain_dir)], env, plain_dir / "out.log"),
        start_process(["serve"], env, log),
        start_process(["serve"], accel_env, work / "shoal-accel.log"),
    ]
    runs: dict[tuple[str, str, int], list[Result]] = {}
    try:
        with nginxconf.running(site):
            for base in servers.values():
                await wait_http(base + paths["playlist"])
            order = list(servers)
            for round_no in range(rounds):
                for file, path in paths.items():
                    for connections in CONNECTIONS:
                        rotated = order[round_no % len(order) :] + order[: round_no % len(order)]
                        for server in rotated:
                            wrk(servers[server] + path, connections, 1)  # warm up
                            rps, mbps, p99, errors = wrk(servers[server] + path, connections, duration)
                            runs.setdefault((server, file, connections), []).append(
                                Result(server, file, connections, rps, mbps, p99, errors)
                            )
                            print(
                                f"  round {round_no + 1} {server:12} {file:8} c={connections:<3} "
                                f"{rps:10.0f} req/s {p99:8.2f} ms p99",
                                flush=True,
                            )
    finally:
        for proc in procs:
            stop_process(proc)
    return [median_result(rs) for rs in runs.values()], runs


def median_result(results: list[Result]) -> Result:
    first = results[0]
    return Result(
        first.server,
        first.file,
        first.connections,
        statistics.median(r.rps for r in results),
        statistics.median(r.mbps for r in results),
        statistics.median(r.p99_ms for r in results),
        sum(r.errors for r in results),
    )


def table(results: list[Result], runs: dict[tuple[str, str, int], list[Result]]) -> str:
    """Medians per server, with the median of the per-round ratios to the nginx baseline."""
    rows = [
        "| server | file | conns | req/s | MB/s | p99 ms | errors | ratio to nginx | target |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        baseline = "nginx-tls" if r.server == "nginx+shoal" else "nginx"
        ours = runs[(r.server, r.file, r.connections)]
        refs = runs[(baseline, r.file, r.connections)]
        ratio = statistics.median(a.rps / b.rps for a, b in zip(ours, refs, strict=True) if b.rps)
        if r.server == "shoal":
            target = TARGETS[("shoal", r.file)]
        elif r.server == "nginx+shoal":
            target = BEHIND_TARGET
        else:
            target = None
        mark = "" if target is None else f"≥ {target:.2f}× {'ok' if ratio >= target else 'MISSED'}"
        ref_name = " (vs nginx-tls)" if r.server == "nginx+shoal" else ""
        rows.append(
            f"| {r.server} | {r.file} | {r.connections} | {r.rps:,.0f} | {r.mbps:,.1f} | {r.p99_ms:.2f} "
            f"| {r.errors} | {ratio:.2f}×{ref_name} | {mark} |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians are shown)")
    parser.add_argument("--work", type=Path, help="scratch directory (default: a temporary one)")
    args = parser.parse_args()
    for tool in ("wrk", "ffmpeg"):
        if shutil.which(tool) is None:
            print(f"bench/serve.py needs {tool} (deploy/system-deps.sh test)", file=sys.stderr)
            return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="shoal-bench-serve-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        results, runs = asyncio.run(run(work, args.duration, args.rounds))
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"Machine: {machine()}; wrk -t2, {args.duration:g} s per run, median of {args.rounds} rounds")
    print(table(results, runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
