"""`shoal doctor`: check a deployment and say what is wrong and how to fix it.

Each check talks to the real thing the instance depends on — the database (reachable and
migrated), Redis, storage (a write, read back and delete), ffmpeg (version and the libx264
and aac encoders), the public URL, the clock against the database's, when jobs run in
`shoal worker` processes a round trip of the built-in ``noop`` job through the queue, and
videos or mirrors left unfinished with no job on them. The
command prints one line per check and exits 1 when any check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import aiohttp
from sqlalchemy import text

from . import migrate
from .settings import Settings

if TYPE_CHECKING:
    from .core import Shoal

MAX_CLOCK_SKEW = 5.0
REQUIRED_ENCODERS = ("libx264", "aac")


@dataclass
class Finding:
    """The outcome of one check: ``ok``, what was seen, and (when not ok) how to fix it."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    skipped: bool = False


class CheckFailed(Exception):
    """A check found a problem; carries what is wrong and the fix."""

    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fix = fix


class Skipped(Exception):
    """A check does not apply to this configuration; the message says why."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `shoal doctor`."""
    parser.add_argument(
        "--timeout", type=float, default=20.0, help="seconds to wait for each network check and the job"
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["database", "redis", "storage", "ffmpeg", "public-url", "clock", "jobs", "stuck"],
        help="skip a check (repeatable)",
    )


async def check_database(shoal: Shoal, timeout: float) -> str:
    try:
        async with asyncio.timeout(timeout):
            async with shoal.db.read() as session:
                await session.execute(text("SELECT 1"))
            current = await migrate.current_revisions(shoal.db)
    except Exception as exc:
        raise CheckFailed(
            f"cannot reach {shoal.settings.effective_database_url.split('@')[-1]}: {exc!r}",
            "check SHOAL_DATABASE_URL (host, port, user, password, database) and that the server runs",
        ) from exc
    heads = migrate.head_revisions()
    if current != heads:
        have = ",".join(sorted(current)) or "(empty)"
        raise CheckFailed(
            f"the database is at revision {have}, this code needs {migrate.head_revision()}",
            "run `shoal db upgrade`",
        )
    return f"reachable, migrated ({migrate.head_revision()})"


async def check_redis(shoal: Shoal, timeout: float) -> str:
    if shoal.redis is None:
        raise Skipped("not configured (embedded mode: jobs and rate limits in process)")
    try:
        async with asyncio.timeout(timeout):
            await shoal.redis.ping()
            info = await shoal.redis.info("server")
    except Exception as exc:
        raise CheckFailed(
            f"cannot reach Redis: {exc!r}", "check SHOAL_REDIS_URL and that redis-server runs"
        ) from exc
    return f"reachable (Redis {info.get('redis_version', '?')})"


async def check_storage(shoal: Shoal, timeout: float) -> str:
    try:
        async with asyncio.timeout(timeout):
            await shoal.storage.check()
    except Exception as exc:
        fix = (
            "check SHOAL_STORAGE_URL, SHOAL_S3_ENDPOINT_URL, the S3 keys and that the bucket exists"
            if shoal.settings.effective_storage_url.startswith("s3://")
            else "check that the storage directory exists and is writable by the shoal user"
        )
        raise CheckFailed(f"{shoal.storage.describe()}: {exc}", fix) from exc
    return f"{shoal.storage.describe()}: write, read back and delete work"


async def check_ffmpeg(shoal: Shoal, timeout: float) -> str:
    fix = "install ffmpeg (Debian: `apt-get install ffmpeg`, or `deploy/system-deps.sh run`)"
    if shutil.which("ffmpeg") is None:
        raise CheckFailed("ffmpeg is not on PATH", fix)
    version = (await _run(["ffmpeg", "-hide_banner", "-version"], timeout)).splitlines()[0]
    encoders = await _run(["ffmpeg", "-hide_banner", "-encoders"], timeout)
    names = {m.group(1) for m in re.finditer(r"^\s*[VAS][A-Z.]{5}\s+(\S+)", encoders, re.MULTILINE)}
    missing = [name for name in REQUIRED_ENCODERS if name not in names]
    if missing:
        raise CheckFailed(f"{version}: missing encoders {', '.join(missing)}", fix + " built with them")
    if shutil.which("ffprobe") is None:
        raise CheckFailed(f"{version}, but ffprobe is not on PATH", fix)
    return f"{version.removeprefix('ffmpeg version ').split(' Copyright')[0]}; encoders libx264, aac"


async def _run(argv: list[str], timeout: float) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        async with asyncio.timeout(timeout):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise CheckFailed(f"{argv[0]} did not answer in {timeout:.0f} s", "check ffmpeg") from None
    return out.decode(errors="replace")


async def check_public_url(shoal: Shoal, timeout: float) -> str:
    url = shoal.url("/api/v1/config")
    fix = (
        "start `shoal serve` (and nginx), check SHOAL_PUBLIC_URL, DNS and the TLS certificate; "
        "from this machine the public URL must reach the web processes"
    )
    # A plain client: the instance's own, guarded against private addresses, would refuse an
    # instance that is public on a LAN address.
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http,
            http.get(url) as resp,
        ):
            body = await resp.read()
            if resp.status != 200:
                raise CheckFailed(f"GET {url} answered {resp.status}", fix)
            if b"serverVersion" not in body and b"instance" not in body:
                raise CheckFailed(f"GET {url} answered, but not with Shoal's config", fix)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise CheckFailed(f"GET {url} failed: {type(exc).__name__}: {exc}", fix) from exc
    return f"{url} answers 200"


async def check_clock(shoal: Shoal, timeout: float) -> str:
    if shoal.settings.is_sqlite:
        raise Skipped("SQLite shares this machine's clock")
    async with asyncio.timeout(timeout):
        async with shoal.db.read() as session:
            before = time.time()
            db_now = (await session.execute(text("SELECT now()"))).scalar_one()
            after = time.time()
    local = datetime.fromtimestamp((before + after) / 2, UTC)
    skew = (local - db_now).total_seconds()
    if abs(skew) > MAX_CLOCK_SKEW:
        raise CheckFailed(
            f"this machine's clock is {skew:+.1f} s off the database's",
            "run NTP on every machine (`timedatectl set-ntp true`, chrony or systemd-timesyncd)",
        )
    return f"{skew:+.2f} s off the database's clock"


async def check_jobs(shoal: Shoal, timeout: float) -> str:
    if shoal.settings.workers_mode != "external":
        raise Skipped("jobs run inside `shoal serve` (embedded)")
    from .jobs import ArqQueue, submit
    from .models import WorkItem, WorkState

    queue = ArqQueue(shoal, consume=False)
    previous = shoal.jobs
    try:
        await queue.start()
        shoal.jobs = queue
        workers = await queue.workers()
        if not workers:
            raise CheckFailed(
                "no `shoal worker` has a fresh heartbeat in Redis",
                "start workers (`systemctl start shoal-worker@1`, `docker compose up -d worker`)",
            )
        item = await submit(shoal, "noop", "doctor")
        deadline = time.monotonic() + timeout
        state = WorkState.PENDING
        while time.monotonic() < deadline:
            async with shoal.db.read() as session:
                row = await session.get(WorkItem, item.id)
                state = WorkState(row.state) if row is not None else WorkState.FAILED
            if state in (WorkState.SUCCEEDED, WorkState.FAILED):
                break
            await asyncio.sleep(0.2)
        if state != WorkState.SUCCEEDED:
            raise CheckFailed(
                f"a noop job is still {state.value} after {timeout:.0f} s ({len(workers)} worker(s) alive)",
                "check the worker logs (`journalctl -u 'shoal-worker@*'`) and that web and workers share "
                "SHOAL_REDIS_URL and SHOAL_REDIS_PREFIX",
            )
    finally:
        shoal.jobs = previous
        await queue.close()
    return f"noop job done by a worker ({len(workers)} alive)"


STUCK_AFTER = timedelta(minutes=10)


async def check_stuck(shoal: Shoal, timeout: float) -> str:
    """Rows left in a non-final state with no open work to move them on (their state graphs:
    :mod:`instance.models.states`), quiet for :data:`STUCK_AFTER`: local videos and mirrors."""
    from sqlalchemy import and_, cast, exists, func, select
    from sqlalchemy.types import String

    from .jobs.rows import OPEN_STATES
    from .models import Video, VideoMirror, WorkItem
    from .models.redundancy import MIRROR_STATES
    from .models.video import VIDEO_STATES

    quiet = datetime.now(UTC) - STUCK_AFTER
    found = []
    async with shoal.db.read() as session:
        for graph, model, changed, extra in (
            (VIDEO_STATES, Video, Video.state_changed_at, [Video.remote_url.is_(None)]),
            (MIRROR_STATES, VideoMirror, VideoMirror.updated_at, []),
        ):
            work = exists().where(
                WorkItem.kind == graph.work_kind,
                WorkItem.subject == cast(model.id, String),
                WorkItem.state.in_(OPEN_STATES),
            )
            stuck = await session.scalar(
                select(func.count(model.id)).where(
                    and_(model.state.in_(graph.open_states), changed < quiet, ~work, *extra)
                )
            )
            if stuck:
                found.append(f"{stuck} {graph.name}(s)")
    if found:
        raise CheckFailed(
            f"{' and '.join(found)} left in a non-final state with no job to finish them",
            "see the failed jobs on the admin page (Jobs) and retry them (POST /api/v1/jobs/<id>/retry); "
            "a row with no job at all was left by a crash: delete it (a video) or remove the mirror",
        )
    return "every unfinished video and mirror has a job on it"


CHECKS: list[tuple[str, str, Callable[[Shoal, float], Awaitable[str]]]] = [
    ("database", "database", check_database),
    ("redis", "Redis", check_redis),
    ("storage", "storage", check_storage),
    ("ffmpeg", "ffmpeg", check_ffmpeg),
    ("public-url", "public URL", check_public_url),
    ("clock", "clock", check_clock),
    ("jobs", "job queue", check_jobs),
    ("stuck", "unfinished rows", check_stuck),
]


async def diagnose(shoal: Shoal, *, timeout: float = 20.0, skip: tuple[str, ...] = ()) -> list[Finding]:
    """Run every check in order; a check that depends on a failed database is reported as such."""
    findings: list[Finding] = []
    for key, label, check in CHECKS:
        if key in skip:
            findings.append(Finding(label, True, "skipped (--skip)", skipped=True))
            continue
        if key in ("clock", "jobs", "stuck") and findings and findings[0].detail.startswith("cannot reach"):
            findings.append(Finding(label, False, "not checked: the database is not usable", "fix it first"))
            continue
        try:
            detail = await check(shoal, timeout)
        except Skipped as exc:
            findings.append(Finding(label, True, f"skipped: {exc}", skipped=True))
        except CheckFailed as exc:
            findings.append(Finding(label, False, exc.detail, exc.fix))
        except Exception as exc:
            findings.append(Finding(label, False, f"unexpected error: {exc!r}", "see the message"))
        else:
            findings.append(Finding(label, True, detail))
    return findings


def report(findings: list[Finding]) -> str:
    """The text printed for the admin."""
    lines = []
    for f in findings:
        mark = "ok  " if f.ok else "FAIL"
        lines.append(f"[{mark}] {f.name}: {f.detail}")
        if not f.ok and f.fix:
            lines.append(f"       fix: {f.fix}")
    bad = [f for f in findings if not f.ok]
    lines.append(f"{len(bad)} problem(s) found" if bad else "everything looks fine")
    return "\n".join(lines)


async def run_doctor(settings: Settings, args: argparse.Namespace) -> int:
    """`shoal doctor`: print the findings; exit 1 when anything is wrong."""
    from .core import open_shoal

    async with open_shoal(settings) as shoal:
        findings = await diagnose(shoal, timeout=args.timeout, skip=tuple(args.skip))
    print(report(findings))
    return 1 if any(not f.ok for f in findings) else 0
