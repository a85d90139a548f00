"""Renditions: one rung of a video's HLS ladder, one fragmented MP4 file and its playlist."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class Rendition(Base):
    """One rung: height, frame rate, bitrate, codecs and the files in storage.

    Paths are storage keys for local videos; for remote videos they are absolute URLs.
    """

    __tablename__ = "renditions"
    __table_args__ = (UniqueConstraint("video_id", "height", name="uq_renditions_video_height"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    height: Mapped[int]
    width: Mapped[int] = mapped_column(default=0)
    fps: Mapped[float] = mapped_column(Float, default=0.0)
    bitrate: Mapped[int] = mapped_column(default=0)
    average_bitrate: Mapped[int] = mapped_column(default=0)
    codecs: Mapped[str] = mapped_column(String(100), default="")
    playlist_path: Mapped[str] = mapped_column(String(2000))
    file_path: Mapped[str] = mapped_column(String(2000))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    torrent_path: Mapped[str | None] = mapped_column(String(2000), default=None)
    info_hash: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
