"""Running totals of the bytes players received, over HTTP and from peers (the instance's P2P ratio)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow


class P2PStats(Base):
    """One row (``id`` 1), added to by every player report with one atomic UPDATE."""

    __tablename__ = "p2p_stats"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    http_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    peer_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    reports: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
