"""`shoal worker` as a real subprocess: refusals, a job rung by the web process, kills and stops.

The refusals run in both modes; the rest consume the Redis queue and run in the scaled mode.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from instance.core import Shoal
from instance.jobs import queue_stats, submit
from instance.models import WorkItem
from instance.settings import Settings
from tests.conftest import Instance, InstanceFactory


@pytest.fixture
async def instance(make_instance: InstanceFactory) -> Instance:
    """An instance without the fixtures' own worker: these tests run their own consumers."""
    return await make_instance(worker=False)


SHOAL = Path(sys.executable).parent / "shoal"
scaled_only = pytest.mark.scaled_only


def clean_env(**values: str) -> dict[str, str]:
    """This environment without any SHOAL_ variable, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    env.update(values)
    return env


def worker_env(settings: Settings) -> dict[str, str]:
    """What a worker beside the test instance is configured with."""
    assert settings.database_url and settings.redis_url and settings.secret_key
    return clean_env(
        SHOAL_DATABASE_URL=settings.database_url,
        SHOAL_REDIS_URL=settings.redis_url,
        SHOAL_REDIS_PREFIX=settings.redis_prefix,
        SHOAL_DATA_DIR=str(settings.data_dir),
        SHOAL_SECRET_KEY=settings.secret_key.get_secret_value(),
        SHOAL_JOBS_SWEEP_INTERVAL="0.3",
        SHOAL_LOG_FORMAT="json",
    )


@dataclass
class WorkerProcess:
    """A `shoal worker` subprocess and the file its output goes to."""

    process: asyncio.subprocess.Process
    log: Path
    worker_id: str = ""

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def stopped(self, seconds: float = 15) -> int:
        async with asyncio.timeout(seconds):
            return await self.process.wait()


SpawnWorker = Callable[[Instance], Awaitable[WorkerProcess]]


@pytest.fixture
async def spawn_worker(tmp_path: Path) -> AsyncIterator[SpawnWorker]:
    """Start `shoal worker` beside an instance and wait until its heartbeat is in Redis."""
    started: list[WorkerProcess] = []

    async def spawn(instance: Instance) -> WorkerProcess:
        log = tmp_path / f"worker-{len(started)}.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                str(SHOAL),
                "worker",
                env=worker_env(instance.settings),
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
        worker = WorkerProcess(process, log)
        started.append(worker)
        worker.worker_id = await live_worker_id(instance.shoal, worker)
        return worker

    try:
        yield spawn
    finally:
        for worker in started:
            if worker.process.returncode is None:
                worker.process.kill()
                await worker.process.wait()


async def live_worker_id(shoal: Shoal, worker: WorkerProcess, seconds: float = 30) -> str:
    """The id of ``worker`` once its heartbeat shows up in the admin's list of workers."""
    assert shoal.jobs is not None
    async with asyncio.timeout(seconds):
        while True:
            if worker.process.returncode is not None:
                pytest.fail(f"shoal worker exited with {worker.process.returncode}:\n{worker.output()}")
            for live in await shoal.jobs.workers():
                if live["pid"] == worker.process.pid:
                    return live["id"]
            await asyncio.sleep(0.1)


async def row_when(
    shoal: Shoal, item_id: int, check: Callable[[WorkItem], bool], seconds: float = 20
) -> WorkItem:
    """Poll row ``item_id`` until ``check`` holds."""
    async with asyncio.timeout(seconds):
        while True:
            async with shoal.db.read() as session:
                item = await session.get(WorkItem, item_id)
                session.expunge_all()
            assert item is not None
            if check(item):
                return item
            await asyncio.sleep(0.05)


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        str(SHOAL), *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    async with asyncio.timeout(30):
        output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


# Refusals (both modes) -------------------------------------------------------


async def test_worker_refuses_to_start_without_redis(tmp_path: Path) -> None:
    status, output = await run_cli("worker", env=clean_env(SHOAL_DATA_DIR=str(tmp_path)))
    assert status == 2
    assert "SHOAL_REDIS_URL is not set" in output


async def test_worker_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    env = clean_env(
        SHOAL_DATA_DIR=str(tmp_path),
        SHOAL_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}",
        SHOAL_REDIS_URL="redis://127.0.0.1:1/0",
    )
    status, output = await run_cli("worker", env=env)
    assert status == 1
    assert "the database is at revision (empty)" in output
    assert "run `shoal db upgrade` first" in output


# Consuming (scaled) ----------------------------------------------------------


@scaled_only
async def test_worker_runs_a_job_rung_by_the_web_process(
    instance: Instance, spawn_worker: SpawnWorker
) -> None:
    worker = await spawn_worker(instance)
    stats = await queue_stats(instance.shoal)
    [live] = [w for w in stats["workers"] if w["id"] == worker.worker_id]
    assert live["backend"] == "arq" and live["concurrency"] == instance.settings.jobs_concurrency

    item = await submit(instance.shoal, "noop", "doctor")
    row = await row_when(instance.shoal, item.id, lambda r: r.state in ("succeeded", "failed"))
    assert (row.state, row.attempts, row.locked_by) == ("succeeded", 1, worker.worker_id)

    worker.process.send_signal(signal.SIGTERM)
    assert await worker.stopped() == 0, worker.output()
    assert f"worker {worker.worker_id} stopped" in worker.output()
    assert worker.worker_id not in [w["id"] for w in await instance.shoal.jobs.workers()]


@scaled_only
async def test_a_job_of_a_killed_worker_is_finished_by_another(
    instance: Instance, spawn_worker: SpawnWorker
) -> None:
    first = await spawn_worker(instance)
    item = await submit(instance.shoal, "sleep", "slow", payload={"seconds": 1.5})
    await row_when(instance.shoal, item.id, lambda r: r.state == "running" and r.locked_by == first.worker_id)
    first.process.kill()
    assert await first.stopped() == -signal.SIGKILL

    second = await spawn_worker(instance)
    row = await row_when(instance.shoal, item.id, lambda r: r.state in ("succeeded", "failed"), seconds=30)
    assert (row.state, row.attempts, row.locked_by) == ("succeeded", 2, second.worker_id), second.output()


@scaled_only
async def test_sigterm_releases_the_running_job(instance: Instance, spawn_worker: SpawnWorker) -> None:
    worker = await spawn_worker(instance)
    item = await submit(instance.shoal, "sleep", "slow", payload={"seconds": 60})
    await row_when(instance.shoal, item.id, lambda r: r.state == "running")
    worker.process.send_signal(signal.SIGTERM)
    assert await worker.stopped() == 0, worker.output()
    row = await row_when(instance.shoal, item.id, lambda r: True)
    assert (row.state, row.attempts, row.locked_until) == ("pending", 0, None)
    assert "released for another worker" in worker.output()
