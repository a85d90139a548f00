"""Run a scenario module inside a throwaway network namespace (``tests/netns-run.sh``).

WebRTC never uses loopback, so WebRTC scenarios run in a namespace with a real interface; the
module prints its result as JSON on its last line of output.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiohttp import web

    from instance.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
HOST = "198.18.0.1"
"""The namespace's own address (its veth): instances inside bind here, never to loopback."""


def free_port() -> int:
    """A free TCP port on :data:`HOST`."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def namespace_settings(workdir: Path, secret_key: str, **overrides: Any) -> Settings:
    """Settings of an embedded instance listening on :data:`HOST` (a free port), its data in
    ``workdir``; ``overrides`` are more settings (ladder, seeder, tracker rate ...)."""
    from instance.settings import load_settings

    port = free_port()
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {
        "public_url": f"http://{HOST}:{port}",
        "listen": f"{HOST}:{port}",
        "data_dir": workdir / "data",
        "database_url": f"sqlite+aiosqlite:///{workdir / 'shoal.db'}",
        "secret_key": secret_key,
        "federation_allow_hosts": HOST,
        "rate_limit_tracker": "1000/60",
    }
    return load_settings(**{**values, **overrides})


@contextlib.asynccontextmanager
async def namespace_instance(
    settings: Settings, before_start: Callable[[web.Application], None] | None = None
) -> AsyncIterator[web.Application]:
    """The app of ``settings`` (:func:`namespace_settings`) served on :data:`HOST` for the block;
    ``before_start`` may add hooks before the app is frozen."""
    from aiohttp import web

    from instance.app import create_app

    app = create_app(settings)
    if before_start is not None:
        before_start(app)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, HOST, settings.listen_port).start()
        yield app
    finally:
        await runner.cleanup()


def start_in_netns(module: str, workdir: Path, *args: str) -> subprocess.Popen[str]:
    """Start ``python -m module workdir args…`` inside the namespace; :func:`result_of` waits
    for it."""
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [str(ROOT / "tests" / "netns-run.sh"), sys.executable, "-m", module, str(workdir), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def result_of(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    """The scenario's last output line, parsed, once it has ended (killed after ``timeout`` s)."""
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        raise AssertionError(f"scenario still running after {timeout} s:\n{stderr[-6000:]}") from None
    assert proc.returncode == 0, f"scenario failed ({proc.returncode}):\n{stderr[-6000:]}"
    return json.loads(stdout.strip().splitlines()[-1])


def run_in_netns(module: str, workdir: Path, timeout: float, *args: str) -> dict[str, Any]:
    """``python -m module workdir args…`` inside the namespace; its last output line, parsed."""
    return result_of(start_in_netns(module, workdir, *args), timeout)


_EARLY: dict[tuple[str, ...], tuple[subprocess.Popen[str], Path]] = {}


def start_early(module: str, *args: str) -> None:
    """Start the scenario ``module`` now, in the background, for the test that asks for its result
    later (:func:`early_result`): a scenario that mostly waits (on WebRTC, on a remote peer)
    then overlaps the tests run meanwhile."""
    if (module, *args) not in _EARLY:
        workdir = Path(tempfile.mkdtemp(prefix=f"shoal-{module.rsplit('.', 1)[-1]}-"))
        _EARLY[(module, *args)] = (start_in_netns(module, workdir / "run", *args), workdir)


def early_result(module: str, timeout: float, *args: str) -> dict[str, Any]:
    """The result of the scenario started by :func:`start_early` (started now if it was not)."""
    start_early(module, *args)
    proc, workdir = _EARLY.pop((module, *args))
    try:
        return result_of(proc, timeout)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def stop_early() -> None:
    """Kill the scenarios started early that no test collected (an interrupted run)."""
    for proc, workdir in _EARLY.values():
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        shutil.rmtree(workdir, ignore_errors=True)
    _EARLY.clear()
