"""Fixtures: real Shoal instances on loopback, in the embedded or the scaled mode.

``SHOAL_TEST_BACKEND=embedded`` (default): SQLite files and local storage.
``SHOAL_TEST_BACKEND=scaled``: PostgreSQL (``SHOAL_TEST_DATABASE_URL``), Redis
(``SHOAL_TEST_REDIS_URL``) and S3 storage on a ``moto_server`` started here. If PostgreSQL
or Redis cannot be reached the run stops with the reason; it never skips.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis
from sqlalchemy import select

from instance import migrate
from instance.app import create_app
from instance.core import Shoal
from instance.db import Database
from instance.settings import Settings, load_settings
from instance.web.context import SHOAL
from instance.web.hotfiles import ShoalRunner
from tests.s3server import MOTO_ACCESS_KEY, MOTO_SECRET_KEY, allow_anonymous_reads, run_moto_server
from tests.support import ApiClient, create_user, free_port

BACKEND = os.environ.get("SHOAL_TEST_BACKEND", "embedded")
PG_URL = os.environ.get("SHOAL_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SHOAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SCALED = BACKEND == "scaled"
_counter = itertools.count()

for _name in [n for n in os.environ if n.startswith("SHOAL_") and not n.startswith("SHOAL_TEST_")]:
    del os.environ[_name]


class ShoalTestServer(TestServer):
    """A test server run as `shoal serve` runs the app: hot files answered before routing."""

    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        return ShoalRunner(self.app, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scaled_only: needs Redis/PostgreSQL; runs in the scaled run only")
    config.addinivalue_line("markers", "embedded_only: the embedded mode only; runs in the embedded run")
    config.addinivalue_line(
        "markers",
        "start_early(module, *args): the test's namespace scenario starts with the run (tests/netns.py)",
    )


# Tests that use no instance's database, queue or storage backend: the same in both modes, so
# they run in the embedded run only (pure media work with real ffmpeg, the conformance rules, the
# imports, settings and deploy files, the CLI on its own SQLite file, the storage contract run on
# local files and on its own S3 endpoint, the sendfile response on a bare app).
BACKEND_FREE = (
    "transcoding/",
    "federation/test_conformance.py",
    "test_architecture.py",
    "deploy/test_compose.py",
    "instance/test_settings.py",
    "instance/test_cli.py",
    "instance/test_storage.py",
    "instance/test_sendfile.py",
    "instance/test_lifecycle.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of one mode belong to that mode's run; the other run deselects them (never skips)."""
    tests = Path(__file__).resolve().parent
    for item in items:
        where = item.path.resolve().relative_to(tests).as_posix()
        if where.startswith(BACKEND_FREE):
            item.add_marker(pytest.mark.embedded_only)
    other = "embedded_only" if SCALED else "scaled_only"
    selected = [item for item in items if item.get_closest_marker(other) is None]
    deselected = [item for item in items if item.get_closest_marker(other) is not None]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the scenarios of the selected ``start_early`` tests, to run beside the others."""
    if session.config.option.collectonly:
        return
    from tests import netns

    for item in session.items:
        marker = item.get_closest_marker("start_early")
        if marker is not None:
            netns.start_early(*marker.args)


def pytest_sessionfinish(session: pytest.Session) -> None:
    from tests import netns

    netns.stop_early()


def pytest_report_header(config: pytest.Config) -> str:
    if SCALED:
        return f"shoal backend: scaled (PostgreSQL {PG_URL}, Redis {REDIS_URL}, S3 moto_server)"
    return "shoal backend: embedded (SQLite, local storage, in-process jobs)"


def pg_dsn(database: str | None = None) -> str:
    """The asyncpg DSN of the test server, optionally for another database."""
    dsn = PG_URL.replace("postgresql+asyncpg://", "postgresql://")
    if database is None:
        return dsn
    return dsn.rsplit("/", 1)[0] + "/" + database


def asyncpg_to_sqlalchemy(dsn: str) -> str:
    return "postgresql+asyncpg://" + dsn.split("://", 1)[1]


@pytest.fixture(scope="session")
def backend_services() -> Iterator[dict[str, Any]]:
    """Check (scaled mode) that PostgreSQL and Redis answer, and start moto_server for S3."""
    if not SCALED:
        yield {}
        return

    async def check() -> None:
        try:
            conn = await asyncpg.connect(pg_dsn(), timeout=5)
            await conn.close()
        except (OSError, asyncpg.PostgresError) as exc:
            pytest.exit(f"scaled test run: PostgreSQL at {PG_URL} is unreachable: {exc}", returncode=3)
        redis = Redis.from_url(REDIS_URL)
        try:
            await redis.ping()
        except OSError as exc:
            pytest.exit(f"scaled test run: Redis at {REDIS_URL} is unreachable: {exc}", returncode=3)
        finally:
            await redis.aclose()

    asyncio.run(check())
    with run_moto_server() as endpoint:
        yield {"s3_endpoint": endpoint}


@pytest.fixture(scope="session")
def template_database(tmp_path_factory: pytest.TempPathFactory, backend_services: dict) -> Iterator[str]:
    """A database migrated once per session; each test gets a copy of it."""
    if not SCALED:
        path = tmp_path_factory.mktemp("template") / "template.db"

        async def make_sqlite() -> None:
            db = Database(f"sqlite+aiosqlite:///{path}")
            await migrate.upgrade(db)
            await db.close()

        asyncio.run(make_sqlite())
        yield str(path)
        return
    name = f"shoal_tpl_{os.getpid()}"

    async def make_pg() -> None:
        conn = await asyncpg.connect(pg_dsn())
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        db = Database(asyncpg_to_sqlalchemy(pg_dsn(name)))
        await migrate.upgrade(db)
        await db.close()

    async def drop_pg() -> None:
        conn = await asyncpg.connect(pg_dsn())
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(make_pg())
    yield name
    asyncio.run(drop_pg())


@dataclass
class Backend:
    """Where one test instance keeps its data; ``cleanup`` removes it."""

    overrides: dict[str, Any]
    cleanup: Callable[[], Awaitable[None]]


async def make_backend(template: str, data_dir: Path, services: dict[str, Any]) -> Backend:
    """A fresh database copied from the template (and a bucket and Redis prefix when scaled)."""
    tag = f"{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    data_dir.mkdir(parents=True, exist_ok=True)
    if not SCALED:
        db_path = data_dir / "shoal.db"
        shutil.copyfile(template, db_path)

        async def nothing() -> None:
            return None

        return Backend({"data_dir": data_dir, "database_url": f"sqlite+aiosqlite:///{db_path}"}, nothing)
    name = f"shoal_t_{tag}"
    conn = await asyncpg.connect(pg_dsn())
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await conn.close()
    bucket = f"shoal-{tag.replace('_', '-')}"
    prefix = f"shoaltest:{tag}"

    async def drop() -> None:
        conn = await asyncpg.connect(pg_dsn())
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
        redis = Redis.from_url(REDIS_URL)
        try:
            keys = [key async for key in redis.scan_iter(f"{prefix}*")]
            if keys:
                await redis.delete(*keys)
        finally:
            await redis.aclose()

    from instance.storage import S3Options, storage_from_url

    storage = storage_from_url(
        f"s3://{bucket}/media",
        s3=S3Options(
            endpoint_url=services["s3_endpoint"],
            region="us-east-1",
            access_key=MOTO_ACCESS_KEY,
            secret_key=MOTO_SECRET_KEY,
        ),
    )
    await storage.ensure_bucket()
    await storage.close()
    folders = ("hls", "thumbnails", "previews", "storyboards", "torrents")
    public = tuple(f"media/{folder}/" for folder in folders)
    await asyncio.to_thread(allow_anonymous_reads, services["s3_endpoint"], bucket, public)
    return Backend(
        {
            "data_dir": data_dir,
            "database_url": asyncpg_to_sqlalchemy(pg_dsn(name)),
            "redis_url": REDIS_URL,
            "redis_prefix": prefix,
            "storage_url": f"s3://{bucket}/media",
            "s3_endpoint_url": services["s3_endpoint"],
            "s3_access_key": MOTO_ACCESS_KEY,
            "s3_secret_key": MOTO_SECRET_KEY,
        },
        drop,
    )


@dataclass
class Instance:
    """A running Shoal instance for a test: its settings, resources, URL and an anonymous client."""

    settings: Settings
    app: web.Application
    server: ShoalTestServer
    url: str
    client: ApiClient
    worker: Any = None

    @property
    def shoal(self) -> Shoal:
        return self.app[SHOAL]

    async def create_user(self, username: str, *, password: str = "password123", role: Any = None, **kw: Any):
        """Create a user directly through the service layer (fast path for tests)."""
        return await create_user(self.shoal, username, password=password, role=role, **kw)

    async def user_client(
        self, username: str, *, password: str = "password123", role: Any = None
    ) -> ApiClient:
        """Create a user and return a client logged in as them."""
        await self.create_user(username, password=password, role=role)
        token = await self.client.login(username, password)
        return self.client.as_user(token)


InstanceFactory = Callable[..., Awaitable[Instance]]


async def start_worker(settings: Settings) -> contextlib.AsyncExitStack:
    """What `shoal worker` runs — an arq consumer over its own resources — inside the test process."""
    from instance.core import open_shoal
    from instance.jobs import ArqQueue

    stack = contextlib.AsyncExitStack()
    shoal = await stack.enter_async_context(open_shoal(settings))
    queue = ArqQueue(shoal, consume=True)
    shoal.jobs = queue
    await queue.start()
    stack.push_async_callback(queue.close)
    return stack


@pytest.fixture
async def make_instance(
    tmp_path: Path, template_database: str, backend_services: dict[str, Any]
) -> AsyncIterator[InstanceFactory]:
    """Start real Shoal instances on loopback ports: ``await make_instance(**setting_overrides)``."""
    started: list[tuple[Instance, Backend]] = []
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))

    async def start(name: str | None = None, *, worker: bool = True, **overrides: Any) -> Instance:
        name = name or f"i{len(started)}"
        port = overrides.pop("port", None) or free_port()
        backend = await make_backend(template_database, tmp_path / name, backend_services)
        values = {
            **backend.overrides,
            "public_url": f"http://127.0.0.1:{port}",
            "listen": f"127.0.0.1:{port}",
            "federation_allow_hosts": "127.0.0.1",
            "secret_key": f"test-secret-{name}",
            # An embedded instance seeds by default; tests that need the seeder ask for it
            # (seeder_enabled=True, or None for the default), so that the others' trackers and
            # storage see only what the test does.
            "seeder_enabled": False,
            **overrides,
        }
        settings = load_settings(**values)
        app = create_app(settings)
        server = ShoalTestServer(app, host="127.0.0.1", port=port)
        await server.start_server()
        url = f"http://127.0.0.1:{port}"
        instance = Instance(settings, app, server, url, ApiClient(session, url))
        started.append((instance, backend))
        if settings.workers_mode == "external" and worker:
            instance.worker = await start_worker(settings)
        return instance

    try:
        yield start
        for instance, _ in started:
            await assert_sent_conforms(instance)
    finally:
        for instance, backend in reversed(started):
            if instance.worker is not None:
                await instance.worker.aclose()
            await instance.server.close()
            await backend.cleanup()
        await session.close()


async def assert_sent_conforms(instance: Instance) -> None:
    """Every activity the instance queued for delivery in the test passes PeerTube 6.3's rules
    (:mod:`federation.conformance`): what PeerTube would refuse fails the test that sent it.
    Activities of the delivery tests' own made-up types are not ActivityPub: skipped."""
    from federation import conformance
    from instance.models import DeliveryBody

    async with instance.shoal.db.read() as session:
        bodies = [bytes(body) for body in await session.scalars(select(DeliveryBody.body))]
    for body in bodies:
        activity = json.loads(body)
        if str(activity.get("type", "")).startswith("ShoalTest"):
            continue
        found = conformance.problems(activity)
        assert not found, f"{instance.url} sent {activity.get('type')} {activity.get('id')}: {found}"


@pytest.fixture
async def instance(make_instance: InstanceFactory) -> Instance:
    """One running instance with default settings."""
    return await make_instance()
