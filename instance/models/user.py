"""Local users: login, role and state. Each user owns one account actor (a Person)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .actor import Actor
from .base import Base, UTCDateTime, utcnow


class Role(enum.IntEnum):
    """PeerTube's role ids: 0 administrator, 1 moderator, 2 user."""

    ADMIN = 0
    MODERATOR = 1
    USER = 2

    @property
    def label(self) -> str:
        return {0: "Administrator", 1: "Moderator", 2: "User"}[self.value]


class UserState(enum.StrEnum):
    """Whether a user may log in: ``pending`` waits for a moderator (approval mode)."""

    PENDING = "pending"
    ACTIVE = "active"


class User(Base):
    """A person who logs in to this instance."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), unique=True)
    username: Mapped[str] = mapped_column(String(50), unique=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[int] = mapped_column(default=Role.USER)
    state: Mapped[str] = mapped_column(String(16), default=UserState.ACTIVE)
    must_change_password: Mapped[bool] = mapped_column(default=False)
    blocked: Mapped[bool] = mapped_column(default=False)
    blocked_reason: Mapped[str | None] = mapped_column(Text, default=None)
    registration_reason: Mapped[str | None] = mapped_column(Text, default=None)
    video_quota: Mapped[int] = mapped_column(BigInteger, default=-1)
    nsfw_policy: Mapped[str] = mapped_column(String(16), default="blur")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    account: Mapped[Actor] = relationship(lazy="raise_on_sql")

    @property
    def role_enum(self) -> Role:
        return Role(self.role)

    def is_at_least(self, role: Role) -> bool:
        """True when this user's role is ``role`` or higher (lower id = more power)."""
        return self.role <= role
