"""Upload sessions: a resumable or direct-to-S3 upload in progress, until it becomes a video."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, UTCDateTime, utcnow


class UploadSession(Base):
    """A started upload. ``kind`` is ``resumable`` (bytes on the web node's disk, PeerTube's
    protocol) or ``s3`` (parts PUT by the client straight to the bucket)."""

    __tablename__ = "upload_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="resumable")
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(255), default="application/octet-stream")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    s3_key: Mapped[str | None] = mapped_column(String(1024), default=None)
    s3_upload_id: Mapped[str | None] = mapped_column(String(1024), default=None)
    part_size: Mapped[int] = mapped_column(BigInteger, default=0)
    video_id: Mapped[int | None] = mapped_column(ForeignKey("videos.id", ondelete="SET NULL"), default=None)
    # Resumable uploads: bytes received (the offset, advanced by a conditional update) and the
    # lease of the one request writing a chunk, whichever web process it reached.
    received: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    receiving_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
