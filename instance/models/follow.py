"""Follows between actors: a subscription to a channel, or an instance following another."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .actor import Actor
from .base import Base, UTCDateTime, utcnow


class FollowState(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"


class Follow(Base):
    """``follower`` follows ``target``; pending until the target accepts."""

    __tablename__ = "follows"
    __table_args__ = (
        UniqueConstraint("follower_id", "target_id", name="uq_follows_follower_target"),
        Index("ix_follows_target_state", "target_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    follower_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    target_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16), default=FollowState.PENDING)
    ap_id: Mapped[str | None] = mapped_column(String(2000), unique=True, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    follower: Mapped[Actor] = relationship(foreign_keys=[follower_id], lazy="raise_on_sql")
    target: Mapped[Actor] = relationship(foreign_keys=[target_id], lazy="raise_on_sql")
