"""The instance's P2P ratio: bytes its players received from peers against all bytes they received.

Players report, with their view and then now and again while playing, the bytes received
since their previous report over HTTP and from other viewers; the totals are one row
(``p2p_stats``, id 1) updated in place, so concurrent reports from any web process add up.
Reports are not authenticated (anonymous viewers send them too), so each is capped.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from ..core import Shoal
from ..models import P2PStats, utcnow

# No player receives more than this between two reports (30 s of playback apart).
MAX_REPORT_BYTES = 4 * 1024**3


async def add_bytes(shoal: Shoal, http_bytes: int, peer_bytes: int) -> None:
    """Add one player report to the running totals (nothing to add, nothing written)."""
    if http_bytes <= 0 and peer_bytes <= 0:
        return
    async with shoal.db.write() as session:
        result = await session.execute(
            update(P2PStats)
            .where(P2PStats.id == 1)
            .values(
                http_bytes=P2PStats.http_bytes + http_bytes,
                peer_bytes=P2PStats.peer_bytes + peer_bytes,
                reports=P2PStats.reports + 1,
                updated_at=utcnow(),
            )
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            session.add(P2PStats(id=1, http_bytes=http_bytes, peer_bytes=peer_bytes, reports=1))


async def totals(shoal: Shoal) -> dict[str, Any]:
    """Bytes from HTTP and from peers, the number of reports, and the share from peers (0..1 or None)."""
    async with shoal.db.read() as session:
        row = (await session.execute(select(P2PStats).where(P2PStats.id == 1))).scalar_one_or_none()
    http_bytes = row.http_bytes if row else 0
    peer_bytes = row.peer_bytes if row else 0
    total = http_bytes + peer_bytes
    return {
        "httpBytes": http_bytes,
        "peerBytes": peer_bytes,
        "reports": row.reports if row else 0,
        "ratio": peer_bytes / total if total else None,
    }
