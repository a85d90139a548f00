"""The seeder: a libtorrent session seeding the published renditions over BitTorrent and WebTorrent.

PeerTube's server is only an HTTP web seed; Shoal's also seeds for real, so desktop clients
and mirror instances are peers of the origin. The session seeds straight from local
storage; with S3 storage it seeds from a bounded local cache (LRU by last use, size
``seeder_cache_size``), filled when a rendition is picked. Which renditions: the most
watched and the newest public or unlisted videos, alternately, up to
``seeder_max_torrents`` torrents, under an upload rate limit. The set of torrents and their
resume data live under ``<data_dir>/p2p/`` so a restarted seeder resumes without
re-hashing. WebTorrent (WebRTC through the instance's WebSocket tracker) is on, with the
STUN server from settings.

Super-seeding (BEP 16, ``seeder_super_seeding``, on by default): the seeder reveals pieces
one or two at a time to each peer, so peers trade the rest and the origin sends about one
copy. libtorrent 2.x gets the edges wrong: the two pieces meant for a new connection are
dropped (it is still in the handshake), so a peer sees its first piece only after libtorrent's
ten-second timer for peers that are not interested, and then one piece at a time; a
libtorrent downloader that has been shown every piece takes the seeder for a seed it no
longer needs and hangs up before asking for the last one (about a minute until it calls
again); a lone WebTorrent (Node) peer got no piece at all in four minutes. And turning
super-seeding off only resends the full bitfield to peers that were shown a piece.
Hence: a peer that hangs up is dialled back at once, whatever the torrent's mode (at most
``CALL_BACKS`` times a minute); shown only the pieces it lacks, it takes them (if it was the
only downloader, the torrent first goes to plain seeding, so it gets them at once). And a torrent is
super-seeded only while it is shared and its peers are being served: it switches to plain
seeding when one downloading peer has been alone with it for
``LONE_GRACE`` seconds, or when a downloading peer has received nothing after
``STUCK_GRACE`` seconds; the switch pauses and resumes the torrent, so every peer is
connected again and gets the full bitfield. It goes back to super-seeding once no
downloading peer has been connected for ``IDLE_GRACE`` seconds.

It runs inside the web process in the embedded mode (``seeder_enabled``) and as
``shoal seeder`` otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import posixpath
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libtorrent as lt
from sqlalchemy import select

from instance.core import USER_AGENT, Shoal
from instance.models import Privacy, Rendition, Video, VideoState

log = logging.getLogger("shoal.p2p.seeder")

REFRESH_INTERVAL = 15.0
RESUME_INTERVAL = 300.0
ALERT_POLL = 0.5
POLICY_INTERVAL = 1.0
LONE_GRACE = 5.0
STUCK_GRACE = 15.0  # more than libtorrent's ten seconds before a new peer's first piece
IDLE_GRACE = 20.0
CALL_BACKS = 3  # at most, per peer and CALL_BACK_WINDOW seconds (a failed call is a hang-up too)
CALL_BACK_WINDOW = 60.0
CLOSE_TIMEOUT = 8.0
_STATE = "p2p.seeder"
_RUNNING: set[Seeder] = set()


class SeederError(Exception):
    """The seeder cannot seed a rendition (missing file, cache too small)."""


@dataclass(frozen=True)
class Wanted:
    """One rendition the policy wants seeded."""

    info_hash: str
    torrent_key: str
    file_key: str
    size: int


def nudge() -> None:
    """Ask every seeder of this process to look at the policy again now (new torrents)."""
    for seeder in _RUNNING:
        seeder.wake.set()


def session_settings(shoal: Shoal) -> dict[str, Any]:
    """libtorrent settings from ours: no DHT, LSD, UPnP or NAT-PMP (the tracker finds peers)."""
    settings = shoal.settings
    return {
        "listen_interfaces": f"0.0.0.0:{settings.seeder_port}",
        "user_agent": USER_AGENT,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        # Only our own torrents are added, announcing to our own tracker, which may well
        # resolve to a loopback or private address (libtorrent would block that).
        "ssrf_mitigation": False,
        "stop_tracker_timeout": 2,
        # A peer that hung up is called back (see above): not a minute later when libtorrent
        # keeps its address (it came from the tracker), as it does by default.
        "min_reconnect_time": 2,
        "announce_to_all_tiers": True,
        "announce_to_all_trackers": True,
        "upload_rate_limit": settings.seeder_upload_limit,
        "active_seeds": settings.seeder_max_torrents,
        "active_limit": settings.seeder_max_torrents,
        "webtorrent_stun_server": settings.seeder_stun_server,
        "alert_mask": lt.alert_category.error
        | lt.alert_category.status
        | lt.alert_category.storage
        | lt.alert_category.connect,
    }


async def wanted_renditions(shoal: Shoal, limit: int) -> list[Wanted]:
    """The policy: renditions of the most watched and the newest videos, alternately, up to ``limit``."""
    base = (
        select(Video.id)
        .join(Rendition, Rendition.video_id == Video.id)
        .where(
            Video.remote_url.is_(None),
            Video.state == VideoState.PUBLISHED,
            Video.privacy.in_([Privacy.PUBLIC, Privacy.UNLISTED]),
            Video.hidden.is_(False),
            Rendition.info_hash.is_not(None),
        )
        .group_by(Video.id)
        .limit(limit)
    )
    async with shoal.db.read() as session:
        by_views = list((await session.execute(base.order_by(Video.views.desc(), Video.id.desc()))).scalars())
        newest = list(
            (await session.execute(base.order_by(Video.published_at.desc(), Video.id.desc()))).scalars()
        )
        order: list[int] = []
        for pair in zip(by_views, newest, strict=False):
            order += [v for v in pair if v not in order]
        order += [v for v in by_views + newest if v not in order]
        rows = await session.execute(
            select(Rendition).where(Rendition.video_id.in_(order), Rendition.info_hash.is_not(None))
        )
        renditions = sorted(rows.scalars(), key=lambda r: (order.index(r.video_id), -r.height))
    wanted = [
        Wanted(r.info_hash.lower(), r.torrent_path, r.file_path, r.size)
        for r in renditions[:limit]
        if r.info_hash and r.torrent_path
    ]
    # Then the remote videos this instance mirrors: the origin's torrents, fed from our copy.
    from .redundancy import mirrored_renditions

    seen = {w.info_hash for w in wanted}
    for info_hash, torrent_key, file_key, size in await mirrored_renditions(shoal):
        if len(wanted) < limit and info_hash not in seen:
            wanted.append(Wanted(info_hash, torrent_key, file_key, size))
            seen.add(info_hash)
    return wanted


class Seeder:
    """One libtorrent session and the torrents it seeds; start(), then stop()."""

    def __init__(self, shoal: Shoal, state_dir: Path | None = None) -> None:
        self.shoal = shoal
        self.dir = state_dir or shoal.settings.data_dir / "p2p"
        self.torrents_dir = self.dir / "torrents"
        self.resume_dir = self.dir / "resume"
        self.cache_dir = self.dir / "cache"
        self.state_file = self.dir / "seeding.json"
        self.session: lt.session | None = None
        self.handles: dict[str, lt.torrent_handle] = {}
        self.files: dict[str, str] = {}  # info_hash → storage key of the file it seeds
        self.wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._resume_waiters: dict[str, asyncio.Future[None]] = {}
        self._lock = asyncio.Lock()
        # Super-seed torrents when they are idle or shared (see the module's docstring).
        self.super_seeding = shoal.settings.seeder_super_seeding
        self._lone_since: dict[str, float] = {}  # info_hash → since when one downloader is alone
        self._idle_since: dict[str, float] = {}  # info_hash → since when no downloader (plain seeding)
        self._peer_since: dict[tuple[str, Any], float] = {}  # (info_hash, endpoint) → first seen
        self._called_back: dict[tuple[str, Any], list[float]] = {}  # (info_hash, endpoint) → when

    @property
    def listen_port(self) -> int:
        return self.session.listen_port() if self.session is not None else 0

    @property
    def uses_cache(self) -> bool:
        return self.shoal.storage.local_path("hls/x") is None

    async def start(self) -> None:
        """Open the session, resume the torrents of the last run, then follow the policy."""
        for folder in (self.torrents_dir, self.resume_dir, self.cache_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.session = lt.session(session_settings(self.shoal))
        self._resume_saved_torrents()
        _RUNNING.add(self)
        self._task = asyncio.create_task(self._run(), name="seeder")
        log.info("seeder listening on port %d, %d torrents resumed", self.listen_port, len(self.handles))

    async def stop(self) -> None:
        """Save resume data and the torrent list, then close the session."""
        _RUNNING.discard(self)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.session is None:
            return
        with contextlib.suppress(Exception):
            await self.save_resume_data()
        self._write_state()
        await self._wind_down()
        holder, self.session = [self.session], None
        self.handles.clear()
        # The destructor joins libtorrent's network thread and holds the GIL all along, so
        # nothing in this process (our own tracker included) can answer it meanwhile: it
        # runs off the event loop, after _wind_down() has let the trackers hear "stopped",
        # and is given up on after a while (a daemon thread never holds up the exit).
        loop = asyncio.get_running_loop()
        closed = asyncio.Event()

        def close() -> None:
            try:
                close_session(holder)
            finally:
                loop.call_soon_threadsafe(closed.set)

        threading.Thread(target=close, name="seeder-close", daemon=True).start()
        try:
            await asyncio.wait_for(closed.wait(), CLOSE_TIMEOUT)
        except TimeoutError:
            log.warning("the libtorrent session did not close within %.0f s; leaving it", CLOSE_TIMEOUT)

    async def _wind_down(self) -> None:
        """Remove every torrent while the event loop still runs, so that the "stopped"
        announces (and the WebSocket tracker's goodbye) reach a tracker that may live in
        this very process before the session is destroyed."""
        assert self.session is not None
        session = self.session
        session.pause()
        for handle in self.handles.values():
            session.remove_torrent(handle)
        deadline = time.monotonic() + CLOSE_TIMEOUT / 2
        settled = 0
        while time.monotonic() < deadline:
            alerts = session.pop_alerts()
            announcing = any(isinstance(a, lt.tracker_announce_alert) for a in alerts)
            settled = 0 if announcing or session.get_torrents() else settled + 1
            if settled >= 5:
                break
            await asyncio.sleep(0.1)

    # ------------------------------------------------------------ state across restarts

    def _write_state(self) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"torrents": self.files}, sort_keys=True))
        tmp.replace(self.state_file)

    def _resume_saved_torrents(self) -> None:
        try:
            saved = json.loads(self.state_file.read_text()).get("torrents", {})
        except (OSError, ValueError):
            saved = {}
        for info_hash, file_key in saved.items():
            torrent = self.torrents_dir / f"{info_hash}.torrent"
            resume = self.resume_dir / f"{info_hash}.fastresume"
            path = self._source_path(file_key)
            if not torrent.is_file() or path is None or not path.is_file():
                continue
            try:
                if resume.is_file():
                    params = lt.read_resume_data(resume.read_bytes())
                    if params.ti is None:
                        params.ti = lt.torrent_info(torrent.read_bytes())
                else:
                    params = self._fresh_params(torrent.read_bytes(), path)
                self._add(info_hash, file_key, params)
            except RuntimeError as exc:
                log.warning("cannot resume torrent %s: %s", info_hash, exc)

    async def save_resume_data(self, timeout: float = 10.0) -> int:
        """Write the resume data of every torrent under the state dir; returns how many."""
        loop = asyncio.get_running_loop()
        for info_hash, handle in self.handles.items():
            self._resume_waiters[info_hash] = loop.create_future()
            handle.save_resume_data(lt.torrent_handle.save_info_dict)
        waiters = list(self._resume_waiters.values())
        if self._task is None or self._task.done():
            # Not running the alert loop (stopping): poll alerts here.
            deadline = time.monotonic() + timeout
            while not all(w.done() for w in waiters) and time.monotonic() < deadline:
                self._handle_alerts()
                await asyncio.sleep(0.05)
        else:
            await asyncio.wait(waiters, timeout=timeout)
        self._resume_waiters.clear()
        self._write_state()
        return sum(1 for w in waiters if w.done() and not w.cancelled() and w.exception() is None)

    # ------------------------------------------------------------ the loop

    async def _run(self) -> None:
        last_refresh = last_resume = last_policy = 0.0
        while True:
            try:
                self._handle_alerts()
                now = time.monotonic()
                if now - last_policy >= POLICY_INTERVAL:
                    last_policy = now
                    self.apply_super_seeding(now)
                if self.wake.is_set() or now - last_refresh >= REFRESH_INTERVAL:
                    self.wake.clear()
                    last_refresh = now
                    await self.refresh()
                if now - last_resume >= RESUME_INTERVAL:
                    last_resume = now
                    if self.handles:
                        await self.save_resume_data()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("seeder loop failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), ALERT_POLL)

    def _handle_alerts(self) -> None:
        if self.session is None:
            return
        for alert in self.session.pop_alerts():
            if isinstance(alert, lt.peer_disconnected_alert):
                self._call_back(alert)
            elif isinstance(alert, lt.save_resume_data_alert):
                info_hash = str(alert.params.info_hashes.v1)
                (self.resume_dir / f"{info_hash}.fastresume").write_bytes(
                    lt.write_resume_data_buf(alert.params)
                )
                waiter = self._resume_waiters.get(info_hash)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
            elif isinstance(alert, lt.save_resume_data_failed_alert):
                info_hash = str(alert.handle.info_hashes().v1) if alert.handle.is_valid() else ""
                waiter = self._resume_waiters.get(info_hash)
                if waiter is not None and not waiter.done():
                    waiter.set_exception(SeederError(alert.message()))
            elif alert.category() & lt.alert_category.error:
                log.warning("libtorrent: %s", alert.message())

    def _call_back(self, alert: lt.peer_disconnected_alert) -> None:
        """Dial a peer that left back, once in a while: a libtorrent downloader hangs up on a
        super-seeder just before its last piece (see the module's docstring)."""
        handle = alert.handle
        if self._task is None or self._task.done():  # stopping
            return
        try:
            # Whatever the torrent's mode now: libtorrent may have turned super-seeding off
            # on its own (a torrent resumed from its resume data) after the peer saw it on.
            if not handle.is_valid():
                return
            info_hash = str(handle.info_hashes().v1)
        except RuntimeError:
            return
        now = time.monotonic()
        key = (info_hash, alert.endpoint)
        calls = [t for t in self._called_back.get(key, []) if now - t < CALL_BACK_WINDOW]
        if info_hash not in self.handles or len(calls) >= CALL_BACKS or (calls and now - calls[-1] < 1.0):
            return
        self._called_back[key] = [*calls, now]
        status = handle.status()
        if status.num_peers == status.num_seeds:
            # It was alone: plain seeding, so that it gets the full bitfield when called back.
            self._plain(handle)
        log.debug("%s: calling %s back (%s)", info_hash, alert.endpoint, alert.message())
        with contextlib.suppress(RuntimeError):
            handle.connect_peer(alert.endpoint)

    def set_super_seeding(self, on: bool) -> None:
        """Turn super-seeding on or off for every torrent now (and for the policy from now on)."""
        self.super_seeding = on
        self._lone_since.clear()
        self._idle_since.clear()
        self._peer_since.clear()
        for handle in self.handles.values():
            if on:
                handle.set_flags(lt.torrent_flags.super_seeding)
            else:
                self._plain(handle)

    def apply_super_seeding(self, now: float | None = None) -> None:
        """The super-seeding policy of the module's docstring, for every torrent."""
        now = time.monotonic() if now is None else now
        flag = lt.torrent_flags.super_seeding
        seen: set[tuple[str, Any]] = set()
        for info_hash, handle in self.handles.items():
            try:
                status = handle.status()
                on = bool(handle.flags() & flag)
                peers = handle.get_peer_info() if on and status.num_peers > status.num_seeds else []
            except RuntimeError:  # removed meanwhile
                continue
            downloaders = status.num_peers - status.num_seeds
            if not on:
                if downloaders > 0 or not self.super_seeding:
                    self._idle_since.pop(info_hash, None)
                elif now - self._idle_since.setdefault(info_hash, now) >= IDLE_GRACE:
                    self._idle_since.pop(info_hash, None)
                    handle.set_flags(flag)
                    log.debug("%s: super-seeding", info_hash)
                continue
            if downloaders == 1:
                lone = now - self._lone_since.setdefault(info_hash, now) >= LONE_GRACE
            else:
                self._lone_since.pop(info_hash, None)
                lone = False
            stuck = False
            for peer in peers:
                if peer.flags & lt.peer_info.seed:
                    continue
                key = (info_hash, peer.ip)
                seen.add(key)
                since = self._peer_since.setdefault(key, now)
                stuck = stuck or (peer.total_upload == 0 and now - since >= STUCK_GRACE)
            if lone or stuck or not self.super_seeding:
                self._plain(handle)
                self._lone_since.pop(info_hash, None)
                log.debug("%s: plain seeding (%s)", info_hash, "stuck peer" if stuck else "lone downloader")
        for key in [k for k in self._peer_since if k not in seen]:
            del self._peer_since[key]
        for key in [k for k, t in self._called_back.items() if now - t[-1] >= CALL_BACK_WINDOW]:
            del self._called_back[key]

    def _plain(self, handle: lt.torrent_handle) -> None:
        """Plain seeding; peers are connected again, so that each gets the full bitfield."""
        handle.unset_flags(lt.torrent_flags.super_seeding)
        status = handle.status()
        if status.num_peers > status.num_seeds:
            # libtorrent forgets a peer that connected to it and never gave another listen port
            # (uTP): dial each downloader back on the address it came from.
            downloaders = [p.ip for p in handle.get_peer_info() if not p.flags & lt.peer_info.seed]
            handle.pause()
            handle.resume()
            for endpoint in downloaders:
                with contextlib.suppress(RuntimeError):
                    handle.connect_peer(endpoint)

    async def refresh(self) -> None:
        """Seed what the policy wants, stop seeding the rest."""
        async with self._lock:
            if self.session is None:
                return
            wanted = await wanted_renditions(self.shoal, self.shoal.settings.seeder_max_torrents)
            keep = {w.info_hash for w in wanted}
            for info_hash in [h for h in self.handles if h not in keep]:
                self._remove(info_hash)
            for item in wanted:
                if item.info_hash in self.handles:
                    if self.uses_cache:
                        self._touch(item.file_key)
                    continue
                try:
                    await self._seed(item, keep)
                except (SeederError, OSError, RuntimeError) as exc:
                    log.warning("cannot seed %s: %s", item.file_key, exc)
            self._write_state()

    # ------------------------------------------------------------ torrents

    def _source_path(self, file_key: str) -> Path | None:
        local = self.shoal.storage.local_path(file_key)
        if local is not None:
            return local
        return self.cache_dir / posixpath.basename(file_key)

    def _fresh_params(self, torrent: bytes, path: Path) -> lt.add_torrent_params:
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(torrent)
        params.save_path = str(path.parent)
        # The torrent's file is named after the title; the data is the file in storage.
        params.renamed_files = {0: path.name}
        params.flags = lt.torrent_flags.seed_mode
        return params

    def _add(self, info_hash: str, file_key: str, params: lt.add_torrent_params) -> None:
        assert self.session is not None
        params.flags &= ~(lt.torrent_flags.paused | lt.torrent_flags.auto_managed)
        # A torrent starts with no peer: super-seeded if the setting says so (resume data may
        # carry either state; apply_super_seeding() keeps it right afterwards).
        if self.super_seeding:
            params.flags |= lt.torrent_flags.super_seeding
        else:
            params.flags &= ~lt.torrent_flags.super_seeding
        params.url_seeds = []  # the seeder has every piece: no need for the web seed
        self.handles[info_hash] = self.session.add_torrent(params)
        self.files[info_hash] = file_key

    def _remove(self, info_hash: str) -> None:
        handle = self.handles.pop(info_hash, None)
        self.files.pop(info_hash, None)
        self._lone_since.pop(info_hash, None)
        self._idle_since.pop(info_hash, None)
        if handle is not None and self.session is not None:
            self.session.remove_torrent(handle)
        for path in (self.torrents_dir / f"{info_hash}.torrent", self.resume_dir / f"{info_hash}.fastresume"):
            path.unlink(missing_ok=True)

    async def _seed(self, item: Wanted, keep: set[str]) -> None:
        size = await _size(self.shoal, item.torrent_key)
        torrent = await self.shoal.storage.open_range(item.torrent_key, 0, size - 1)
        if str(lt.torrent_info(torrent).info_hashes().v1) != item.info_hash:
            raise SeederError("the stored torrent does not match the rendition's infohash")
        path = self._source_path(item.file_key)
        assert path is not None
        if self.uses_cache and not path.is_file():
            await self._fill_cache(item, keep)
        elif self.uses_cache:
            self._touch(item.file_key)
        if not path.is_file():
            raise SeederError("the rendition's file is missing")
        (self.torrents_dir / f"{item.info_hash}.torrent").write_bytes(torrent)
        (self.resume_dir / f"{item.info_hash}.fastresume").unlink(missing_ok=True)
        self._add(item.info_hash, item.file_key, self._fresh_params(torrent, path))
        log.info("seeding %s (%s)", item.file_key, item.info_hash)

    # ------------------------------------------------------------ the S3 cache

    def _touch(self, file_key: str) -> None:
        path = self.cache_dir / posixpath.basename(file_key)
        with contextlib.suppress(OSError):
            os.utime(path)

    async def _fill_cache(self, item: Wanted, keep: set[str]) -> None:
        limit = self.shoal.settings.seeder_cache_size
        if item.size > limit:
            raise SeederError(f"the file ({item.size} bytes) is larger than the seeder cache")
        self._evict(limit - item.size, protect={posixpath.basename(k) for k in self.files.values()})
        final = self.cache_dir / posixpath.basename(item.file_key)
        partial = final.with_suffix(final.suffix + ".part")
        try:
            await self.shoal.storage.get_to_file(item.file_key, partial)
            partial.replace(final)
        finally:
            partial.unlink(missing_ok=True)

    def _evict(self, budget: int, protect: set[str]) -> None:
        """Delete the least recently used cached files (not being seeded) until they fit ``budget``."""
        entries = []
        for path in self.cache_dir.iterdir():
            if path.is_file():
                stat = path.stat()
                entries.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= budget:
                break
            if path.name in protect:
                continue
            path.unlink(missing_ok=True)
            total -= size

    def cache_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.cache_dir.iterdir() if p.is_file())


async def _size(shoal: Shoal, key: str) -> int:
    info = await shoal.storage.stat(key)
    if info is None:
        raise SeederError(f"{key} is not in storage")
    return info.size


def close_session(holder: list[lt.session]) -> None:
    """Pause and destroy the session in ``holder`` (its last reference) — blocking: run in a thread."""
    session = holder.pop()
    session.pause()
    del session


def seeder_of(shoal: Shoal) -> Seeder | None:
    """The seeder running in this process for ``shoal``, if any."""
    return shoal.extras.get(_STATE)


async def start_in_web(shoal: Shoal, app: Any) -> None:
    """Startup hook: the seeder inside the web process (embedded mode, or ``seeder_enabled``)."""
    if not shoal.settings.seeder_in_web:
        return
    seeder = Seeder(shoal)
    await seeder.start()
    shoal.extras[_STATE] = seeder

    async def stop(_: Any) -> None:
        shoal.extras.pop(_STATE, None)
        await seeder.stop()

    app.on_shutdown.append(stop)
