"""Actors: accounts (Person), channels (Group) and the instance (Application), local or remote."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, UTCDateTime, utcnow


class ActorKind(enum.StrEnum):
    """ActivityStreams actor types Shoal models."""

    PERSON = "Person"
    GROUP = "Group"
    APPLICATION = "Application"


class Actor(Base):
    """An ActivityPub actor. Accounts and channels share one name space per host, as in PeerTube.

    A local actor has ``host`` = None and holds its private key; a remote one has the
    host it lives on and only its public key. A channel (Group) points at the account
    (Person) that owns it.
    """

    __tablename__ = "actors"
    __table_args__ = (
        UniqueConstraint("preferred_username", "host", name="uq_actors_username_host"),
        Index("ix_actors_owner_id", "owner_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    preferred_username: Mapped[str] = mapped_column(String(100))
    host: Mapped[str | None] = mapped_column(String(255), default=None)
    handle_key: Mapped[str] = mapped_column(String(400), unique=True)
    ap_id: Mapped[str] = mapped_column(String(2000), unique=True)
    inbox_url: Mapped[str] = mapped_column(String(2000))
    shared_inbox_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    outbox_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    followers_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    following_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    display_name: Mapped[str] = mapped_column(String(120), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    support: Mapped[str] = mapped_column(Text, default="")
    public_key_pem: Mapped[str | None] = mapped_column(Text, default=None)
    private_key_pem: Mapped[str | None] = mapped_column(Text, default=None)
    avatar_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    banner_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    owner: Mapped[Actor | None] = relationship(remote_side=[id], lazy="raise_on_sql", foreign_keys=[owner_id])

    @property
    def is_local(self) -> bool:
        return self.host is None

    def handle(self, local_host: str) -> str:
        """``name@host`` as PeerTube shows it."""
        return f"{self.preferred_username}@{self.host or local_host}"


def handle_key(preferred_username: str, host: str | None) -> str:
    """The unique, case-insensitive key of a handle (``name@host``; local actors have no host).

    A plain unique index on it works on both databases, where a unique (name, host) pair
    would let two local actors (host NULL) share a name on PostgreSQL.
    """
    return f"{preferred_username.lower()}@{(host or '').lower()}"


@event.listens_for(Actor, "before_insert")
def _set_handle_key(_mapper: Any, _connection: Any, actor: Actor) -> None:
    actor.handle_key = handle_key(actor.preferred_username, actor.host)
