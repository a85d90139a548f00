"""The doorbell: one :class:`JobQueue` interface, and the in-process backend of the embedded mode.

A queue only carries row ids (STYLE 6). Ringing twice for the same row is harmless: the
claim decides who runs it. A sweeper rings again for rows that are due or whose worker
vanished, so a lost ring, a crash or a restart only delays work, never loses it.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import logging
import os
import secrets
import socket
from collections import Counter
from typing import TYPE_CHECKING, Any, ClassVar

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from ..models import utcnow
from .claims import due_work, fail_abandoned, release_dead
from .rows import describe_error, submit
from .runner import run_work

if TYPE_CHECKING:
    from ..core import Shoal

log = logging.getLogger("shoal.jobs")


def new_worker_id() -> str:
    """A name for this consumer, unique across machines and restarts: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class JobQueue(abc.ABC):
    """Rings for work rows; a consuming queue also runs them and sweeps for due or stuck rows."""

    backend: ClassVar[str]

    def __init__(self, shoal: Shoal, *, consume: bool, worker_id: str | None = None) -> None:
        self.shoal = shoal
        self.consume = consume
        self.worker_id = worker_id or new_worker_id()
        self.concurrency = shoal.settings.jobs_concurrency
        self.sweep_interval = shoal.settings.jobs_sweep_interval
        self.started_at = utcnow()
        self.running: Counter[int] = Counter()
        self.processed = 0
        self._closing = False
        self._sweeper: asyncio.Task[None] | None = None

    @abc.abstractmethod
    async def ring(self, item_id: int, *, delay: float = 0.0, attempts: int | None = None) -> None:
        """Ask for row ``item_id`` to be run in ``delay`` seconds.

        ``attempts`` is the row's attempt count when the caller knows it (it names the
        doorbell so a ring is not enqueued twice for the same attempt).
        """

    async def start(self) -> None:
        """When consuming, run the Shoal's consumer-start hooks (``shoal.ext.jobs``), sweep once
        now (work left by an earlier run starts at once) and then every ``jobs_sweep_interval``
        seconds. The kinds run are those of this queue's Shoal."""
        if self.consume:
            for hook in self.shoal.ext.jobs.consumer_starts:
                hook()
            await self._safe_sweep()
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="shoal-jobs-sweeper")

    async def close(self) -> None:
        """Stop sweeping; running jobs are interrupted and their rows released."""
        self._closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)

    async def sweep(self) -> int:
        """Fail rows abandoned on their last attempt, then ring every due row; returns how many."""
        await release_dead(self.shoal)
        await fail_abandoned(self.shoal)
        kinds = self.shoal.ext.jobs
        due = await due_work(self.shoal, [name for name, kind in kinds.items() if kind.swept_by is None])
        for item_id, attempts in due:
            await self.ring(item_id, attempts=attempts)
        for bulk in {kind.swept_by for kind in kinds.values() if kind.swept_by}:
            swept = [name for name, kind in kinds.items() if kind.swept_by == bulk]
            if bulk in kinds and await due_work(self.shoal, swept, limit=1):
                await submit(self.shoal, bulk, "", dedupe_key=f"sweep:{bulk}")
                due.append((0, 0))
        return len(due)

    async def _sweep_turn(self) -> None:
        await self.sweep()

    async def _safe_sweep(self) -> None:
        try:
            await self._sweep_turn()
        except (SQLAlchemyError, RedisError, OSError) as exc:
            log.warning("sweep failed, next one in %.1fs: %s", self.sweep_interval, describe_error(exc))

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            await self._safe_sweep()

    async def execute(self, item_id: int) -> None:
        """Run one row through :func:`run_work`; database or Redis errors are logged, not raised."""
        self.running[item_id] += 1
        try:
            outcome = await run_work(self.shoal, item_id, worker_id=self.worker_id, queue=self)
        except (SQLAlchemyError, RedisError, OSError) as exc:
            log.warning(
                "work %d: the database or Redis failed (%s); the sweeper retries it",
                item_id,
                describe_error(exc),
            )
        else:
            if outcome is not None:
                self.processed += 1
        finally:
            self.running[item_id] -= 1
            if not self.running[item_id]:
                del self.running[item_id]

    @abc.abstractmethod
    async def run_until_idle(self) -> None:
        """Run work until no due row is left and nothing runs (deterministic tests, `shoal doctor`).

        Bound it with ``asyncio.timeout``: a row that keeps failing fast keeps it busy.
        """

    def describe(self) -> dict[str, Any]:
        """This consumer as the admin sees it."""
        return {
            "id": self.worker_id,
            "backend": self.backend,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "concurrency": self.concurrency,
            "running": sorted(self.running),
            "processed": self.processed,
            "startedAt": self.started_at.isoformat(),
        }

    async def workers(self) -> list[dict[str, Any]]:
        """The live consumers of this queue."""
        return [self.describe()] if self.consume and not self._closing else []


class InProcessQueue(JobQueue):
    """Jobs as asyncio tasks of this process, at most ``jobs_concurrency`` at once (embedded mode).

    A queue that does not consume (a CLI command next to a running server) rings nothing:
    the server's sweeper finds the rows.
    """

    backend = "in-process"

    def __init__(self, shoal: Shoal, *, consume: bool = True, worker_id: str | None = None) -> None:
        super().__init__(shoal, consume=consume, worker_id=worker_id)
        self._slots = asyncio.Semaphore(self.concurrency)
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._again: set[int] = set()
        self._timers: dict[int, asyncio.TimerHandle] = {}

    async def ring(self, item_id: int, *, delay: float = 0.0, attempts: int | None = None) -> None:
        if not self.consume or self._closing:
            return
        if delay > 0:
            previous = self._timers.pop(item_id, None)
            if previous is not None:
                previous.cancel()
            loop = asyncio.get_running_loop()
            self._timers[item_id] = loop.call_later(delay, self._timer_fired, item_id)
            return
        self._ring_now(item_id)

    def _timer_fired(self, item_id: int) -> None:
        self._timers.pop(item_id, None)
        self._ring_now(item_id)

    def _ring_now(self, item_id: int) -> None:
        if self._closing:
            return
        if item_id in self._tasks:
            self._again.add(item_id)
            return
        task = asyncio.create_task(self._slot_work(item_id), name=f"shoal-work-{item_id}")
        self._tasks[item_id] = task
        task.add_done_callback(functools.partial(self._task_done, item_id))

    async def _slot_work(self, item_id: int) -> None:
        async with self._slots:
            await self.execute(item_id)

    def _task_done(self, item_id: int, _task: asyncio.Task[None]) -> None:
        self._tasks.pop(item_id, None)
        if item_id in self._again:
            self._again.discard(item_id)
            self._ring_now(item_id)

    async def run_until_idle(self) -> None:
        if not self.consume:
            raise RuntimeError("this queue does not consume; nothing would run")
        while True:
            due = await self.sweep()
            if self._tasks:
                await asyncio.wait(list(self._tasks.values()))
                continue
            if not due:
                return
            await asyncio.sleep(0)

    async def close(self) -> None:
        await super().close()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
