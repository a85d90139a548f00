"""Redundancy: our mirrors of remote videos, and other instances' mirrors of ours.

``VideoMirror`` is a copy this instance keeps of a remote video's HLS files (PeerTube's
"video redundancy"), announced to the origin with a ``CacheFile``; ``VideoRedundancy`` is a
``CacheFile`` another instance announced for one of our videos, whose files become extra web
seeds of our torrents until it expires.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow
from .states import StateGraph


class MirrorState(enum.StrEnum):
    WANTED = "wanted"
    MIRRORED = "mirrored"
    FAILED = "failed"


# A wanted mirror is copied (or fails); a mirrored one is renewed in place until it expires
# and its row goes. Failed ones stay for the admin to see.
MIRROR_STATES = StateGraph(
    "mirror",
    MirrorState.WANTED,
    {
        MirrorState.WANTED: frozenset({MirrorState.WANTED, MirrorState.MIRRORED, MirrorState.FAILED}),
        MirrorState.MIRRORED: frozenset({MirrorState.MIRRORED}),
        MirrorState.FAILED: frozenset({MirrorState.FAILED}),
    },
    work_kind="mirror_video",
)


class VideoMirror(Base):
    """Our copy of a remote video: its files under ``redundancy/hls/<uuid>/``, valid until ``expires_at``."""

    __tablename__ = "video_mirrors"

    id: Mapped[int] = mapped_column(primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), unique=True)
    strategy: Mapped[str] = mapped_column(String(16), default="manual")
    state: Mapped[str] = mapped_column(String(16), default=MirrorState.WANTED)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class VideoRedundancy(Base):
    """A remote instance's mirror of one of our videos (a received ``CacheFile``)."""

    __tablename__ = "video_redundancies"

    id: Mapped[int] = mapped_column(primary_key=True)
    ap_id: Mapped[str] = mapped_column(String(2000), unique=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    base_url: Mapped[str] = mapped_column(String(2000))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
