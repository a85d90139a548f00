"""Local actors: names, URLs and RSA key pairs for accounts and channels."""

from __future__ import annotations

import asyncio
import re

from bovine.crypto import generate_rsa_public_private_key
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..core import Shoal
from ..errors import BadRequest, Conflict
from ..models import Actor, ActorKind

USERNAME_RE = re.compile(r"^[a-z0-9_.]{1,50}$")
CHANNEL_NAME_RE = re.compile(r"^[a-zA-Z0-9_.:-]{1,50}$")
RESERVED_NAMES = {"peertube", "shoal", "admin-instance", "accounts", "video-channels", "inbox"}


def check_username(name: str, *, field: str = "username") -> str:
    """A valid account name (PeerTube's rule: 1–50 of a-z, 0-9, '_' and '.')."""
    if not USERNAME_RE.fullmatch(name or ""):
        raise BadRequest(
            "A user name has 1 to 50 characters among lowercase letters, digits, '_' and '.'.",
            code="invalid_username",
            field=field,
        )
    if name in RESERVED_NAMES:
        raise BadRequest(f"The name '{name}' is reserved.", code="reserved_name", field=field)
    return name


def check_channel_name(name: str, *, field: str = "name") -> str:
    """A valid channel name (1–50 of letters, digits, '_', '.', ':' and '-')."""
    if not CHANNEL_NAME_RE.fullmatch(name or ""):
        raise BadRequest(
            "A channel name has 1 to 50 characters among letters, digits, '_', '.', ':' and '-'.",
            code="invalid_channel_name",
            field=field,
        )
    if name.lower() in RESERVED_NAMES:
        raise BadRequest(f"The name '{name}' is reserved.", code="reserved_name", field=field)
    return name


async def name_taken(session: AsyncSession, name: str) -> bool:
    """True when a local account or channel already uses ``name`` (one name space, case-insensitive)."""
    found = await session.scalar(
        select(Actor.id).where(Actor.host.is_(None), func.lower(Actor.preferred_username) == name.lower())
    )
    return found is not None


async def generate_keys() -> tuple[str, str]:
    """A fresh RSA-2048 key pair as PEM (public, private), made off the event loop."""
    return await asyncio.to_thread(generate_rsa_public_private_key)


def actor_path(kind: str, name: str) -> str:
    """The path of a local actor's id, as PeerTube lays them out."""
    return f"/video-channels/{name}" if kind == ActorKind.GROUP else f"/accounts/{name}"


async def new_local_actor(
    shoal: Shoal,
    session: AsyncSession,
    *,
    kind: ActorKind,
    name: str,
    display_name: str,
    summary: str = "",
    owner: Actor | None = None,
    keys: tuple[str, str] | None = None,
) -> Actor:
    """Add a local actor with its URLs and keys; raises 409 when the name is taken."""
    if await name_taken(session, name):
        raise Conflict(
            f"The name '{name}' is already taken on this instance.", code="name_taken", field="name"
        )
    public_pem, private_pem = keys or await generate_keys()
    base = shoal.url(actor_path(kind, name))
    actor = Actor(
        kind=kind,
        preferred_username=name,
        host=None,
        ap_id=base,
        inbox_url=base + "/inbox",
        shared_inbox_url=shoal.url("/inbox"),
        outbox_url=base + "/outbox",
        followers_url=base + "/followers",
        following_url=base + "/following",
        display_name=display_name[:120],
        summary=summary,
        public_key_pem=public_pem,
        private_key_pem=private_pem,
        owner_id=owner.id if owner is not None else None,
    )
    session.add(actor)
    await session.flush()
    return actor
