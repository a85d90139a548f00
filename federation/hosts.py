"""Remote hosts that keep failing: paused, probed, and resumed at once when they answer.

A host whose POSTs fail :data:`PAUSE_AFTER` rounds in a row is paused (:class:`RemoteHost`)
for as long as it has been failing, up to a day; one delivery a :data:`ROUND` probes it,
and once one gets through its whole backlog goes at once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from instance.models import RemoteHost, WorkItem, WorkState, utcnow

from .ap import host_of
from .delivery import KIND

if TYPE_CHECKING:
    from instance.core import Shoal

log = logging.getLogger("shoal.federation.delivery")

PAUSE_AFTER = 3  # rounds with failures, in a row, before a host is paused
ROUND = timedelta(minutes=1)  # failures this close together count once; one probe per round
MAX_PAUSE = timedelta(days=1)


@dataclass
class HostMemory:
    """What this Shoal's process has seen of remote hosts: those seen failing (only they need
    their stored state read before a POST) and the last probe of each paused one."""

    troubled: set[str] = field(default_factory=set)
    probed: dict[str, datetime] = field(default_factory=dict)
    slots: dict[str, asyncio.Semaphore] = field(default_factory=dict)


def memory(shoal: Shoal) -> HostMemory:
    """This Shoal's :class:`HostMemory` (two instances in one process keep their own)."""
    return shoal.state("federation.hosts", HostMemory)


async def host_state(shoal: Shoal, host: str) -> RemoteHost | None:
    """The stored state of ``host``, or None."""
    async with shoal.db.read() as session:
        row = await session.get(RemoteHost, host)
        if row is not None:
            session.expunge(row)
        return row


def pause_for(downtime: timedelta) -> timedelta:
    """How long a failing host rests: as long as it has been failing, from :data:`ROUND` to
    :data:`MAX_PAUSE`. A probe (:func:`probe_paused_hosts`) ends it early once it answers."""
    return min(max(downtime, ROUND), MAX_PAUSE)


async def record_failure(shoal: Shoal, host: str, error: str, *, now: datetime | None = None) -> None:
    """One failed POST to ``host``. Failures within one :data:`ROUND` count once (a batch fails
    all its rows to a down host at once): the count, and so the pause, follow the downtime."""
    memory(shoal).troubled.add(host)
    now = now or utcnow()
    async with shoal.db.write() as session:
        row = await session.get(RemoteHost, host)
        if row is None:
            row = RemoteHost(host=host, failures=0)
            session.add(row)
        row.last_error = error[:2000]
        if row.failing_since is None:
            row.failing_since = now
        if row.failed_at is not None and now - row.failed_at < ROUND:
            return
        row.failed_at = now
        row.failures = (row.failures or 0) + 1
        if row.failures >= PAUSE_AFTER:
            row.paused_until = now + pause_for(now - row.failing_since)


async def record_success(shoal: Shoal, host: str) -> None:
    """A POST to ``host`` got through: its failures are forgotten, and a paused host resumes."""
    if host not in memory(shoal).troubled:
        return
    async with shoal.db.write() as session:
        was_paused = await session.scalar(
            select(RemoteHost.paused_until).where(
                RemoteHost.host == host, RemoteHost.paused_until.is_not(None)
            )
        )
        await session.execute(
            update(RemoteHost)
            .where(RemoteHost.host == host)
            .values(
                failures=0,
                paused_until=None,
                failing_since=None,
                failed_at=None,
                last_success_at=utcnow(),
                last_error=None,
            )  # fmt: skip
        )
    memory(shoal).troubled.discard(host)
    if was_paused is not None:
        # The host is back (a probe got through): its backlog goes now, not at each row's
        # own backed-off time, which may be hours away.
        log.info("%s answers again: its waiting deliveries go now", host)
        await resume_host(shoal, host)


def _of_host(host: str) -> Any:
    return WorkItem.subject.like(f"http://{host}/%") | WorkItem.subject.like(f"https://{host}/%")


async def resume_host(shoal: Shoal, host: str) -> None:
    """Lift the pause of a host and make its waiting deliveries due now (a probe got through,
    an admin, tests)."""
    host = host.lower()
    async with shoal.db.write() as session:
        await session.execute(
            update(RemoteHost)
            .where(RemoteHost.host == host)
            .values(paused_until=None, failures=0, failing_since=None, failed_at=None)
        )
        rows = (
            await session.execute(
                select(WorkItem).where(
                    WorkItem.kind == KIND, WorkItem.state == WorkState.PENDING, _of_host(host)
                )
            )
        ).scalars()
        due = [row for row in rows if host_of(row.subject) == host]
        for row in due:
            row.next_attempt_at = utcnow()
    memory(shoal).troubled.add(host)
    await _ring_early(shoal, due)


async def _ring_early(shoal: Shoal, rows: list[WorkItem]) -> None:
    if shoal.jobs is None:
        return
    for row in rows:
        # The backed-off attempt already has a deferred doorbell under the name of its
        # attempt count (arq keeps one job per name); an early ring needs another name.
        # The claim still decides, so the later doorbell finds nothing left to do.
        await shoal.jobs.ring(row.id, attempts=-row.attempts - 1)


async def probe_paused_hosts(shoal: Shoal) -> int:
    """Every :data:`ROUND`, one waiting delivery per paused host is made due: it goes out as a
    probe (:func:`federation.sender.attempt` lets one through per host and round), and when
    it gets through the host's whole backlog follows (:func:`record_success`). A host that
    came back is served again within about a round, however long its pause. Returns how many
    probes were rung."""
    now = utcnow()
    async with shoal.db.write() as session:
        hosts = list(await session.scalars(select(RemoteHost.host).where(RemoteHost.paused_until > now)))
        probes = []
        for host in hosts:
            row = await session.scalar(
                select(WorkItem)
                .where(WorkItem.kind == KIND, WorkItem.state == WorkState.PENDING, _of_host(host))
                .order_by(WorkItem.next_attempt_at, WorkItem.id)
                .limit(1)
            )
            if row is not None and row.next_attempt_at > now:
                row.next_attempt_at = now
                probes.append(row)
    await _ring_early(shoal, probes)
    return len(probes)


def may_probe(shoal: Shoal, host: str, now: datetime) -> bool:
    """One delivery per paused host and :data:`ROUND` goes out anyway, in this process."""
    probed = memory(shoal).probed
    last = probed.get(host)
    if last is not None and now - last < ROUND:
        return False
    probed[host] = now
    return True


async def host_states(shoal: Shoal, hosts: set[str]) -> dict[str, RemoteHost]:
    """The stored states of ``hosts`` (the ones with a row), by host."""
    async with shoal.db.read() as session:
        rows = list(await session.scalars(select(RemoteHost).where(RemoteHost.host.in_(list(hosts)))))
        session.expunge_all()
    return {row.host: row for row in rows}


def seen_failing(shoal: Shoal, host: str) -> None:
    """``host`` has failures on record: its next success is written (:func:`record_success`)."""
    memory(shoal).troubled.add(host)
