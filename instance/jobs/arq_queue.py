"""The scaled backend: arq on Redis. The web process rings; `shoal worker` processes consume.

A ring enqueues the arq job ``run_work(ctx, item_id)`` under the id
``<prefix>:w<id>:<attempts>``: arq refuses a second job with an id it still holds, so a
row is rung once per attempt however often the sweeper passes, and a new attempt (or a
takeover after a lost lease) gets a fresh id. arq's own retries and timeouts are not
relied on (STYLE 6): ``run_work`` never raises for a job's error, and the row decides.
Jobs are serialised as JSON, never pickle.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import Worker, func
from redis.exceptions import RedisError
from sqlalchemy import select

from ..models import WorkItem
from .claims import busy_work
from .queue import JobQueue
from .rows import describe_error

if TYPE_CHECKING:
    from ..core import Shoal

log = logging.getLogger("shoal.jobs")

# arq cancels a job after this; leases already recover stuck rows, so it only bounds how
# long a zombie doorbell of a killed worker stays marked in progress.
ARQ_JOB_TIMEOUT = timedelta(hours=24)
ARQ_MAX_TRIES = 1000
WORKER_BEAT_INTERVAL = 5.0
WORKER_BEAT_TTL = 15


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _loads(raw: bytes) -> Any:
    return json.loads(raw)


async def _arq_run_work(ctx: dict[str, Any], item_id: int) -> None:
    """The arq job: run one row through the consuming queue that owns this worker."""
    queue: ArqQueue = ctx["queue"]
    await queue.execute(int(item_id))


class ArqQueue(JobQueue):
    """arq on Redis, queue ``<redis_prefix>:queue``; consuming adds an arq worker, the sweeper
    (one worker sweeps per interval, by a Redis lock) and a liveness heartbeat in Redis."""

    backend = "arq"

    def __init__(
        self,
        shoal: Shoal,
        *,
        consume: bool,
        worker_id: str | None = None,
        poll_delay: float = 0.05,
    ) -> None:
        super().__init__(shoal, consume=consume, worker_id=worker_id)
        settings = shoal.settings
        if not settings.redis_url:
            raise ValueError("the arq job queue needs SHOAL_REDIS_URL")
        self.redis_url = settings.redis_url
        self.prefix = settings.redis_prefix
        self.queue_name = f"{self.prefix}:queue"
        # How long an idle worker waits before it looks for queued jobs again: the delay between
        # a ring and the job starting (a fan-out, a transcode). One cheap Redis query per poll.
        self.poll_delay = poll_delay
        self._pool: ArqRedis | None = None
        self._worker: Worker | None = None
        self.consumer: asyncio.Task[None] | None = None
        self._beat: asyncio.Task[None] | None = None

    @property
    def pool(self) -> ArqRedis:
        if self._pool is None:
            raise RuntimeError("the job queue is not started")
        return self._pool

    @property
    def workers_key(self) -> str:
        return f"{self.prefix}:workers"

    def worker_key(self, worker_id: str) -> str:
        return f"{self.prefix}:workers:{worker_id}"

    async def start(self) -> None:
        """Connect to Redis; when consuming, start the arq worker, the sweeper and the heartbeat."""
        self._pool = await create_pool(
            RedisSettings.from_dsn(self.redis_url),
            job_serializer=_dumps,
            job_deserializer=_loads,
            default_queue_name=self.queue_name,
        )
        await super().start()
        if not self.consume:
            return
        self._worker = Worker(
            functions=[func(_arq_run_work, name="run_work", max_tries=ARQ_MAX_TRIES)],
            queue_name=self.queue_name,
            redis_pool=self._pool,
            max_jobs=self.concurrency,
            job_timeout=ARQ_JOB_TIMEOUT,
            keep_result=0,
            max_tries=ARQ_MAX_TRIES,
            poll_delay=self.poll_delay,
            handle_signals=False,
            ctx={"queue": self},
            job_serializer=_dumps,
            job_deserializer=_loads,
            log_results=False,
        )
        self.consumer = asyncio.create_task(self._worker.async_run(), name="shoal-arq-worker")
        self._beat = asyncio.create_task(self._beat_forever(), name="shoal-worker-heartbeat")

    async def ring(self, item_id: int, *, delay: float = 0.0, attempts: int | None = None) -> None:
        """Enqueue ``run_work(item_id)`` once per attempt; a Redis failure is logged, not raised.

        The row is already committed, so a lost ring only waits for the next sweep.
        """
        if self._pool is None:
            log.warning("the job queue is closed: work %d waits for a sweep", item_id)
            return
        if attempts is None:
            async with self.shoal.db.read() as session:
                attempts = await session.scalar(select(WorkItem.attempts).where(WorkItem.id == item_id))
            if attempts is None:
                return
        try:
            await self._pool.enqueue_job(
                "run_work",
                item_id,
                _job_id=f"{self.prefix}:w{item_id}:{attempts}",
                _defer_by=delay if delay > 0 else None,
            )
        except (RedisError, OSError) as exc:
            log.warning("could not ring for work %d (%s); the sweeper will", item_id, describe_error(exc))

    async def _sweep_turn(self) -> None:
        """Sweep unless another worker swept during this interval (a lock in Redis)."""
        lock = f"{self.prefix}:sweeper"
        if await self.pool.set(lock, self.worker_id, nx=True, px=int(self.sweep_interval * 1000)):
            await self.sweep()

    async def _beat_forever(self) -> None:
        while True:
            try:
                await self._write_beat()
            except (RedisError, OSError) as exc:
                log.warning("could not write the worker heartbeat: %s", describe_error(exc))
            await asyncio.sleep(WORKER_BEAT_INTERVAL)

    async def _write_beat(self) -> None:
        async with self.pool.pipeline(transaction=True) as pipe:
            pipe.set(self.worker_key(self.worker_id), _dumps(self.describe()), ex=WORKER_BEAT_TTL)
            pipe.zadd(self.workers_key, {self.worker_id: time.time() + WORKER_BEAT_TTL})
            await pipe.execute()

    async def workers(self) -> list[dict[str, Any]]:
        """Every worker whose heartbeat is fresh, from Redis."""
        now = time.time()
        await self.pool.zremrangebyscore(self.workers_key, "-inf", now)
        ids = [raw.decode() for raw in await self.pool.zrangebyscore(self.workers_key, now, "+inf")]
        if not ids:
            return []
        values = await self.pool.mget([self.worker_key(worker_id) for worker_id in ids])
        return [json.loads(value) for value in values if value]

    async def run_until_idle(self) -> None:
        if not self.consume:
            raise RuntimeError("this queue only rings; run `shoal worker` to consume")
        while True:
            await self.sweep()
            if not self.running and not await busy_work(self.shoal, list(self.shoal.ext.jobs)):
                return
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        """Stop consuming (running jobs are released), remove the heartbeat, disconnect."""
        await super().close()
        if self._beat is not None:
            self._beat.cancel()
            await asyncio.gather(self._beat, return_exceptions=True)
        worker = self._worker
        if worker is not None:
            # Not Worker.close(): it calls the Redis client's deprecated close().
            worker.allow_pick_jobs = False
            if worker.main_task is not None:
                worker.main_task.cancel()
            running = list(worker.tasks.values())
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            if self.consumer is not None:
                await asyncio.gather(self.consumer, return_exceptions=True)
        if self._pool is not None:
            try:
                if worker is not None:
                    await self._pool.delete(worker.health_check_key, self.worker_key(self.worker_id))
                    await self._pool.zrem(self.workers_key, self.worker_id)
            except (RedisError, OSError) as exc:
                log.warning("could not remove the worker heartbeat: %s", describe_error(exc))
            finally:
                await self._pool.aclose()
                self._pool = None
