"""Super-seeding (BEP 16) and its repairs: when a torrent reveals pieces one at a time, and when not.

Super-seeding (``seeder_super_seeding``, on by default): the seeder reveals pieces one or two
at a time to each peer, so peers trade the rest and the origin sends about one copy.
libtorrent 2.x gets the edges wrong: the two pieces meant for a new connection are dropped (it
is still in the handshake), so a peer sees its first piece only after libtorrent's ten-second
timer for peers that are not interested, and then one piece at a time; a libtorrent downloader
that has been shown every piece takes the seeder for a seed it no longer needs and hangs up
before asking for the last one (about a minute until it calls again); a lone WebTorrent (Node)
peer got no piece at all in four minutes. And turning super-seeding off only resends the full
bitfield to peers that were shown a piece.

Hence: a peer that hangs up is dialled back at once, whatever the torrent's mode (at most
``CALL_BACKS`` times a minute; a WebTorrent peer, which has no address to dial, gets new offers
through the trackers instead: the torrent announces again ``REANNOUNCE_DELAY`` later, as it
does after every switch that disconnected its peers); shown only the pieces it lacks, it
takes them (if it was the only downloader, the torrent first goes to plain seeding, so it gets
them at once). And a
torrent is super-seeded only while it is shared and its peers are being served: it switches to
plain seeding when one downloading peer has been alone with it for ``LONE_GRACE`` seconds, or
when a downloading peer has received nothing after ``STUCK_GRACE`` seconds; the switch pauses
and resumes the torrent, so every peer is connected again and gets the full bitfield. It goes
back to super-seeding once no downloading peer has been connected for ``IDLE_GRACE`` seconds.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

import libtorrent as lt

log = logging.getLogger("shoal.p2p.seeder")

LONE_GRACE = 5.0
STUCK_GRACE = 15.0  # more than libtorrent's ten seconds before a new peer's first piece
IDLE_GRACE = 20.0
CALL_BACKS = 3  # at most, per peer and CALL_BACK_WINDOW seconds (a failed call is a hang-up too)
CALL_BACK_WINDOW = 60.0
REANNOUNCE_DELAY = 1.0
RTC_SOCKET = 5  # libtorrent's socket_type_t::rtc (a WebRTC data channel), unnamed in its Python bindings


def plain(handle: lt.torrent_handle) -> bool:
    """Plain seeding; peers are connected again, so that each gets the full bitfield. True when
    the torrent was paused and resumed for that (its peers were disconnected)."""
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
        return True
    return False


class SuperSeeding:
    """The policy of the module's docstring for the torrents of one session, by infohash."""

    def __init__(self, on: bool) -> None:
        self.on = on
        self._lone_since: dict[str, float] = {}  # info_hash → since when one downloader is alone
        self._idle_since: dict[str, float] = {}  # info_hash → since when no downloader (plain seeding)
        self._peer_since: dict[tuple[str, Any], float] = {}  # (info_hash, endpoint) → first seen
        self._called_back: dict[tuple[str, Any], list[float]] = {}  # (info_hash, endpoint) → when
        self._reannounce_at: dict[str, float] = {}  # info_hash → when to announce again

    def _plain(self, info_hash: str, handle: lt.torrent_handle, now: float) -> None:
        """:func:`plain`, then, if its peers were disconnected, an announce to every tracker soon:
        WebTorrent peers (WebRTC) cannot be dialled back, they come back through the WebSocket
        tracker's offers. Not at once: the announces of the resume itself are still under way
        (libtorrent fails a WebSocket announce made then with "torrent aborted" and retries it
        only after a while)."""
        if plain(handle):
            self._reannounce_at[info_hash] = now + REANNOUNCE_DELAY

    def start_flags(self, params: lt.add_torrent_params) -> None:
        """A torrent starts with no peer: super-seeded if the setting says so (resume data may
        carry either state; :meth:`apply` keeps it right afterwards)."""
        if self.on:
            params.flags |= lt.torrent_flags.super_seeding
        else:
            params.flags &= ~lt.torrent_flags.super_seeding

    def forget(self, info_hash: str) -> None:
        """A torrent left the session."""
        self._lone_since.pop(info_hash, None)
        self._idle_since.pop(info_hash, None)
        self._reannounce_at.pop(info_hash, None)

    def set(self, on: bool, handles: Mapping[str, lt.torrent_handle]) -> None:
        """Turn super-seeding on or off for every torrent now (and for the policy from now on)."""
        self.on = on
        self._lone_since.clear()
        self._idle_since.clear()
        self._peer_since.clear()
        now = time.monotonic()
        for info_hash, handle in handles.items():
            if on:
                handle.set_flags(lt.torrent_flags.super_seeding)
            else:
                self._plain(info_hash, handle, now)

    def hung_up(self, alert: lt.peer_disconnected_alert, handles: Mapping[str, lt.torrent_handle]) -> None:
        """Dial a peer that left back, once in a while: a libtorrent downloader hangs up on a
        super-seeder just before its last piece."""
        handle = alert.handle
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
        if info_hash not in handles or len(calls) >= CALL_BACKS or (calls and now - calls[-1] < 1.0):
            return
        self._called_back[key] = [*calls, now]
        status = handle.status()
        if status.num_peers == status.num_seeds:
            # It was alone: plain seeding, so that it gets the full bitfield when called back.
            self._plain(info_hash, handle, now)
        if int(alert.socket_type) == RTC_SOCKET:
            # A WebTorrent peer has no address to dial: it comes back through the tracker.
            self._reannounce_at.setdefault(info_hash, now + REANNOUNCE_DELAY)
            return
        log.debug("%s: calling %s back (%s)", info_hash, alert.endpoint, alert.message())
        with contextlib.suppress(RuntimeError):
            handle.connect_peer(alert.endpoint)

    def apply(self, handles: Mapping[str, lt.torrent_handle], now: float | None = None) -> None:
        """The policy, for every torrent: back to super-seeding when idle, plain when a
        downloader is alone or stuck."""
        now = time.monotonic() if now is None else now
        flag = lt.torrent_flags.super_seeding
        seen: set[tuple[str, Any]] = set()
        for info_hash, due in list(self._reannounce_at.items()):
            handle = handles.get(info_hash)
            if handle is None or now >= due:
                del self._reannounce_at[info_hash]
            if handle is not None and now >= due:
                with contextlib.suppress(RuntimeError):
                    handle.force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)
        for info_hash, handle in handles.items():
            try:
                status = handle.status()
                on = bool(handle.flags() & flag)
                peers = handle.get_peer_info() if on and status.num_peers > status.num_seeds else []
            except RuntimeError:  # removed meanwhile
                continue
            downloaders = status.num_peers - status.num_seeds
            if not on:
                if downloaders > 0 or not self.on:
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
            if lone or stuck or not self.on:
                self._plain(info_hash, handle, now)
                self._lone_since.pop(info_hash, None)
                log.debug("%s: plain seeding (%s)", info_hash, "stuck peer" if stuck else "lone downloader")
        for key in [k for k in self._peer_since if k not in seen]:
            del self._peer_since[key]
        for key in [k for k, t in self._called_back.items() if now - t[-1] >= CALL_BACK_WINDOW]:
            del self._called_back[key]
