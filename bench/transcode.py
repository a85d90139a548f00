"""Benchmark: Shoal's single-pass HLS transcode against PeerTube's one ffmpeg per rung.

Sources: generated 1080p30 clips (H.264 with a keyframe every ~2 s, as cameras and phones
write them, + AAC; noisy testsrc2 so that they cost bits like camera footage), one per
``--bitrates`` entry: by default 8 Mb/s (within the 1080p rung's maximum, so Shoal copies
the source's video as the top rung) and 12 Mb/s (over it, so every rung is encoded).
Each approach runs once per round, interleaved in alternating order, so load from other
tenants of the machine hurts them alike.
Wall time and CPU time (user + system of child processes, from ``getrusage``) are
measured around each run, with the CPU time other processes took meanwhile (from
/proc/stat) to show how busy the machine was. The table shows medians over the rounds;
each ratio is the median of the per-round ratios against the baseline (a). Each run
starts once the machine is idle, and a run during which other processes were busy is
measured again (``--max-others``).

    python bench/transcode.py [--seconds 30] [--rounds 3] [--bitrates 8M,12M] [--work DIR]

To add an approach, write an ``async def approach(bench: Bench)`` and append it to
``APPROACHES``; it returns None to be timed whole, or a ``Measurement`` of its own window.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import transcoding  # noqa: E402
from tests import media  # noqa: E402
from tests.support import ApiClient, channel_of, free_port, serve_env, wait_http  # noqa: E402

# PeerTube's reference ladder for this benchmark (see shared notes, performance.md).
BASELINE_LADDER = ((1080, 4800), (720, 2400), (480, 1200), (360, 800))
BENCH_HEIGHTS = tuple(height for height, _kbps in BASELINE_LADDER)


@dataclass
class Bench:
    """What every approach gets: the source, its probe, and a fresh output directory."""

    source: Path
    info: transcoding.MediaInfo
    work: Path

    def fresh(self, name: str) -> Path:
        """An empty directory for one run's outputs."""
        path = self.work / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path


@dataclass
class Measurement:
    wall: float
    cpu: float
    others: float | None = None


Approach = Callable[[Bench], Awaitable["Measurement | None"]]


async def peertube_per_rung(bench: Bench) -> None:
    """(a) One ffmpeg per rung, one after another, each decoding the source again."""
    out = bench.fresh("per-rung")
    for height, kbps in BASELINE_LADDER:
        await _ffmpeg(
            "-i",
            str(bench.source),
            "-vf",
            f"scale=-2:{height}",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-maxrate",
            f"{kbps}k",
            "-bufsize",
            f"{2 * kbps}k",
            "-g",
            "60",
            "-keyint_min",
            "60",
            "-sc_threshold",
            "0",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-ac",
            "2",
            *_hls_options(f"{height}-fragmented.mp4"),
            str(out / f"{height}.m3u8"),
            cwd=out,
        )


async def plain_single_pass(bench: Bench) -> None:
    """(b) One ffmpeg, decode once, ``split=4`` and each rung scaled from the source."""
    out = bench.fresh("single-pass")
    labels = "".join(f"[s{i}]" for i in range(len(BASELINE_LADDER)))
    graph = f"[0:v]split={len(BASELINE_LADDER)}{labels};" + ";".join(
        f"[s{i}]scale=-2:{height}[v{i}]" for i, (height, _) in enumerate(BASELINE_LADDER)
    )
    args = ["-i", str(bench.source), "-filter_complex", graph]
    for i in range(len(BASELINE_LADDER)):
        args += ["-map", f"[v{i}]"]
    args += ["-map", "0:a"] * len(BASELINE_LADDER)
    args += [
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-g",
        "60",
        "-keyint_min",
        "60",
        "-sc_threshold",
        "0",
        "-flags",
        "+cgop",
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-ac",
        "2",
    ]
    for i, (_, kbps) in enumerate(BASELINE_LADDER):
        args += [f"-maxrate:v:{i}", f"{kbps}k", f"-bufsize:v:{i}", f"{2 * kbps}k"]
    variants = " ".join(f"v:{i},a:{i},name:{h}" for i, (h, _) in enumerate(BASELINE_LADDER))
    args += [*_hls_options("%v-fragmented.mp4"), "-var_stream_map", variants, "%v.m3u8"]
    await _ffmpeg(*args, cwd=out)


async def shoal_transcode_hls(bench: Bench) -> None:
    """(c) transcoding.transcode_hls with the plan for the clip (same four heights)."""
    plan = await transcoding.plan_hls(bench.info, transcoding.LadderSettings(heights=BENCH_HEIGHTS))
    await transcoding.transcode_hls(bench.source, bench.fresh("shoal"), plan, prefix="bench", nice=0)


async def shoal_end_to_end(bench: Bench) -> Measurement:
    """(d) A real ``shoal serve`` (embedded mode): upload through the API until ``published``.

    The clock runs from the upload request to the published state (probe, transcode, thumbnail,
    storyboard, manifest, torrents); CPU is what the server process and its ffmpeg children
    spent in that window (from /proc). Starting the server and creating the user are not timed.
    """
    data = bench.fresh("e2e")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = serve_env(
        data,
        port,
        transcoding_resolutions=",".join(str(h) for h in BENCH_HEIGHTS),
        transcoding_nice=0,
        log_level=os.environ.get("BENCH_SHOAL_LOG_LEVEL", "WARNING"),
    )
    shoal = [sys.executable, "-m", "instance.cli"]
    password = "bench-password"
    create = await asyncio.create_subprocess_exec(
        *shoal,
        "user",
        "create",
        "--admin",
        "bench",
        "--password",
        password,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await create.communicate()
    if create.returncode != 0:
        raise RuntimeError(f"shoal user create failed: {stderr.decode()[-2000:]}")
    server = await asyncio.create_subprocess_exec(*shoal, "serve", env=env, cwd=ROOT)
    try:
        await wait_http(f"{base}/api/v1/config")
        async with aiohttp.ClientSession(base) as http:
            bench_user = await ApiClient(http, "").logged_in("bench", password)
            auth = {"Authorization": f"Bearer {bench_user.token}"}
            channel = await channel_of(bench_user)

            cpu_before = _tree_cpu(server.pid)
            started = time.perf_counter()
            with bench.source.open("rb") as fh:
                upload = aiohttp.FormData()
                upload.add_field("channelId", str(channel))
                upload.add_field("name", "bench")
                upload.add_field("videofile", fh, filename=bench.source.name, content_type="video/mp4")
                async with http.post("/api/v1/videos/upload", data=upload, headers=auth) as resp:
                    if resp.status != 200:
                        raise RuntimeError(f"upload failed: {resp.status} {await resp.text()}")
                    uuid = (await resp.json())["video"]["uuid"]
            uploaded = time.perf_counter() - started
            while True:
                async with http.get(f"/api/v1/videos/{uuid}", headers=auth) as resp:
                    video = await resp.json()
                label = video["state"]["label"].lower()
                if label == "published":
                    break
                if video.get("failureReason"):
                    raise RuntimeError(f"processing failed: {video['failureReason']}")
                await asyncio.sleep(0.1)
            wall = time.perf_counter() - started
            cpu = _tree_cpu(server.pid) - cpu_before
            print(f"  (d): the upload was answered after {uploaded:.2f} s", flush=True)
    finally:
        server.terminate()
        await server.wait()
    return Measurement(wall, cpu)


APPROACHES: list[tuple[str, Approach]] = [
    ("(a) one ffmpeg per rung, sequential (PeerTube)", peertube_per_rung),
    ("(b) one ffmpeg, split=4 + scale from source", plain_single_pass),
    ("(c) Shoal transcode_hls (plan + one ffmpeg)", shoal_transcode_hls),
    ("(d) Shoal end to end: upload → published (`shoal serve`)", shoal_end_to_end),
]


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process and of the children it has waited for (utime+stime+cutime+cstime)
    plus those of its children still running (an ffmpeg in progress)."""
    tick = os.sysconf("SC_CLK_TCK")

    def stat(p: int) -> list[str]:
        raw = Path(f"/proc/{p}/stat").read_text()
        return raw[raw.rindex(")") + 2 :].split()

    total = sum(int(v) for v in stat(pid)[11:15]) / tick
    for child in Path(f"/proc/{pid}/task").glob("*/children"):
        for cpid in child.read_text().split():
            try:
                total += _tree_cpu(int(cpid))
            except (OSError, ValueError):
                pass
    return total


async def measure(approach: Approach, bench: Bench) -> Measurement:
    """Wall and child CPU seconds of one run, and the CPU other processes took meanwhile."""
    busy_before = _machine_busy()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    own = await approach(bench)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    self_after = resource.getrusage(resource.RUSAGE_SELF)
    busy_after = _machine_busy()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    ours = cpu + (self_after.ru_utime - self_before.ru_utime) + (self_after.ru_stime - self_before.ru_stime)
    others = None
    if busy_before is not None and busy_after is not None:
        others = max(0.0, busy_after - busy_before - ours)
    if own is not None:  # an approach that times its own window (the end-to-end run)
        return Measurement(own.wall, own.cpu, others)
    return Measurement(wall, cpu, others)


async def _wait_until_quiet(max_others: float, longest: float = 600.0) -> None:
    """Wait (up to ``longest`` seconds) until other processes leave the CPUs nearly idle."""
    waited = 0.0
    while waited < longest:
        before = _machine_busy()
        await asyncio.sleep(2.0)
        after = _machine_busy()
        waited += 2.0
        if before is None or after is None or (after - before) / 2.0 <= max_others:
            return


def _machine_busy() -> float | None:
    """CPU seconds the whole machine has spent busy (Linux /proc/stat), or None."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the source clip")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each approach")
    parser.add_argument("--work", type=Path, help="keep sources and outputs in this directory")
    parser.add_argument(
        "--max-others",
        type=float,
        default=0.1,
        help="a run during which other processes used more CPU than this fraction of its "
        "wall time is measured again",
    )
    parser.add_argument("--retries", type=int, default=3, help="new attempts of a busy run")
    parser.add_argument(
        "--bitrates",
        default="8M,12M",
        help="video bitrates of the source clips, one table each (8M fits the 1080p rung, "
        "so its video is copied; 12M does not)",
    )
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="shoal-bench-"))
    try:
        tables = []
        for bitrate in args.bitrates.split(","):
            tables.append(await bench_source(args, work, bitrate))
        for table in tables:
            print()
            print(table)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


async def bench_source(args: argparse.Namespace, work: Path, bitrate: str) -> str:
    """Every approach, interleaved over the rounds, on one source; returns its table."""
    print(f"making the {bitrate}b/s source clip ...", flush=True)
    source = media.landscape_1080p30(work / "media", seconds=args.seconds, bitrate=bitrate)
    info = await transcoding.probe(source)
    bench = Bench(source, info, work)
    plan = await transcoding.plan_hls(info, transcoding.LadderSettings(heights=BENCH_HEIGHTS))
    description = _describe(info, plan)
    print(description, flush=True)

    results: dict[str, list[Measurement]] = {name: [] for name, _ in APPROACHES}
    for round_number in range(1, args.rounds + 1):
        # Alternate the order (abc, cba, ...) so drifting load from other tenants
        # of the machine does not always fall on the same approach.
        order = APPROACHES if round_number % 2 else APPROACHES[::-1]
        for name, approach in order:
            for attempt in range(1, args.retries + 2):
                await _wait_until_quiet(args.max_others)
                m = await measure(approach, bench)
                others = "?" if m.others is None else f"{m.others:.1f} s"
                print(
                    f"round {round_number}: {name}: {m.wall:.1f} s wall, {m.cpu:.1f} s CPU "
                    f"(other processes: {others} CPU meanwhile)",
                    flush=True,
                )
                if m.others is None or m.others <= args.max_others * m.wall:
                    break
                if attempt <= args.retries:
                    print("  the machine was busy: measuring again", flush=True)
            results[name].append(m)
    return f"{description}\n\n{_table(results, info.duration)}"


def _table(results: dict[str, list[Measurement]], duration: float) -> str:
    """Medians per approach; ratios are medians of the per-round ratios against (a)."""
    names = list(results)
    base = results[names[0]]
    lines = [
        "| approach | wall | CPU | speed vs (a) | CPU vs (a) | realtime | others' CPU |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        runs = results[name]
        wall = statistics.median(m.wall for m in runs)
        cpu = statistics.median(m.cpu for m in runs)
        speed = statistics.median(b.wall / m.wall for b, m in zip(base, runs, strict=True))
        cost = statistics.median(m.cpu / b.cpu for b, m in zip(base, runs, strict=True))
        realtime = duration / wall
        seen = [m.others for m in runs if m.others is not None]
        others = f"{statistics.median(seen):.1f} s" if seen else "?"
        lines.append(
            f"| {name} | {wall:.1f} s | {cpu:.1f} s | {speed:.2f}× | {cost:.2f}× "
            f"| {realtime:.2f}× | {others} |"
        )
    return "\n".join(lines)


def _describe(info: transcoding.MediaInfo, plan: transcoding.Plan) -> str:
    ffmpeg_version = subprocess.run(
        ["ffmpeg", "-version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    rungs = ", ".join(
        f"{r.resolution}p " + ("copied" if r.copy else f"@{r.bitrate / 1e6:.2f} Mb/s") for r in plan.rungs
    )
    return (
        f"machine: {os.cpu_count()} CPUs, {platform.platform()}, Python "
        f"{platform.python_version()}\n{ffmpeg_version}\n"
        f"source: {info.duration:.0f} s {info.width}x{info.height} {info.fps:g} fps, "
        f"video {info.video_bitrate / 1e6:.1f} Mb/s {info.video_codec}, audio {info.audio_codec}\n"
        f"baseline caps: {', '.join(f'{h}p@{k / 1000:.1f} Mb/s' for h, k in BASELINE_LADDER)}\n"
        f"Shoal plan: {rungs}; audio {'copied' if plan.audio and plan.audio.copy else 'AAC'}"
    )


def _hls_options(segment_name: str) -> list[str]:
    return [
        "-f",
        "hls",
        "-hls_time",
        "4",
        "-hls_playlist_type",
        "vod",
        "-hls_segment_type",
        "fmp4",
        "-hls_flags",
        "single_file",
        "-hls_segment_filename",
        segment_name,
    ]


async def _ffmpeg(*args: str, cwd: Path) -> None:
    # Like transcode_hls: the child dies with us (setpriv --pdeathsig), no orphan ffmpeg.
    setpriv = shutil.which("setpriv")
    guard = [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []
    proc = await asyncio.create_subprocess_exec(
        *guard,
        "ffmpeg",
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-y",
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {stderr.decode()[-2000:]}")


if __name__ == "__main__":
    asyncio.run(main())
