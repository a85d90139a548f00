"""Public links for nginx: the local videos whose HLS files anyone may read, as symlinks.

With local storage, ``<root>/public-hls/<uuid>`` is a symlink to ``../hls/<uuid>`` for exactly
the videos whose HLS files anyone may read (the rule of :func:`.files.file_access`: no token
needed and published, local). deploy/nginx/shoal.conf sends files found through a link straight
from the disk and passes everything else to Shoal, so a missing link only costs a trip through
Shoal: links are removed before or right after the change that closes a video, and the periodic
:func:`reconcile_public_links` repairs whatever a crash in between left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ..core import Shoal
from ..models import Video, VideoState
from ..storage.keys import UUID_RE
from .visibility import TOKEN_PRIVACIES

log = logging.getLogger("shoal.files")

PUBLIC_HLS = "public-hls"
_LINK_TEMP = ".link-"
# A temporary link older than this is a crashed writer's leftover (a writer renames it at once).
STALE_TEMP_SECONDS = 60.0


def public_links_dir(shoal: Shoal) -> Path | None:
    """The folder of public links, or None when the storage is not on this machine (S3)."""
    return shoal.storage.local_path(PUBLIC_HLS)


def _public_rule() -> tuple[Any, ...]:
    return (
        Video.remote_url.is_(None),
        Video.state == VideoState.PUBLISHED,
        Video.hidden.is_(False),
        Video.privacy.not_in(TOKEN_PRIVACIES),
    )


async def _is_public(shoal: Shoal, video_uuid: str) -> bool:
    async with shoal.db.read() as session:
        found = await session.scalar(select(Video.id).where(Video.uuid == video_uuid, *_public_rule()))
    return found is not None


async def _public_uuids(shoal: Shoal) -> set[str]:
    async with shoal.db.read() as session:
        return set(await session.scalars(select(Video.uuid).where(*_public_rule())))


def _link_target(video_uuid: str) -> str:
    # Relative, so the links stay right wherever the storage folder is mounted.
    return f"../hls/{video_uuid}"


def _place_link(folder: Path, video_uuid: str) -> bool:
    """Create or fix the link atomically (a temporary name renamed over it); False if it was right."""
    link = folder / video_uuid
    target = _link_target(video_uuid)
    with contextlib.suppress(OSError):
        if os.readlink(link) == target:
            return False
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f"{_LINK_TEMP}{video_uuid}-{secrets.token_hex(4)}"
    os.symlink(target, temp)
    try:
        os.replace(temp, link)
    except IsADirectoryError:
        # A real directory under a video's name (never made by Shoal): replace it too.
        _remove_entry(folder, video_uuid)
        os.replace(temp, link)
    finally:
        if temp.is_symlink():
            temp.unlink(missing_ok=True)
    return True


def _remove_entry(folder: Path, name: str) -> bool:
    """Remove a link (or anything else) under ``folder`` without following it; False if absent."""
    path = folder / name
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except IsADirectoryError:
        shutil.rmtree(path, ignore_errors=True)
    except PermissionError:
        # POSIX lets unlink() answer EPERM for a directory (Linux says EISDIR).
        if not path.is_dir() or path.is_symlink():
            raise
        shutil.rmtree(path, ignore_errors=True)
    return True


def _scan(folder: Path) -> tuple[set[str], list[str]]:
    """Well-formed links (uuid name → ``../hls/<uuid>``) and everything else worth removing."""
    links: set[str] = set()
    junk: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return links, junk
    now = time.time()
    for entry in entries:
        name = entry.name
        if name.startswith(_LINK_TEMP):
            try:
                young = now - entry.stat(follow_symlinks=False).st_mtime < STALE_TEMP_SECONDS
            except FileNotFoundError:
                continue
            if not young:
                junk.append(name)
            continue
        try:
            well_formed = (
                UUID_RE.match(name) is not None
                and entry.is_symlink()
                and os.readlink(entry.path) == _link_target(name)
            )
        except FileNotFoundError:
            continue
        if well_formed:
            links.add(name)
        else:
            junk.append(name)
    return links, junk


async def sync_public_link(shoal: Shoal, video_uuid: str) -> None:
    """Make the video's public link match the database: present exactly when its files are public.

    Call it after the transaction that changed the video commits. A link is checked against
    the database again once placed, so a concurrent change that closed the video (and whose
    own call ran before the link appeared) cannot leave it behind. Failures are logged: the
    change is committed, and the periodic reconcile tries again.
    """
    folder = public_links_dir(shoal)
    if folder is None or not UUID_RE.match(video_uuid):
        return
    try:
        if await _is_public(shoal, video_uuid):
            await asyncio.to_thread(_place_link, folder, video_uuid)
            if await _is_public(shoal, video_uuid):
                return
        await asyncio.to_thread(_remove_entry, folder, video_uuid)
    except OSError:
        log.exception("could not update the public link of video %s", video_uuid)


async def drop_public_link(shoal: Shoal, video_uuid: str) -> None:
    """Remove the video's public link now, before a change that may close it commits.

    Until :func:`sync_public_link` runs after the commit, its files go through Shoal, which
    answers from the database: a crash in between leaves the video closed, never open.
    """
    folder = public_links_dir(shoal)
    if folder is None or not UUID_RE.match(video_uuid):
        return
    try:
        await asyncio.to_thread(_remove_entry, folder, video_uuid)
    except OSError:
        log.exception("could not remove the public link of video %s", video_uuid)


@dataclass(frozen=True)
class LinkRepair:
    """What one :func:`reconcile_public_links` pass changed."""

    added: int = 0
    removed: int = 0
    junk: int = 0


async def reconcile_public_links(shoal: Shoal) -> LinkRepair:
    """Chore: add the missing public links, remove the extra ones and anything else in the folder.

    Safe to run in several processes at once: a link another process just added or removed
    is no error. Links it adds are checked against the database again afterwards (see
    :func:`sync_public_link`). Does nothing without local storage.
    """
    folder = public_links_dir(shoal)
    if folder is None:
        return LinkRepair()
    # The folder first, the database second: a link seen here and missing from the newer
    # list belongs to a video closed since, never to one opened since.
    links, junk = await asyncio.to_thread(_scan, folder)
    public = await _public_uuids(shoal)

    def repair() -> tuple[list[str], int, int]:
        junk_removed = sum(_remove_entry(folder, name) for name in junk)
        removed = sum(_remove_entry(folder, name) for name in links - public)
        added = [name for name in sorted(public - links) if _place_link(folder, name)]
        return added, removed, junk_removed

    added, removed, junk_removed = await asyncio.to_thread(repair)
    if added:
        still = await _public_uuids(shoal)
        closed = [name for name in added if name not in still]
        if closed:
            await asyncio.to_thread(lambda: [_remove_entry(folder, name) for name in closed])
    result = LinkRepair(added=len(added), removed=removed, junk=junk_removed)
    if added or removed or junk_removed:
        log.info(
            "public links: %d added, %d removed, %d other entries removed", len(added), removed, junk_removed
        )
    return result
