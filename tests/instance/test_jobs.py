"""The durable job queue: rows are the truth, the queue is a doorbell, nothing runs twice.

Embedded mode runs jobs on the in-process queue over SQLite; scaled mode rings arq on
Redis and consumes with an arq worker in this process, over PostgreSQL. The worker
subprocess (`shoal worker`) has its own module, test_worker.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text, update

from instance.auth import issue_token
from instance.core import Shoal, open_shoal
from instance.jobs import (
    ArqQueue,
    InProcessQueue,
    JobQueue,
    PermanentFailure,
    TryAgainLater,
    UnknownJobKind,
    add_work,
    backoff_delay,
    claim_work,
    run_work,
    submit,
)
from instance.models import Role, WorkItem, utcnow
from instance.settings import Settings
from tests.conftest import SCALED, ApiClient, Instance, InstanceFactory


@pytest.fixture
def make_instance(make_instance: InstanceFactory) -> InstanceFactory:
    """The instances of these tests know the test kinds (:func:`install_test_kinds`)."""

    async def start(*args: Any, **kwargs: Any) -> Instance:
        started = await make_instance(*args, **kwargs)
        install_test_kinds(started.shoal)
        return started

    return start


@pytest.fixture
async def instance(make_instance: InstanceFactory) -> Instance:
    """An instance without the fixtures' own worker: these tests run their own consumers."""
    return await make_instance(worker=False)


EXECUTIONS: Counter[int] = Counter()
RUN_TIMES: defaultdict[int, list[float]] = defaultdict(list)
BROKEN_SUBJECTS: set[str] = set()
QUICK = {"backoff_base": timedelta(milliseconds=20), "backoff_cap": timedelta(milliseconds=80)}


async def count_job(shoal: Shoal, item: WorkItem) -> None:
    """Count the run; sleep ``payload["sleep"]`` seconds first when asked."""
    await asyncio.sleep(item.payload.get("sleep", 0))
    EXECUTIONS[item.id] += 1


async def broken_job(shoal: Shoal, item: WorkItem) -> None:
    EXECUTIONS[item.id] += 1
    RUN_TIMES[item.id].append(time.monotonic())
    raise ConnectionError("remote host down\nsecond line of detail")


async def flaky_job(shoal: Shoal, item: WorkItem) -> None:
    EXECUTIONS[item.id] += 1
    if item.attempts < 3:
        raise RuntimeError(f"flaky on attempt {item.attempts}")


async def permanent_job(shoal: Shoal, item: WorkItem) -> None:
    EXECUTIONS[item.id] += 1
    if item.subject in BROKEN_SUBJECTS:
        raise PermanentFailure(f"cannot process {item.subject}")


async def later_job(shoal: Shoal, item: WorkItem) -> None:
    EXECUTIONS[item.id] += 1
    raise TryAgainLater("the remote asked us to wait", delay=3600)


async def slow_job(shoal: Shoal, item: WorkItem) -> None:
    await asyncio.sleep(item.payload.get("sleep", 1.0))
    EXECUTIONS[item.id] += 1


def install_test_kinds(shoal: Shoal) -> None:
    """Register the test kinds in ``shoal`` only: kinds are per Shoal, nothing is process-wide."""
    jobs = shoal.ext.jobs
    jobs.register("test.count", count_job, lease=timedelta(seconds=5))
    jobs.register("test.broken", broken_job, max_attempts=3, **QUICK)
    jobs.register("test.flaky", flaky_job, max_attempts=4, **QUICK)
    jobs.register("test.permanent", permanent_job, max_attempts=5)
    jobs.register("test.later", later_job)
    jobs.register("test.slow", slow_job, lease=timedelta(seconds=0.3))


@pytest.fixture(autouse=True)
def _reset_counters() -> None:
    EXECUTIONS.clear()
    RUN_TIMES.clear()
    BROKEN_SUBJECTS.clear()


def new_consumer(shoal: Shoal) -> JobQueue:
    """A queue that runs jobs on ``shoal``: in-process when embedded, an arq worker when scaled."""
    if SCALED:
        return ArqQueue(shoal, consume=True, poll_delay=0.05)
    return InProcessQueue(shoal, consume=True)


@asynccontextmanager
async def running_consumer(shoal: Shoal) -> AsyncIterator[JobQueue]:
    queue = new_consumer(shoal)
    await queue.start()
    try:
        yield queue
    finally:
        await queue.close()


@asynccontextmanager
async def other_process(settings: Settings, **changes: Any) -> AsyncIterator[Shoal]:
    """A second set of resources on the same database and Redis, as another process has."""
    async with open_shoal(settings.model_copy(update=changes), http=False) as shoal:
        install_test_kinds(shoal)
        yield shoal


@pytest.fixture
async def consumer(instance: Instance) -> AsyncIterator[JobQueue]:
    """The queue that runs this instance's jobs: its own when embedded, a worker beside it when scaled."""
    if not SCALED:
        assert instance.shoal.jobs is not None
        yield instance.shoal.jobs
        return
    async with running_consumer(instance.shoal) as queue:
        yield queue


async def idle(queue: JobQueue, seconds: float = 20) -> None:
    async with asyncio.timeout(seconds):
        await queue.run_until_idle()


async def get_row(shoal: Shoal, item_id: int) -> WorkItem:
    async with shoal.db.read() as session:
        item = await session.get(WorkItem, item_id)
        session.expunge_all()
    assert item is not None
    return item


async def settle(queue: JobQueue, item_id: int, states: Iterable[str], seconds: float = 20) -> WorkItem:
    """Run the queue until row ``item_id`` reaches one of ``states`` (retries wait for their backoff)."""
    wanted = set(states)
    async with asyncio.timeout(seconds):
        while True:
            await queue.run_until_idle()
            item = await get_row(queue.shoal, item_id)
            if item.state in wanted:
                return item
            await asyncio.sleep(0.02)


async def wait_for_state(shoal: Shoal, item_id: int, states: Iterable[str], seconds: float = 20) -> WorkItem:
    """Poll row ``item_id`` until it reaches one of ``states``."""
    wanted = set(states)
    async with asyncio.timeout(seconds):
        while True:
            item = await get_row(shoal, item_id)
            if item.state in wanted:
                return item
            await asyncio.sleep(0.05)


async def add_rows(shoal: Shoal, kind: str, number: int, **kw: Any) -> list[int]:
    """Rows committed without ringing anyone, as if the process died right after the commit."""
    async with shoal.db.write() as session:
        items = [await add_work(shoal, session, kind, f"subject-{n}", **kw) for n in range(number)]
    return [item.id for item in items]


# Running, retrying, failing --------------------------------------------------


async def test_job_runs_once_and_succeeds(instance: Instance, consumer: JobQueue) -> None:
    item = await submit(instance.shoal, "test.count", "video:1", payload={"sleep": 0})
    assert item.state == "pending" and item.attempts == 0 and item.max_attempts == 5
    await idle(consumer)
    row = await get_row(instance.shoal, item.id)
    assert (row.state, row.attempts, row.last_error, row.locked_until) == ("succeeded", 1, None, None)
    assert row.locked_by == consumer.worker_id
    assert EXECUTIONS[item.id] == 1
    assert row.state_changed_at >= row.created_at


async def test_work_commits_with_the_callers_transaction(instance: Instance) -> None:
    with pytest.raises(ZeroDivisionError):
        async with instance.shoal.db.write() as session:
            await add_work(instance.shoal, session, "test.count", "video:2")
            1 / 0  # noqa: B018
    async with instance.shoal.db.read() as session:
        assert await session.scalar(select(func.count(WorkItem.id))) == 0
    with pytest.raises(UnknownJobKind):
        async with instance.shoal.db.write() as session:
            await add_work(instance.shoal, session, "test.nobody-registered-this", "x")


async def test_errors_retry_with_backoff_then_fail(instance: Instance, consumer: JobQueue) -> None:
    item = await submit(instance.shoal, "test.broken", "inbox:https://remote.example/inbox")
    row = await settle(consumer, item.id, {"failed"})
    assert row.attempts == 3 and row.max_attempts == 3
    assert row.last_error == "ConnectionError: remote host down"
    assert row.locked_until is None
    assert EXECUTIONS[item.id] == 3
    first, second, third = RUN_TIMES[item.id]
    assert second - first >= 0.010
    assert third - second >= 0.020


async def test_a_flaky_job_succeeds_on_a_later_attempt(instance: Instance, consumer: JobQueue) -> None:
    item = await submit(instance.shoal, "test.flaky", "x")
    row = await settle(consumer, item.id, {"succeeded", "failed"})
    assert (row.state, row.attempts, row.last_error) == ("succeeded", 3, None)
    assert EXECUTIONS[item.id] == 3


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    base, cap = timedelta(seconds=60), timedelta(hours=1)
    for attempts in range(1, 12):
        ceiling = min(60 * 2 ** (attempts - 1), 3600)
        delays = [backoff_delay(attempts, base, cap) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1


async def test_permanent_failure_fails_at_once(instance: Instance, consumer: JobQueue) -> None:
    BROKEN_SUBJECTS.add("video:bad")
    item = await submit(instance.shoal, "test.permanent", "video:bad")
    await idle(consumer)
    row = await get_row(instance.shoal, item.id)
    assert (row.state, row.attempts, row.max_attempts) == ("failed", 1, 5)
    assert row.last_error == "PermanentFailure: cannot process video:bad"


async def test_try_again_later_counts_an_attempt_and_waits(instance: Instance, consumer: JobQueue) -> None:
    item = await submit(instance.shoal, "test.later", "x")
    await idle(consumer)
    row = await get_row(instance.shoal, item.id)
    assert (row.state, row.attempts) == ("pending", 1)
    assert row.last_error == "TryAgainLater: the remote asked us to wait"
    wait = (row.next_attempt_at - utcnow()).total_seconds()
    assert 3500 < wait <= 3600
    assert EXECUTIONS[item.id] == 1


# Dedupe ----------------------------------------------------------------------


async def test_dedupe_key_returns_the_open_row(instance: Instance, consumer: JobQueue) -> None:
    shoal = instance.shoal
    first = await submit(shoal, "test.count", "video:7", dedupe_key="transcode:7", delay=3600)
    again = await submit(shoal, "test.count", "video:7", dedupe_key="transcode:7")
    assert again.id == first.id
    async with shoal.db.write() as session:
        inside = await add_work(shoal, session, "test.count", "video:7", dedupe_key="transcode:7")
    assert inside.id == first.id
    async with shoal.db.read() as session:
        assert await session.scalar(select(func.count(WorkItem.id))) == 1

    done = await submit(shoal, "test.count", "video:8", dedupe_key="transcode:8")
    await idle(consumer)
    assert (await get_row(shoal, done.id)).state == "succeeded"
    fresh = await submit(shoal, "test.count", "video:8", dedupe_key="transcode:8")
    assert fresh.id != done.id
    assert (await get_row(shoal, done.id)).dedupe_key is None
    assert (await get_row(shoal, fresh.id)).dedupe_key == "transcode:8"


async def test_concurrent_submits_with_one_dedupe_key_make_one_row(instance: Instance) -> None:
    async with other_process(instance.settings) as other:
        items = await asyncio.gather(
            *(
                submit(shoal, "test.count", "video:9", dedupe_key="transcode:9", delay=3600)
                for shoal in [instance.shoal, other] * 5
            )
        )
    assert len({item.id for item in items}) == 1


# Claims and leases -----------------------------------------------------------


async def test_racing_workers_never_run_a_row_twice(instance: Instance) -> None:
    ids = await add_rows(instance.shoal, "test.count", 30, payload={"sleep": 0.01})
    async with other_process(instance.settings) as other:
        outcomes = await asyncio.gather(
            *(
                run_work(shoal, item_id, worker_id=worker)
                for item_id in ids
                for shoal, worker in ((instance.shoal, "worker-a"), (other, "worker-b"), (other, "worker-c"))
            )
        )
    assert Counter(outcomes) == {"succeeded": 30, None: 60}
    assert all(EXECUTIONS[item_id] == 1 for item_id in ids)
    async with instance.shoal.db.read() as session:
        states = Counter((await session.scalars(select(WorkItem.state))).all())
    assert states == {"succeeded": 30}


async def test_racing_queues_never_run_a_row_twice(instance: Instance) -> None:
    ids = await add_rows(instance.shoal, "test.count", 20)
    async with (
        other_process(instance.settings) as other,
        running_consumer(instance.shoal) as first,
        running_consumer(other) as second,
    ):
        for item_id in ids:
            await asyncio.gather(first.ring(item_id, attempts=0), second.ring(item_id, attempts=0))
        await asyncio.gather(idle(first), idle(second))
    assert sorted(EXECUTIONS.values()) == [1] * 20


async def test_a_claimed_row_is_not_claimed_again_while_its_lease_holds(instance: Instance) -> None:
    [item_id] = await add_rows(instance.shoal, "test.count", 1)
    claimed = await claim_work(instance.shoal, item_id, "worker-a")
    assert claimed is not None and claimed.state == "running" and claimed.attempts == 1
    assert claimed.locked_until is not None and claimed.locked_by == "worker-a"
    assert await claim_work(instance.shoal, item_id, "worker-b") is None
    assert await run_work(instance.shoal, item_id, worker_id="worker-b") is None
    assert EXECUTIONS[item_id] == 0


async def test_a_long_job_renews_its_lease(instance: Instance) -> None:
    [item_id] = await add_rows(instance.shoal, "test.slow", 1, payload={"sleep": 1.0})
    running = asyncio.create_task(run_work(instance.shoal, item_id, worker_id="worker-a"))
    await asyncio.sleep(0.7)
    assert await run_work(instance.shoal, item_id, worker_id="worker-b") is None
    assert await running == "succeeded"
    row = await get_row(instance.shoal, item_id)
    assert (row.state, row.attempts, row.locked_by) == ("succeeded", 1, "worker-a")
    assert EXECUTIONS[item_id] == 1


async def test_a_job_that_lost_its_lease_drops_its_result(instance: Instance) -> None:
    [item_id] = await add_rows(instance.shoal, "test.slow", 1, payload={"sleep": 2.0})
    running = asyncio.create_task(run_work(instance.shoal, item_id, worker_id="worker-a"))
    await wait_for_state(instance.shoal, item_id, {"running"})
    async with instance.shoal.db.write() as session:
        await session.execute(update(WorkItem).where(WorkItem.id == item_id).values(locked_by="worker-b"))
    async with asyncio.timeout(5):
        assert await running == "lost"
    row = await get_row(instance.shoal, item_id)
    assert (row.state, row.locked_by) == ("running", "worker-b")
    assert EXECUTIONS[item_id] == 0


async def test_a_job_whose_worker_died_is_retaken_after_the_lease(make_instance: InstanceFactory) -> None:
    instance = await make_instance(worker=False, jobs_sweep_interval=3600)
    [item_id] = await add_rows(instance.shoal, "test.count", 1)
    dead = await claim_work(instance.shoal, item_id, "dead-worker", lease=timedelta(seconds=0.5))
    assert dead is not None and dead.attempts == 1
    async with (
        other_process(instance.settings, jobs_sweep_interval=0.1) as fresh,
        running_consumer(fresh) as queue,
    ):
        row = await wait_for_state(fresh, item_id, {"succeeded", "failed"}, seconds=10)
    assert (row.state, row.attempts, row.locked_by) == ("succeeded", 2, queue.worker_id)
    assert EXECUTIONS[item_id] == 1


async def test_a_row_abandoned_on_its_last_attempt_fails(make_instance: InstanceFactory) -> None:
    instance = await make_instance(worker=False, jobs_sweep_interval=3600)
    [item_id] = await add_rows(instance.shoal, "test.count", 1, max_attempts=1)
    assert await claim_work(instance.shoal, item_id, "dead-worker", lease=timedelta(seconds=0.2))
    await asyncio.sleep(0.3)
    async with other_process(instance.settings) as fresh, running_consumer(fresh) as queue:
        await idle(queue)
    row = await get_row(instance.shoal, item_id)
    assert (row.state, row.attempts) == ("failed", 1)
    assert row.last_error is not None and row.last_error.startswith("LeaseExpired:")
    assert EXECUTIONS[item_id] == 0


async def test_closing_a_queue_releases_its_running_job(instance: Instance) -> None:
    [item_id] = await add_rows(instance.shoal, "test.slow", 1, payload={"sleep": 10})
    async with other_process(instance.settings) as other:
        queue = new_consumer(other)
        await queue.start()
        await queue.ring(item_id, attempts=0)
        await wait_for_state(other, item_id, {"running"}, seconds=10)
        await queue.close()
    row = await get_row(instance.shoal, item_id)
    assert (row.state, row.attempts, row.locked_until) == ("pending", 0, None)
    assert row.next_attempt_at <= utcnow()


# Restarts and the sweeper ----------------------------------------------------


async def test_rows_added_while_no_queue_runs_are_picked_up_by_a_fresh_queue(
    make_instance: InstanceFactory,
) -> None:
    instance = await make_instance(worker=False, jobs_sweep_interval=3600)
    ids = await add_rows(instance.shoal, "test.count", 5)
    await asyncio.sleep(0.2)
    async with instance.shoal.db.read() as session:
        assert set((await session.scalars(select(WorkItem.state))).all()) == {"pending"}
    async with other_process(instance.settings) as fresh, running_consumer(fresh) as queue:
        rows = [await wait_for_state(fresh, item_id, {"succeeded"}, seconds=10) for item_id in ids]
    assert {row.locked_by for row in rows} == {queue.worker_id}
    assert [EXECUTIONS[item_id] for item_id in ids] == [1] * 5


class LogWatch(logging.Handler):
    """Sets ``seen`` when a record containing ``needle`` is logged."""

    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle = needle
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            self.seen.set()


async def test_the_sweeper_survives_a_failing_sweep(make_instance: InstanceFactory) -> None:
    instance = await make_instance(worker=False, jobs_sweep_interval=3600)
    [item_id] = await add_rows(instance.shoal, "test.count", 1)

    async def rename(old: str, new: str) -> None:
        async with instance.shoal.db.write() as session:
            await session.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))

    await rename("work_items", "work_items_away")
    renamed_back = False
    watch = LogWatch("sweep failed")
    logging.getLogger("shoal.jobs").addHandler(watch)
    try:
        async with other_process(instance.settings, jobs_sweep_interval=0.1) as fresh:
            async with running_consumer(fresh) as queue:
                await asyncio.wait_for(watch.seen.wait(), 10)
                await rename("work_items_away", "work_items")
                renamed_back = True
                row = await wait_for_state(fresh, item_id, {"succeeded"}, seconds=10)
    finally:
        logging.getLogger("shoal.jobs").removeHandler(watch)
        if not renamed_back:
            await rename("work_items_away", "work_items")
    assert row.locked_by == queue.worker_id
    assert EXECUTIONS[item_id] == 1


# Admin API -------------------------------------------------------------------


async def client_as(instance: Instance, username: str, role: Role) -> ApiClient:
    """A client with a fresh token for a new user of ``role`` (no OAuth round trip needed)."""
    user = await instance.create_user(username, role=role)
    async with instance.shoal.db.write() as session:
        user = await session.merge(user)
        token = await issue_token(instance.shoal, session, user)
    return instance.client.as_user(token.access_token)


async def test_job_routes_are_for_admins_only(instance: Instance) -> None:
    [item_id] = await add_rows(instance.shoal, "test.count", 1)
    user = await client_as(instance, "alice", Role.USER)
    moderator = await client_as(instance, "mona", Role.MODERATOR)
    for client, status in ((instance.client, 401), (user, 403), (moderator, 403)):
        for method, path in (
            ("GET", "/api/v1/jobs/pending"),
            ("GET", "/api/v1/jobs/stats"),
            ("POST", f"/api/v1/jobs/{item_id}/retry"),
        ):
            got, body = await client.request(method, path)
            assert got == status, (method, path, body)
            if status == 403:
                assert body["code"] == "insufficient_role"


async def test_admin_lists_jobs_by_state_and_sees_stats(instance: Instance, consumer: JobQueue) -> None:
    admin = await client_as(instance, "root", Role.ADMIN)
    shoal = instance.shoal
    BROKEN_SUBJECTS.add("video:bad")
    done = await submit(shoal, "test.count", "video:1")
    failed = await submit(shoal, "test.permanent", "video:bad")
    await idle(consumer)
    waiting = await submit(shoal, "test.count", "video:2", delay=3600, payload={"sleep": 0})

    status, body = await admin.get("/api/v1/jobs/failed")
    assert status == 200, body
    assert body["total"] == 1
    [job] = body["data"]
    assert job["id"] == failed.id and job["type"] == "test.permanent" and job["state"] == "failed"
    assert job["error"] == "PermanentFailure: cannot process video:bad"
    assert (job["attempts"], job["maxAttempts"], job["subject"]) == (1, 5, "video:bad")
    assert job["createdAt"].endswith("Z") and job["nextAttemptAt"].endswith("Z")

    status, body = await admin.get("/api/v1/jobs/pending")
    assert [j["id"] for j in body["data"]] == [waiting.id] and body["data"][0]["data"] == {"sleep": 0}
    status, body = await admin.get("/api/v1/jobs/succeeded")
    assert [j["id"] for j in body["data"]] == [done.id]
    status, body = await admin.get("/api/v1/jobs/all", params={"count": 2})
    assert body["total"] == 3 and [j["id"] for j in body["data"]] == [waiting.id, failed.id]
    status, body = await admin.get("/api/v1/jobs/all", params={"start": 2, "sort": "createdAt"})
    assert [j["id"] for j in body["data"]] == [waiting.id]
    status, body = await admin.get("/api/v1/jobs/all", params={"jobType": "test.permanent"})
    assert [j["id"] for j in body["data"]] == [failed.id]

    status, body = await admin.get("/api/v1/jobs/exploded")
    assert status == 400 and body["code"] == "invalid_job_state"
    status, body = await admin.get("/api/v1/jobs/all", params={"count": 1000})
    assert status == 400 and body["field"] == "count"

    status, stats = await admin.get("/api/v1/jobs/stats")
    assert status == 200, stats
    assert stats["total"] == 3
    assert stats["states"] == {"pending": 1, "running": 0, "succeeded": 1, "failed": 1}
    assert stats["kinds"]["test.count"]["succeeded"] == 1
    assert stats["kinds"]["test.permanent"]["failed"] == 1
    assert stats["mode"] == ("external" if SCALED else "embedded")
    if SCALED:
        assert stats["backend"] == "arq"
        assert consumer.worker_id in [w["id"] for w in stats["workers"]]
    else:
        assert stats["backend"] == "in-process"
        assert [w["id"] for w in stats["workers"]] == [consumer.worker_id]


async def test_admin_retries_a_failed_job(instance: Instance, consumer: JobQueue) -> None:
    admin = await client_as(instance, "root", Role.ADMIN)
    BROKEN_SUBJECTS.add("video:bad")
    failed = await submit(instance.shoal, "test.permanent", "video:bad")
    await idle(consumer)
    assert (await get_row(instance.shoal, failed.id)).state == "failed"

    BROKEN_SUBJECTS.clear()
    status, body = await admin.post(f"/api/v1/jobs/{failed.id}/retry")
    assert status == 200, body
    assert body["state"] == "pending" and body["attempts"] == 1 and body["maxAttempts"] == 6
    row = await settle(consumer, failed.id, {"succeeded", "failed"})
    assert (row.state, row.attempts, row.last_error) == ("succeeded", 2, None)
    assert EXECUTIONS[failed.id] == 2

    status, body = await admin.post(f"/api/v1/jobs/{failed.id}/retry")
    assert status == 409 and body["code"] == "job_not_failed"
    status, body = await admin.post("/api/v1/jobs/999999/retry")
    assert status == 404 and body["code"] == "job_not_found"
