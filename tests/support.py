"""What the tests and the benchmarks share: a ``shoal`` command as a process, waiting until an
instance answers, a small JSON client that logs in, and an upload taken to ``published``.

Importable without pytest: ``bench/`` scripts put the repository root on ``sys.path`` and
``from tests import support``. Nothing here reads or changes this process's environment
(``tests/conftest.py`` drops the ``SHOAL_`` variables of the test run; a process started here gets
only the settings it is given).
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

SHOAL_CLI = str(Path(sys.executable).parent / "shoal")
"""The ``shoal`` command of this virtual environment."""

PUBLISHED, FAILED = 1, 7
"""Video states of the API (``state.id``) at which processing has ended."""

T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def serve_env(data_dir: Path, port: int, **settings: Any) -> dict[str, str]:
    """The environment of a ``shoal`` process: this process's, without any ``SHOAL_`` variable,
    plus an instance on ``127.0.0.1:port`` keeping its data in ``data_dir``, and ``settings`` by
    name (``jobs_sweep_interval=0.5`` is ``SHOAL_JOBS_SWEEP_INTERVAL=0.5``)."""
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    env |= {"SHOAL_DATA_DIR": str(data_dir), "SHOAL_LISTEN": f"127.0.0.1:{port}", "SHOAL_PUBLIC_URL": url}
    env |= {f"SHOAL_{name.upper()}": str(value) for name, value in settings.items()}
    return env


def backend_env(settings: Any, data_dir: Path | None = None, **more: Any) -> dict[str, str]:
    """The environment of another process of the instance whose ``Settings`` are ``settings``
    (a ``shoal worker``, ``seeder`` or second ``serve``): its database, storage, Redis, S3 and
    secret, its own ``data_dir`` (when given), and ``more`` settings by name as in :func:`serve_env`."""

    def secret(value: Any) -> str:
        return value.get_secret_value() if value is not None else ""

    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    if data_dir is not None:
        env["SHOAL_DATA_DIR"] = str(data_dir)
    env |= {
        "SHOAL_DATABASE_URL": settings.effective_database_url,
        "SHOAL_STORAGE_URL": settings.effective_storage_url,
        "SHOAL_PUBLIC_URL": settings.public_url,
        "SHOAL_SECRET_KEY": secret(settings.secret_key),
    }
    if settings.redis_url:
        env |= {"SHOAL_REDIS_URL": settings.redis_url, "SHOAL_REDIS_PREFIX": settings.redis_prefix}
    if settings.s3_endpoint_url:
        env |= {
            "SHOAL_S3_ENDPOINT_URL": settings.s3_endpoint_url,
            "SHOAL_S3_ACCESS_KEY": secret(settings.s3_access_key),
            "SHOAL_S3_SECRET_KEY": secret(settings.s3_secret_key),
        }
    env |= {f"SHOAL_{name.upper()}": str(value) for name, value in more.items()}
    return env


def start_process(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``argv`` (``["serve"]`` and other ``shoal`` subcommands are run with
    :data:`SHOAL_CLI`; an absolute program is run as it is), its output appended to ``log``."""
    if not os.path.isabs(argv[0]):
        argv = [SHOAL_CLI, *argv]
    with log.open("ab") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not ended within ``timeout`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def wait_http(url: str, seconds: float = 60) -> None:
    """Until ``url`` answers 200 (TLS certificates unchecked: the benchmarks' nginx is self-signed)."""
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {seconds} s")


async def wait_for(
    check: Callable[[], Awaitable[T | None]], what: str, timeout: float, interval: float = 0.2
) -> T:
    """Call ``check`` until it returns something true; return that (fail after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


class ApiClient:
    """A small JSON client for one instance; ``token`` is sent as a bearer token."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str | None = None) -> None:
        self.session = session
        self.base_url = base_url
        self.token = token

    def as_user(self, token: str | None) -> ApiClient:
        return ApiClient(self.session, self.base_url, token)

    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """Send a request; return the status and the decoded JSON body (or text, or None)."""
        headers = dict(kwargs.pop("headers", {}) or {})
        if self.token and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {self.token}"
        async with self.session.request(method, self.base_url + path, headers=headers, **kwargs) as resp:
            raw = await resp.read()
            if not raw:
                return resp.status, None
            if resp.content_type in ("application/json", "application/problem+json"):
                return resp.status, await resp.json(content_type=None)
            return resp.status, raw.decode(errors="replace")

    async def get(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        return await self.request("PUT", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        return await self.request("DELETE", path, **kwargs)

    async def login(self, username: str, password: str) -> str:
        """Password grant through the real OAuth endpoints; returns the access token."""
        status, client = await self.get("/api/v1/oauth-clients/local")
        assert status == 200, client
        status, body = await self.post(
            "/api/v1/users/token",
            data={
                "client_id": client["client_id"],
                "client_secret": client["client_secret"],
                "grant_type": "password",
                "username": username,
                "password": password,
            },
        )
        assert status == 200, body
        return body["access_token"]

    async def logged_in(self, username: str, password: str) -> ApiClient:
        """This client, logged in as ``username``."""
        return self.as_user(await self.login(username, password))


async def create_user(
    shoal: Any, username: str, *, password: str = "password123", role: Any = None, **kw: Any
) -> Any:
    """Create a user directly through the service layer of a running ``Shoal`` (the fast path)."""
    from instance.models import Role
    from instance.services.users import create_user as create

    async with shoal.db.write() as session:
        return await create(
            shoal,
            session,
            username=username,
            email=kw.pop("email", f"{username}@example.org"),
            password=password,
            role=role if role is not None else Role.USER,
            **kw,
        )


async def new_user_client(
    shoal: Any, http: aiohttp.ClientSession, base_url: str, username: str, *, password: str = "password123"
) -> ApiClient:
    """Create a user of the instance at ``base_url`` (its ``Shoal`` in this process) and return a
    client logged in as them."""
    await create_user(shoal, username, password=password)
    return await ApiClient(http, base_url).logged_in(username, password)


async def channel_of(client: ApiClient) -> int:
    """The id of the client's user's first channel."""
    status, me = await client.get("/api/v1/users/me")
    assert status == 200, me
    return me["videoChannels"][0]["id"]


async def upload(client: ApiClient, path: Path, name: str, **fields: Any) -> dict[str, Any]:
    """Multipart upload through the API; returns ``{id, uuid, shortUUID}``."""
    form = aiohttp.FormData()
    form.add_field("channelId", str(await channel_of(client)))
    form.add_field("name", name)
    for key, value in fields.items():
        form.add_field(key, str(value))
    form.add_field("videofile", io.BytesIO(path.read_bytes()), filename=path.name)
    status, body = await client.post("/api/v1/videos/upload", data=form)
    assert status == 200, body
    return body["video"]


async def wait_done(client: ApiClient, video_id: int | str, timeout: float = 180) -> dict[str, Any]:
    """Poll the video until it is published or failed; returns its details."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, body = await client.get(f"/api/v1/videos/{video_id}")
        assert status == 200, body
        if body["state"]["id"] in (PUBLISHED, FAILED):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"video {video_id} still processing after {timeout} s: {body.get('state')}")


async def publish(
    client: ApiClient, path: Path, name: str, timeout: float = 180, **fields: Any
) -> dict[str, Any]:
    """Upload ``path`` and wait until it is published (failing otherwise); its details."""
    video = await upload(client, path, name, **fields)
    details = await wait_done(client, video["id"], timeout)
    assert details["state"]["id"] == PUBLISHED, details.get("failureReason") or details["state"]
    return details
