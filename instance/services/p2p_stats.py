"""The instance's P2P ratio: bytes its players received from peers against all bytes they received.

Players report, with their view and then now and again while playing, the bytes received
since their previous report over HTTP and from other viewers. The totals are one row
(``p2p_stats``, id 1) updated in place, so reports to any web process add up. Each process
adds up the reports it answers and writes them at most every :data:`WRITE_EVERY` seconds
(a busy instance would otherwise write on every report): from a report, from a periodic
chore, and on shutdown. :func:`totals` includes what this process has not written yet.
Reports are not authenticated (anonymous viewers send them too), so each is capped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from ..core import Shoal
from ..models import P2PStats, utcnow

# No player receives more than this between two reports (30 s of playback apart).
MAX_REPORT_BYTES = 4 * 1024**3
WRITE_EVERY = 10.0


@dataclass
class _Pending:
    """Reports this process answered and has not written yet."""

    http_bytes: int = 0
    peer_bytes: int = 0
    reports: int = 0
    written_at: float = float("-inf")


def _buffer(shoal: Shoal) -> _Pending:
    """This Shoal's buffer (a test process runs several)."""
    return shoal.state("p2p_stats.pending", _Pending)


async def add_bytes(shoal: Shoal, http_bytes: int, peer_bytes: int) -> None:
    """Count one player report (nothing received, nothing counted)."""
    if http_bytes <= 0 and peer_bytes <= 0:
        return
    pending = _buffer(shoal)
    pending.http_bytes += http_bytes
    pending.peer_bytes += peer_bytes
    pending.reports += 1
    if time.monotonic() - pending.written_at >= WRITE_EVERY:
        await write_pending(shoal)


async def write_pending(shoal: Shoal) -> None:
    """Add this process's pending reports to the row (put back if the write fails)."""
    pending = _buffer(shoal)
    http_bytes, peer_bytes, reports = pending.http_bytes, pending.peer_bytes, pending.reports
    pending.http_bytes = pending.peer_bytes = pending.reports = 0
    pending.written_at = time.monotonic()
    if not reports:
        return
    try:
        async with shoal.db.write() as session:
            result = await session.execute(
                update(P2PStats)
                .where(P2PStats.id == 1)
                .values(
                    http_bytes=P2PStats.http_bytes + http_bytes,
                    peer_bytes=P2PStats.peer_bytes + peer_bytes,
                    reports=P2PStats.reports + reports,
                    updated_at=utcnow(),
                )
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                session.add(P2PStats(id=1, http_bytes=http_bytes, peer_bytes=peer_bytes, reports=reports))
    except Exception:
        pending.http_bytes += http_bytes
        pending.peer_bytes += peer_bytes
        pending.reports += reports
        raise


async def totals(shoal: Shoal) -> dict[str, Any]:
    """Bytes from HTTP and from peers, the number of reports, and the share from peers (0..1 or None)."""
    async with shoal.db.read() as session:
        row = (await session.execute(select(P2PStats).where(P2PStats.id == 1))).scalar_one_or_none()
    pending = _buffer(shoal)
    http_bytes = (row.http_bytes if row else 0) + pending.http_bytes
    peer_bytes = (row.peer_bytes if row else 0) + pending.peer_bytes
    total = http_bytes + peer_bytes
    return {
        "httpBytes": http_bytes,
        "peerBytes": peer_bytes,
        "reports": (row.reports if row else 0) + pending.reports,
        "ratio": peer_bytes / total if total else None,
    }
