"""Durable work rows: every long-running thing is a row with a state (DESIGN principle 1).

The queue only rings a bell with the row id; the job reads the row, claims it, advances
it, and on failure schedules the next attempt with exponential backoff until
``max_attempts``, when the row ends ``failed`` with its last error.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, UTCDateTime, utcnow


class WorkState(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WorkItem(Base):
    """One unit of background work: ``kind`` names the job, ``subject`` what it works on."""

    __tablename__ = "work_items"
    __table_args__ = (Index("ix_work_items_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(2000), default="")
    dedupe_key: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    state: Mapped[str] = mapped_column(String(16), default=WorkState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=5)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    locked_by: Mapped[str | None] = mapped_column(String(255), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    state_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DeliveryBody(Base):
    """The bytes of one outgoing activity, written once per fan-out.

    Every ``deliver`` row of the fan-out (one per inbox) names it by ``id`` in its payload
    instead of carrying its own copy of the JSON: a Video's ``Create`` to 1,000 inboxes is
    one body and 1,000 small rows. Bodies outlive their deliveries' retries and are then
    pruned (``federation.delivery.prune_bodies``).
    """

    __tablename__ = "delivery_bodies"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[str | None] = mapped_column(String(2000), default=None)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
