"""The seeder: a libtorrent session seeding the published renditions over BitTorrent and WebTorrent.

PeerTube's server is only an HTTP web seed; Shoal's also seeds for real, so desktop clients
and mirror instances are peers of the origin. The session seeds straight from local
storage; with S3 storage it seeds from a bounded local cache (LRU by last use, size
``seeder_cache_size``), filled when a rendition is picked. It seeds what the policy wants,
up to ``seeder_max_torrents`` torrents, under an upload rate limit. The set of torrents and their
resume data live under ``<data_dir>/p2p/`` so a restarted seeder resumes without
re-hashing. WebTorrent (WebRTC through the instance's WebSocket tracker) is on, with the
STUN server from settings.

Which renditions: :mod:`p2p.seeding`; when a torrent is super-seeded (BEP 16,
``seeder_super_seeding``) and how libtorrent's edges are worked around: :mod:`p2p.superseeding`.

It runs inside the web process of a one-process instance (no Redis; ``seeder_enabled``
overrides) and as ``shoal seeder`` otherwise.
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
from pathlib import Path
from typing import Any

import libtorrent as lt

from instance.core import USER_AGENT, Shoal
from instance.storage import keys
from instance.web.media import tracker_urls

from .seeding import Wanted, unwatch, wanted_renditions, watch
from .superseeding import SuperSeeding
from .torrents import announce_order
from .tracker import seeder_announce_url
from .webseed import Serving, publish, state_key, upgrade_web_seed

log = logging.getLogger("shoal.p2p.seeder")

REFRESH_INTERVAL = 15.0
RESUME_INTERVAL = 300.0
ALERT_POLL = 0.5
POLICY_INTERVAL = 1.0
CLOSE_TIMEOUT = 8.0
_STATE = "p2p.seeder"


class SeederError(Exception):
    """The seeder cannot seed a rendition (missing file, cache too small)."""


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
        # A peer that hung up is called back (p2p.superseeding): not a minute later when libtorrent
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
        # Super-seed torrents when they are idle or shared (p2p.superseeding).
        self._super = SuperSeeding(shoal.settings.seeder_super_seeding)
        # Which addresses it serves, per torrent: the web seed stands back for them (p2p.webseed).
        self.serving = Serving()

    @property
    def super_seeding(self) -> bool:
        """Whether torrents are super-seeded (while shared and served)."""
        return self._super.on

    @property
    def listen_port(self) -> int:
        return self.session.listen_port() if self.session is not None else 0

    @property
    def uses_cache(self) -> bool:
        return self.shoal.storage.local_path(keys.hls("x")) is None

    async def start(self) -> None:
        """Open the session, resume the torrents of the last run, then follow the policy."""
        for folder in (self.torrents_dir, self.resume_dir, self.cache_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.session = lt.session(session_settings(self.shoal))
        self._resume_saved_torrents()
        watch(self.wake)
        self._task = asyncio.create_task(self._run(), name="seeder")
        log.info("seeder listening on port %d, %d torrents resumed", self.listen_port, len(self.handles))

    async def stop(self) -> None:
        """Save resume data and the torrent list, then close the session."""
        unwatch(self.wake)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.serving.served = {}  # storage serves every client from now on
        if self.shoal.redis is not None:
            with contextlib.suppress(Exception):
                await self.shoal.redis.delete(state_key(self.shoal))
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
                    self._super.apply(self.handles, now)
                    await self._update_serving(now)
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

    async def _update_serving(self, now: float) -> None:
        if self.session is None:
            return
        limit = int(self.session.get_settings().get("upload_rate_limit", 0))
        self.serving.update(self.handles, limit, now)
        await publish(self.shoal, self.serving)

    def _handle_alerts(self) -> None:
        if self.session is None:
            return
        for alert in self.session.pop_alerts():
            if isinstance(alert, lt.peer_disconnected_alert):
                if self._task is not None and not self._task.done():  # not when stopping
                    self._super.hung_up(alert, self.handles)
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

    def set_super_seeding(self, on: bool) -> None:
        """Turn super-seeding on or off for every torrent now (and for the policy from now on)."""
        self._super.set(on, self.handles)

    def apply_super_seeding(self, now: float | None = None) -> None:
        """The super-seeding policy (:mod:`p2p.superseeding`), for every torrent, now."""
        self._super.apply(self.handles, now)

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
        self._super.start_flags(params)
        params.url_seeds = []  # the seeder has every piece: no need for the web seed
        # Our own trackers (every torrent lists them; the seeder announces to all tiers), with
        # the seeder's token: its announces are not rate limited.
        trackers = announce_order(tracker_urls(self.shoal))
        params.trackers = [seeder_announce_url(self.shoal, url) for url in trackers]
        params.tracker_tiers = list(range(len(trackers)))
        params.flags |= lt.torrent_flags.override_trackers
        self.handles[info_hash] = self.session.add_torrent(params)
        self.files[info_hash] = file_key

    def _remove(self, info_hash: str) -> None:
        handle = self.handles.pop(info_hash, None)
        self.files.pop(info_hash, None)
        self._super.forget(info_hash)
        if handle is not None and self.session is not None:
            self.session.remove_torrent(handle)
        for path in (self.torrents_dir / f"{info_hash}.torrent", self.resume_dir / f"{info_hash}.fastresume"):
            path.unlink(missing_ok=True)

    async def _seed(self, item: Wanted, keep: set[str]) -> None:
        size = await _size(self.shoal, item.torrent_key)
        torrent = await self.shoal.storage.open_range(item.torrent_key, 0, size - 1)
        if str(lt.torrent_info(torrent).info_hashes().v1) != item.info_hash:
            raise SeederError("the stored torrent does not match the rendition's infohash")
        torrent = await upgrade_web_seed(self.shoal, torrent, item.file_key, item.torrent_key)
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
    """Startup hook: the seeder inside the web process (``Settings.seeder_in_web``)."""
    if not shoal.settings.seeder_in_web:
        return
    seeder = Seeder(shoal)
    await seeder.start()
    shoal.extras[_STATE] = seeder

    async def stop(_: Any) -> None:
        shoal.extras.pop(_STATE, None)
        await seeder.stop()

    app.on_shutdown.append(stop)
