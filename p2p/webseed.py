"""The web seed of local storage: storage answers a BitTorrent client only when the swarm cannot.

A torrent's ``url-list`` (BEP 19) makes HTTP an always-unchoked, always-fast peer: desktop
clients then take nearly every piece from it and next to nothing from the seeder or each
other. With local storage the ``url-list`` therefore points at ``/p2p/web-seed/<uuid>/<file>``
(S3 storage keeps the object's URL: its egress is not ours to shape). That route answers
``503`` with ``Retry-After`` (libtorrent and transmission come back then; aria2c drops the web
seed and keeps its peers) while the instance's seeder is serving the asking address in that
torrent, and sends the file (Range, like the HLS route) otherwise:

- the seeder is not seeding that torrent, or is gone (stopped, crashed, its state stale);
- the asking address is not connected to the seeder in that torrent (its port is unreachable
  from there, or the client has not found the seeder yet);
- the seeder is at its upload cap and the address's download has not moved for ``STALL``
  seconds (it is starving: the swarm cannot serve it).

The seeder computes, every second, which addresses it is serving per torrent (:class:`Serving`).
In the web process of a one-process instance the route asks it directly; ``shoal seeder``
publishes the same view to Redis (``STATE_TTL``), read at most once a second per web process.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import libtorrent as lt
from aiohttp import web
from sqlalchemy import select

from instance.core import Shoal
from instance.errors import ApiError, NotFound
from instance.models import Rendition
from instance.netguard import parse_address, unmapped
from instance.readcache import ReadCache
from instance.services.files import file_access
from instance.storage import keys
from instance.web.context import client_ip, shoal_of
from instance.web.sending import FILE_RE, IMMUTABLE, send_stored

log = logging.getLogger("shoal.p2p.webseed")

ROUTE = "/p2p/web-seed/{uuid}/{file}"
RETRY_AFTER = 10  # seconds before a client asks the web seed again
STALL = 10.0  # seconds without progress after which a peer of a saturated seeder is starving
SATURATED = 0.9  # share of the upload cap from which the seeder counts as saturated
STATE_TTL = 5  # seconds a published view stays valid (refreshed every second)
READ_EVERY = 1.0  # seconds a web process keeps the view it read
_SERVING = "p2p.webseed.view"
_FILES = "p2p.webseed.files"


def web_seed_url(shoal: Shoal, uuid: str, file_name: str) -> str:
    """Where a local rendition's torrent sends BitTorrent clients for HTTP."""
    return shoal.url(ROUTE.format(uuid=uuid, file=file_name))


def state_key(shoal: Shoal) -> str:
    return f"{shoal.settings.redis_prefix}:p2p:webseed"


def _address(ip: str) -> str:
    """One spelling per address (IPv4-mapped IPv6 as IPv4)."""
    try:
        return str(unmapped(parse_address(ip)))
    except ValueError:
        return ip


@dataclass
class Serving:
    """Per torrent, the addresses the seeder is serving; updated by the seeder every second."""

    served: dict[str, frozenset[str]] = field(default_factory=dict)
    saturated: bool = False
    # (info_hash, address) → (summed progress of its downloading peers, when it last moved)
    _progress: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)

    def update(self, handles: Mapping[str, lt.torrent_handle], upload_limit: int, now: float) -> None:
        peers: dict[str, list[Any]] = {}
        rate = 0
        for info_hash, handle in handles.items():
            try:
                infos = handle.get_peer_info()
            except RuntimeError:  # removed meanwhile
                continue
            peers[info_hash] = infos
            rate += sum(p.payload_up_speed for p in infos)
        self.saturated = upload_limit > 0 and rate >= SATURATED * upload_limit
        progress: dict[tuple[str, str], tuple[float, float]] = {}
        for info_hash, infos in peers.items():
            totals: dict[str, float] = {}
            for peer in infos:
                if peer.flags & lt.peer_info.seed:
                    continue  # it has every piece: it asks no web seed
                address = _address(peer.ip[0])
                totals[address] = totals.get(address, 0.0) + peer.progress
            for address, total in totals.items():
                last = self._progress.get((info_hash, address))
                moved = now if last is None or total > last[0] else last[1]
                progress[(info_hash, address)] = (total, moved)
        self._progress = progress
        served: dict[str, set[str]] = {info_hash: set() for info_hash in peers}
        for (info_hash, address), (_, moved) in progress.items():
            if not self.saturated or now - moved < STALL:
                served[info_hash].add(address)
        self.served = {info_hash: frozenset(addresses) for info_hash, addresses in served.items()}

    def dump(self) -> str:
        return json.dumps({h: sorted(a) for h, a in self.served.items()}, separators=(",", ":"))


async def served_addresses(shoal: Shoal) -> dict[str, frozenset[str]]:
    """The seeder's current view: from the seeder in this process, else from Redis, else none."""
    from .seeder import seeder_of

    seeder = seeder_of(shoal)
    if seeder is not None:
        return seeder.serving.served
    if shoal.redis is None:
        return {}
    cache: ReadCache[str, dict[str, frozenset[str]]] = shoal.state(_SERVING, ReadCache)
    return await cache.get("view", lambda: _read_view(shoal), ttl=READ_EVERY)


async def _read_view(shoal: Shoal) -> dict[str, frozenset[str]]:
    assert shoal.redis is not None
    try:
        raw = await shoal.redis.get(state_key(shoal))
        return {h: frozenset(a) for h, a in json.loads(raw).items()} if raw else {}
    except Exception as exc:  # Redis away or a bad value: storage serves
        log.warning("cannot read the seeder's web-seed view: %s", exc)
        return {}


async def publish(shoal: Shoal, serving: Serving) -> None:
    """``shoal seeder``: publish its view for the web processes (expires if the seeder dies)."""
    if shoal.redis is not None:
        try:
            await shoal.redis.set(state_key(shoal), serving.dump(), ex=STATE_TTL)
        except Exception as exc:  # Redis away: the view expires and storage serves everyone
            log.debug("cannot publish the web-seed view: %s", exc)


async def upgrade_web_seed(shoal: Shoal, torrent: bytes, file_key: str, torrent_key: str) -> bytes:
    """A torrent made before the web-seed route lists the file's plain URL first: list the route
    instead, in storage too (the ``url-list`` is outside the info dictionary: same infohash).
    The seeder runs this on every torrent it starts seeding, the ones whose clients the route
    turns to it."""
    if shoal.storage.local_path(file_key) is None or not file_key.startswith(keys.HLS + "/"):
        return torrent
    meta = lt.bdecode(torrent)
    seeds = meta.get(b"url-list") if meta else None
    seeds = [seeds] if isinstance(seeds, bytes) else list(seeds or [])
    uuid, name = file_key.split("/")[-2:]
    legacy = shoal.url("/static/streaming-playlists/" + quote(file_key)).encode()
    if not seeds or seeds[0] != legacy:
        return torrent
    meta[b"url-list"] = [web_seed_url(shoal, uuid, name).encode(), *seeds[1:]]
    upgraded = lt.bencode(meta)
    if lt.torrent_info(upgraded).info_hashes() != lt.torrent_info(torrent).info_hashes():
        return torrent  # not canonically bencoded: leave it as it is
    await shoal.storage.put_bytes(torrent_key, upgraded, "application/x-bittorrent")
    log.info("torrent %s: web seed is now the web-seed route", torrent_key)
    return upgraded


async def _info_hash(shoal: Shoal, key: str) -> str | None:
    async def load() -> str | None:
        async with shoal.db.read() as session:
            return await session.scalar(
                select(Rendition.info_hash).where(Rendition.file_path == key).limit(1)
            )

    cache: ReadCache[str, str | None] = shoal.state(_FILES, lambda: ReadCache(max_entries=4096))
    return await cache.get(key, load, ttl=30.0)


async def serve_web_seed(request: web.Request) -> web.StreamResponse:
    """A rendition's file for a BitTorrent client, or ``503`` while the seeder is serving it."""
    shoal = shoal_of(request)
    uuid, name = request.match_info["uuid"], request.match_info["file"]
    if not keys.UUID_RE.match(uuid) or not FILE_RE.match(name) or not name.endswith(".mp4"):
        raise NotFound("No such file.", code="file_not_found")
    access = await file_access(shoal, uuid)
    if access is None or not access.published or access.needs_token:
        raise NotFound("No such file.", code="file_not_found")
    key = keys.hls(uuid, name)
    info_hash = await _info_hash(shoal, key)
    if info_hash is not None and _address(client_ip(request)) in (await served_addresses(shoal)).get(
        info_hash, ()
    ):
        raise ApiError(
            "The instance's seeder is sending you this file over BitTorrent; "
            f"ask this web seed again in {RETRY_AFTER} s if it stops.",
            status=503,
            code="seeded_over_bittorrent",
            headers={"Retry-After": str(RETRY_AFTER)},
        )
    return await send_stored(request, shoal, key, cache=IMMUTABLE, token=None)
