"""Interactions with videos: ratings (likes, dislikes), shares (Announce), daily views, abuse reports."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow


class VideoRate(Base):
    """An account likes or dislikes a video (``kind`` is ``like`` or ``dislike``)."""

    __tablename__ = "video_rates"
    __table_args__ = (UniqueConstraint("account_id", "video_id", name="uq_video_rates_account_video"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    ap_id: Mapped[str | None] = mapped_column(String(2000), unique=True, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class VideoShare(Base):
    """An actor shared (ActivityPub ``Announce``) a video."""

    __tablename__ = "video_shares"
    __table_args__ = (UniqueConstraint("actor_id", "video_id", name="uq_video_shares_actor_video"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    ap_id: Mapped[str] = mapped_column(String(2000), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class VideoViewDay(Base):
    """Views a video got on one day (UTC), for trending and statistics."""

    __tablename__ = "video_view_days"
    __table_args__ = (
        UniqueConstraint("video_id", "day", name="uq_video_view_days_video_day"),
        Index("ix_video_view_days_day", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    day: Mapped[dt.date] = mapped_column(Date)
    views: Mapped[int] = mapped_column(default=0)


class AbuseReport(Base):
    """A report about a video, a comment or an account, local or received (``Flag``)."""

    __tablename__ = "abuse_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    reporter_id: Mapped[int | None] = mapped_column(
        ForeignKey("actors.id", ondelete="SET NULL"), default=None
    )
    video_id: Mapped[int | None] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), default=None)
    comment_id: Mapped[int | None] = mapped_column(
        ForeignKey("comments.id", ondelete="CASCADE"), default=None
    )
    account_id: Mapped[int | None] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), default=None)
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    ap_id: Mapped[str | None] = mapped_column(String(2000), unique=True, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class RemoteHost(Base):
    """Health of a remote instance we deliver to: failures pause deliveries for a while."""

    __tablename__ = "remote_hosts"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    paused_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    # The first failure since the last success, and the last counted one (one per round).
    failing_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    failed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    last_success_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    software: Mapped[str | None] = mapped_column(String(64), default=None)
