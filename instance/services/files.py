"""Who may open a video's files: public ones freely, private and internal ones with a token.

A file token is ``<expiry>.<user id>.<hmac>`` over the video's UUID and the user it was made
for, with the server secret (PeerTube's ``videoFileToken``). It opens that video's files, and
no other, until it expires and only while its holder may still watch the video: each use
checks the holder (not blocked, still active) against the video's access rule as it stands
now, so a token stops working once the video becomes private or its holder is blocked.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from .. import pubsub
from ..core import Shoal
from ..models import Actor, Privacy, User, UserState, Video, VideoState
from ..readcache import Entry, ReadCache
from ..storage import keys
from .public_links import sync_public_link
from .visibility import TOKEN_PRIVACIES, Viewer, can_see

log = logging.getLogger("shoal.files")

CACHE_SECONDS = 5.0


def _access_cache(shoal: Shoal) -> ReadCache[str, FileAccess | None]:
    """Access rules by video UUID."""
    return shoal.state("files.access", ReadCache)


def _holder_cache(shoal: Shoal) -> ReadCache[int, Viewer | None]:
    """Token holders by user id: who they are now (None once blocked, pending or gone)."""
    return shoal.state("files.holders", ReadCache)


@dataclass(frozen=True)
class FileAccess:
    """What serving a video's files needs to know about it."""

    video_id: int
    uuid: str
    needs_token: bool
    published: bool
    privacy: int = Privacy.PUBLIC
    hidden: bool = False
    owner_account_id: int | None = None

    def opens_for(self, viewer: Viewer) -> bool:
        """Whether ``viewer`` may watch the video now (the rule of :func:`.visibility.can_see`)."""
        return can_see(
            viewer,
            owner_account_id=self.owner_account_id,
            privacy=self.privacy,
            hidden=self.hidden,
            published=self.published,
        )


_TOKEN_RE = re.compile(r"^([0-9]{1,12})\.([0-9]{1,19})\.([0-9a-f]{64})$")


def _token_mac(secret: bytes, video_uuid: str, user_id: int, expires: int | str) -> str:
    return hmac.new(secret, f"file:{video_uuid}:{user_id}:{expires}".encode(), hashlib.sha256).hexdigest()


def make_file_token(
    secret: bytes, video_uuid: str, user_id: int, ttl: int, *, now: float | None = None
) -> tuple[str, int]:
    """A token opening ``video_uuid``'s files to user ``user_id`` for ``ttl`` seconds; returns
    (token, expiry)."""
    expires = int((now or time.time()) + ttl)
    return f"{expires}.{user_id}.{_token_mac(secret, video_uuid, user_id, expires)}", expires


def check_file_token(secret: bytes, video_uuid: str, token: str | None) -> int | None:
    """The id of the user ``token`` was made for, when it was made for this video and has not
    expired; None otherwise (any text, ASCII or not, is an answer, never an error)."""
    match = _TOKEN_RE.match(token or "")
    if match is None:
        return None
    raw_expiry, raw_user, mac = match.groups()
    if int(raw_expiry) < time.time():
        return None
    expected = _token_mac(secret, video_uuid, int(raw_user), raw_expiry)
    if not hmac.compare_digest(expected.encode(), mac.encode()):
        return None
    return int(raw_user)


async def token_holder(shoal: Shoal, user_id: int) -> Viewer | None:
    """The viewer a file token was made for, or None when they may no longer use it (blocked,
    not active, deleted). Cached :data:`CACHE_SECONDS`; :func:`forget_holder` drops it."""
    return await _holder_cache(shoal).get(user_id, lambda: _read_holder(shoal, user_id), ttl=CACHE_SECONDS)


async def _read_holder(shoal: Shoal, user_id: int) -> Viewer | None:
    async with shoal.db.read() as session:
        user = await session.get(User, user_id) if user_id <= 2**31 - 1 else None
        if user is not None and not user.blocked and user.state == UserState.ACTIVE:
            return Viewer.of(user)
    return None


def forget_holder(shoal: Shoal, user_id: int) -> None:
    """Drop a cached token holder after a change to the user (block, role, deletion)."""
    _holder_cache(shoal).forget(user_id)


async def holder_changed(shoal: Shoal, user_id: int) -> None:
    """After the commit of a change to who a user is (block, role, deletion): forget them as a
    token holder here and in the other processes."""
    forget_holder(shoal, user_id)
    await _announce_change(shoal, f"{_USER_MESSAGE}{user_id}")


async def file_access(shoal: Shoal, video_uuid: str) -> FileAccess | None:
    """The access rule for a local video's files (cached a few seconds: files are hot paths).

    Requests that miss the cache together share one database read; a read that a privacy change
    (:func:`forget`) overtook answers its callers but is not cached.
    """
    return await _access_cache(shoal).get(video_uuid, lambda: _decide(shoal, video_uuid), ttl=CACHE_SECONDS)


async def _decide(shoal: Shoal, video_uuid: str) -> FileAccess | None:
    async with shoal.db.read() as session:
        row = (
            await session.execute(
                select(Video.id, Video.privacy, Video.hidden, Video.state, Video.remote_url, Actor.owner_id)
                .join(Actor, Actor.id == Video.channel_id)
                .where(Video.uuid == video_uuid)
            )
        ).first()
    if row is None or row.remote_url is not None:
        return None
    return FileAccess(
        video_id=row.id,
        uuid=video_uuid,
        needs_token=row.privacy in TOKEN_PRIVACIES or row.hidden,
        published=row.state == VideoState.PUBLISHED,
        privacy=row.privacy,
        hidden=row.hidden,
        owner_account_id=row.owner_id,
    )


_IMAGE_STEM_RE = re.compile(r"^[0-9a-f-]{1,64}$")


def _image_cache(shoal: Shoal) -> ReadCache[str, str | None]:
    """Local videos' UUIDs by image file name (a name never changes owner; a miss is kept briefly)."""
    return shoal.state("files.image_owners", lambda: ReadCache(max_entries=50_000))


async def image_owner(shoal: Shoal, name: str) -> str | None:
    """The UUID of the local video whose thumbnail or preview is the file ``name``
    (``<storage prefix or UUID>.jpg``, as processing and custom thumbnails store them)."""
    stem = name.removesuffix(".jpg")
    if stem == name or not _IMAGE_STEM_RE.match(stem):
        return None
    return await _image_cache(shoal).get(stem, lambda: _read_image_owner(shoal, stem), ttl=_image_ttl)


def _image_ttl(found: str | None) -> float:
    return float("inf") if found else CACHE_SECONDS


async def _read_image_owner(shoal: Shoal, stem: str) -> str | None:
    local = Video.remote_url.is_(None)
    async with shoal.db.read() as session:
        found = await session.scalar(select(Video.uuid).where(Video.storage_prefix == stem, local))
        if found is None and keys.UUID_RE.match(stem):
            found = await session.scalar(select(Video.uuid).where(Video.uuid == stem, local))
    return found


def access_decision(shoal: Shoal, video_uuid: str) -> Entry[FileAccess | None] | None:
    """The cached decision for a video as it stands: (expiry, access), or None when none is cached.

    A new decision is a new tuple: callers that kept one compare by identity to learn that it was
    replaced or forgotten.
    """
    return _access_cache(shoal).entry(video_uuid)


_LISTENERS = "files.access_listeners"


def on_access_change(shoal: Shoal, listener: Callable[[str], None]) -> None:
    """Call ``listener(video_uuid)`` whenever this process forgets a video's access rule: after
    its own changes and after those other processes announce (for the other caches that follow
    who may read a video, such as the tracker's known infohashes)."""
    shoal.extras.setdefault(_LISTENERS, []).append(listener)


def forget(shoal: Shoal, video_uuid: str) -> None:
    """Drop the cached rule after a privacy change or deletion (reads in flight are not cached),
    and tell the :func:`on_access_change` listeners."""
    _access_cache(shoal).forget(video_uuid)
    for listener in shoal.extras.get(_LISTENERS, ()):
        try:
            listener(video_uuid)
        except Exception:
            log.exception("access listener %r failed for video %s", listener, video_uuid)


# ---------------------------------------------------------------- other processes
#
# With Redis (the scaled mode), every web process caches access rules of its own. A process that
# changes who may read a video's files says so on a Redis channel, and every web process forgets
# that video's rule (and the answers kept with it) when the message arrives, instead of up to
# CACHE_SECONDS later. A message lost to a Redis outage only leaves that slower bound.


_USER_MESSAGE = "user:"
"""Prefix of the messages naming a token holder (user id) instead of a video's UUID."""


def _access_channel(shoal: Shoal) -> str:
    return f"{shoal.settings.redis_prefix}:file-access"


async def _announce_change(shoal: Shoal, subject: str) -> None:
    if shoal.redis is None:
        return
    try:
        await shoal.redis.publish(_access_channel(shoal), subject)
    except Exception:
        log.warning(
            "could not tell the other processes that the access of %s changed; their cached "
            "rule expires within %g s",
            subject,
            CACHE_SECONDS,
            exc_info=True,
        )


async def follow_access_changes(shoal: Shoal) -> asyncio.Task[None]:
    """Forget the rules other processes announce as changed, for the life of a web process
    (scaled mode); returns the following task."""
    assert shoal.redis is not None

    async def changed(data: bytes) -> None:
        subject = data.decode("ascii", "replace")
        if subject.startswith(_USER_MESSAGE):
            if subject[len(_USER_MESSAGE) :].isdigit():
                forget_holder(shoal, int(subject[len(_USER_MESSAGE) :]))
            return
        forget(shoal, subject)

    return await pubsub.follow(shoal.redis, _access_channel(shoal), changed, name="follow_access_changes")


async def access_changed(shoal: Shoal, video_uuid: str) -> None:
    """After the commit of a change to who may read a video's files (privacy, hiding, state,
    deletion): drop the cached access rule and its kept answers, here and in the other
    processes, then sync the public link."""
    forget(shoal, video_uuid)
    await _announce_change(shoal, video_uuid)
    await sync_public_link(shoal, video_uuid)
