"""Comments on videos: threaded, local or remote; a deleted comment keeps the thread's shape."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .actor import Actor
from .base import Base, UTCDateTime, utcnow


class Comment(Base):
    """A comment; ``thread_id`` is the root comment, ``in_reply_to_id`` the direct parent."""

    __tablename__ = "comments"
    __table_args__ = (Index("ix_comments_video_thread", "video_id", "thread_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("actors.id", ondelete="SET NULL"), default=None, index=True
    )
    thread_id: Mapped[int | None] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"), default=None)
    in_reply_to_id: Mapped[int | None] = mapped_column(
        ForeignKey("comments.id", ondelete="CASCADE"), default=None, index=True
    )
    text: Mapped[str] = mapped_column(Text)
    ap_id: Mapped[str | None] = mapped_column(String(2000), unique=True, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    account: Mapped[Actor | None] = relationship(lazy="raise_on_sql")

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None
