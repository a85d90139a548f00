"""`shoal worker`: run background jobs from the Redis queue, on any number of machines (scaled mode).

The worker opens the same resources as the web process, refuses an unmigrated database,
consumes ``<redis_prefix>:queue`` with ``jobs_concurrency`` jobs at once, sweeps for due
or stuck rows, and keeps a heartbeat in Redis so the admin sees it alive. SIGTERM or
SIGINT stops it; the rows of interrupted jobs go back to pending for another worker.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from . import migrate
from .lifecycle import until_stopped
from .settings import Settings

log = logging.getLogger("shoal.worker")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `shoal worker`."""
    parser.add_argument(
        "--concurrency",
        type=_positive,
        help="jobs run at once (default: SHOAL_JOBS_CONCURRENCY)",
    )


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _refusal(settings: Settings) -> str | None:
    """Why this configuration cannot run a worker, or None."""
    if not settings.redis_url:
        return (
            "SHOAL_REDIS_URL is not set: the worker consumes the Redis job queue "
            "(without Redis the web process runs jobs itself)"
        )
    if settings.workers_mode != "external":
        return (
            "SHOAL_WORKERS=embedded: the web process runs jobs itself; "
            "set SHOAL_WORKERS=external to run them in workers"
        )
    return None


async def run_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Consume jobs until SIGTERM or SIGINT.

    Exit status: 0 after a clean stop, 1 when the database or Redis fails, 2 on bad settings.
    """
    from .core import open_shoal
    from .jobs import ArqQueue
    from .logs import setup_logging

    setup_logging(settings.log_level, settings.log_format)
    refusal = _refusal(settings)
    if refusal:
        print(f"shoal worker: {refusal}", file=sys.stderr)
        return 2
    if args.concurrency:
        settings = settings.model_copy(update={"jobs_concurrency": args.concurrency})
    async with open_shoal(settings) as shoal:
        try:
            behind = await migrate.pending(shoal.db)
        except (SQLAlchemyError, OSError) as exc:
            print(f"shoal worker: cannot reach the database: {exc}", file=sys.stderr)
            return 1
        if behind:
            current = await migrate.current_revision(shoal.db)
            print(
                f"shoal worker: the database is at revision {current or '(empty)'} but this code needs "
                f"{migrate.head_revision()}: run `shoal db upgrade` first",
                file=sys.stderr,
            )
            return 1
        queue = ArqQueue(shoal, consume=True)
        try:
            await queue.start()
        except (RedisError, OSError) as exc:
            print(f"shoal worker: cannot reach Redis for the job queue: {exc}", file=sys.stderr)
            return 1
        shoal.jobs = queue
        log.info(
            "worker %s consuming %s, concurrency %d, kinds %s",
            queue.worker_id,
            queue.queue_name,
            queue.concurrency,
            ",".join(sorted(shoal.ext.jobs)),
            extra={"worker_id": queue.worker_id, "queue": queue.queue_name},
        )
        stopping = asyncio.create_task(until_stopped("shoal worker"))
        assert queue.consumer is not None
        try:
            await asyncio.wait({stopping, queue.consumer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            crashed = queue.consumer.done() and not stopping.done()
            stopping.cancel()
            error = queue.consumer.exception() if crashed and not queue.consumer.cancelled() else None
            await queue.close()
        if crashed:
            log.error("worker %s stopped: the queue consumer ended: %s", queue.worker_id, error)
            return 1
        log.info("worker %s stopped", queue.worker_id, extra={"worker_id": queue.worker_id})
    return 0
