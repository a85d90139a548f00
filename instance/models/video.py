"""Videos: local uploads going through processing, and remote videos known by federation."""

from __future__ import annotations

import enum
import uuid as uuid_lib
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .actor import Actor
from .base import Base, JSONType, UTCDateTime, utcnow
from .states import StateGraph

# PeerTube's short UUID: the UUID's 128-bit number written in the flickrBase58 alphabet.
BASE58 = "123456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"


def short_uuid(value: str | uuid_lib.UUID) -> str:
    """PeerTube's ``shortUUID`` of a UUID (base58, flickr alphabet)."""
    number = uuid_lib.UUID(str(value)).int
    out = []
    while number:
        number, rest = divmod(number, 58)
        out.append(BASE58[rest])
    return "".join(reversed(out)) or BASE58[0]


def uuid_from_short(value: str) -> str | None:
    """The UUID a short UUID stands for, or None when ``value`` is not one."""
    number = 0
    for char in value:
        index = BASE58.find(char)
        if index < 0:
            return None
        number = number * 58 + index
    if number >= 1 << 128:
        return None
    return str(uuid_lib.UUID(int=number))


class Privacy(enum.IntEnum):
    """PeerTube's privacy ids."""

    PUBLIC = 1
    UNLISTED = 2
    PRIVATE = 3
    INTERNAL = 4

    @property
    def label(self) -> str:
        return self.name.capitalize()


class VideoState(enum.StrEnum):
    """What has happened to a video so far; each name says the last step done.

    Processing moves a local video ``received → probed → transcoded → published`` (each state
    set when its step has finished, so a video ``probed`` is being transcoded), or to
    ``failed`` with a reason. Every attempt starts again from ``received``.
    """

    RECEIVED = "received"
    PROBED = "probed"
    TRANSCODED = "transcoded"
    PUBLISHED = "published"
    FAILED = "failed"

    @property
    def peertube(self) -> tuple[int, str]:
        """PeerTube's ``state: {id, label}`` for this state."""
        if self is VideoState.PUBLISHED:
            return 1, "Published"
        if self is VideoState.FAILED:
            return 7, "Transcoding failed"
        return 2, "To transcode"

    @property
    def activity(self) -> str:
        """What is happening to a video in this state, for people watching its progress."""
        return _ACTIVITIES[self]


_ACTIVITIES = {
    VideoState.RECEIVED: "waiting",
    VideoState.PROBED: "transcoding",
    VideoState.TRANSCODED: "publishing",
    VideoState.PUBLISHED: "published",
    VideoState.FAILED: "failed",
}


# Every processing attempt starts again from received, so every processing state may go back
# to it; every one may fail. Remote videos are stored published.
VIDEO_STATES = StateGraph(
    "video",
    VideoState.RECEIVED,
    {
        VideoState.RECEIVED: frozenset({VideoState.RECEIVED, VideoState.PROBED, VideoState.FAILED}),
        VideoState.PROBED: frozenset({VideoState.RECEIVED, VideoState.TRANSCODED, VideoState.FAILED}),
        VideoState.TRANSCODED: frozenset({VideoState.RECEIVED, VideoState.PUBLISHED, VideoState.FAILED}),
        VideoState.PUBLISHED: frozenset({VideoState.PUBLISHED}),
        VideoState.FAILED: frozenset({VideoState.FAILED}),
    },
    work_kind="process_video",
)


class Video(Base):
    """A video. The row is the truth about its processing state (DESIGN principle 1)."""

    __tablename__ = "videos"
    __table_args__ = (
        Index("ix_videos_channel_published", "channel_id", "published_at"),
        Index("ix_videos_listing", "state", "privacy", "published_at"),
        Index("ix_videos_storage_prefix", "storage_prefix"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=lambda: str(uuid_lib.uuid4()))
    short_uuid: Mapped[str] = mapped_column(String(32), unique=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    support: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str | None] = mapped_column(String(16), default=None)
    category: Mapped[int | None] = mapped_column(default=None)
    licence: Mapped[int | None] = mapped_column(default=None)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    privacy: Mapped[int] = mapped_column(default=Privacy.PUBLIC)
    nsfw: Mapped[bool] = mapped_column(default=False)
    comments_enabled: Mapped[bool] = mapped_column(default=True)
    download_enabled: Mapped[bool] = mapped_column(default=True)
    wait_transcoding: Mapped[bool] = mapped_column(default=True)
    hidden: Mapped[bool] = mapped_column(default=False)
    hidden_reason: Mapped[str | None] = mapped_column(Text, default=None)
    duration: Mapped[float] = mapped_column(Float, default=0.0)
    aspect_ratio: Mapped[float | None] = mapped_column(Float, default=None)
    state: Mapped[str] = mapped_column(String(16), default=VideoState.RECEIVED)
    state_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    progress: Mapped[int] = mapped_column(default=0)
    failure_code: Mapped[str | None] = mapped_column(String(64), default=None)
    failure_reason: Mapped[str | None] = mapped_column(Text, default=None)
    source_filename: Mapped[str | None] = mapped_column(String(255), default=None)
    source_size: Mapped[int] = mapped_column(BigInteger, default=0)
    source_key: Mapped[str | None] = mapped_column(String(1024), default=None)
    storage_prefix: Mapped[str | None] = mapped_column(String(64), default=None)
    master_playlist: Mapped[str | None] = mapped_column(String(255), default=None)
    segments_sha256: Mapped[str | None] = mapped_column(String(255), default=None)
    thumbnail: Mapped[str | None] = mapped_column(String(255), default=None)
    preview: Mapped[str | None] = mapped_column(String(255), default=None)
    storyboard: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    # The uploader chose the thumbnail/preview: processing must not replace them.
    custom_thumbnail: Mapped[bool] = mapped_column(default=False, server_default=false())
    views: Mapped[int] = mapped_column(BigInteger, default=0)
    likes: Mapped[int] = mapped_column(default=0)
    dislikes: Mapped[int] = mapped_column(default=0)
    remote_url: Mapped[str | None] = mapped_column(String(2000), unique=True, default=None)
    remote_data: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    originally_published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    channel: Mapped[Actor] = relationship(lazy="raise_on_sql")

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("uuid", str(uuid_lib.uuid4()))
        kwargs.setdefault("short_uuid", short_uuid(kwargs["uuid"]))
        super().__init__(**kwargs)

    @property
    def is_local(self) -> bool:
        return self.remote_url is None

    @property
    def privacy_enum(self) -> Privacy:
        return Privacy(self.privacy)

    @property
    def state_enum(self) -> VideoState:
        return VideoState(self.state)
