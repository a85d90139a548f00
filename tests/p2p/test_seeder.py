"""The seeder across restarts, and ``shoal seeder`` as its own process.

A restarted seeder takes its torrents back from its state directory (resume data, no
re-hashing: the all-time upload counter of the last run comes back with them) and seeds
again. ``shoal seeder`` runs as a real subprocess over the instance's database and
storage; a libtorrent client without the web seed downloads a rung from it.

The seeder super-seeds by default; a lone downloader (no web seed, no other peer) must still
get the whole rung promptly: ``LONE`` seconds, where plain super-seeding took 80 (libtorrent
shows a new peer its first piece after ten seconds, and a libtorrent downloader hangs up
before the last piece, calling again a minute later).
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes

import aiohttp
import libtorrent as lt
from yarl import URL

from p2p.seeder import Seeder
from tests.conftest import Instance, free_port
from tests.p2p.test_seeding import TIMEOUT, download, published_rung, small_clip, wait_for
from tests.support import backend_env, start_process

LONE = 40.0


def seeder_env(instance: Instance, data_dir: Path) -> dict[str, str]:
    """The settings a separate `shoal seeder` process of ``instance`` shares with it."""
    return backend_env(instance.settings, data_dir, seeder_stun_server="")


async def seeders_announced(instance: Instance, info_hash: str) -> int:
    """How many seeds the instance's HTTP tracker counts for ``info_hash`` (scrape)."""
    raw = bytes.fromhex(info_hash)
    url = URL(f"{instance.url}/tracker/scrape?info_hash={quote_from_bytes(raw)}", encoded=True)
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        body = lt.bdecode(await resp.read())
    return body[b"files"].get(raw, {}).get(b"complete", 0)


async def test_seeder_state_survives_a_restart(make_instance: Any, tmp_path: Path) -> None:
    instance: Instance = await make_instance(transcoding_resolutions="144")
    rendition, torrent, expected = await published_rung(
        instance, small_clip(tmp_path), "Seeded across restarts"
    )
    info_hash = rendition.info_hash
    assert info_hash
    state = tmp_path / "seeder-state"

    first = Seeder(instance.shoal, state)
    await first.start()
    try:
        assert not first.handles  # nothing to resume on a first start
        assert first.super_seeding  # the default

        async def seeding() -> bool:
            return info_hash in first.handles

        await wait_for(seeding, "the first seeder")
        got = await download(torrent, tmp_path / "first", web_seed=False, timeout=LONE)
        assert got.read_bytes() == expected

        async def counted() -> int:
            return max(0, first.handles[info_hash].status().all_time_upload - rendition.size + 1)

        await wait_for(counted, "the upload counter")  # libtorrent updates it once a second
    finally:
        await first.stop()
    assert (state / "resume" / f"{info_hash}.fastresume").is_file()
    assert (state / "torrents" / f"{info_hash}.torrent").is_file()

    second = Seeder(instance.shoal, state)
    await second.start()
    try:
        # Back before the policy ran, from the resume data: seeding at once, never hashing the
        # file again (validating the resume data, `checking_resume_data`, is a brief normal step).
        assert set(second.handles) == {info_hash}

        async def resumed() -> bool:
            status = second.handles[info_hash].status()
            assert status.state != lt.torrent_status.checking_files
            return status.is_seeding and status.super_seeding

        await wait_for(resumed, "the resumed torrent")
        got = await download(torrent, tmp_path / "second", web_seed=False, timeout=LONE)
        assert got.read_bytes() == expected

    finally:
        await second.stop()


async def test_shoal_seeder_command_seeds_for_real(make_instance: Any, tmp_path: Path) -> None:
    instance: Instance = await make_instance(transcoding_resolutions="144")
    rendition, torrent, expected = await published_rung(instance, small_clip(tmp_path), "Seeded by the CLI")
    assert rendition.info_hash
    port = free_port()
    log = tmp_path / "seeder.log"
    proc = start_process(["seeder", "--port", str(port)], seeder_env(instance, tmp_path / "seeder-data"), log)
    try:

        async def listening() -> bool:
            assert proc.poll() is None, log.read_text()
            return f"listening on port {port}" in log.read_text()

        await wait_for(listening, "`shoal seeder` to start")

        async def announced() -> bool:
            assert proc.poll() is None, log.read_text()
            return await seeders_announced(instance, rendition.info_hash or "") >= 1

        await wait_for(announced, "the seeder's announce")
        got = await download(torrent, tmp_path / "from-cli", web_seed=False, timeout=LONE)
        assert got.read_bytes() == expected
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, TIMEOUT)
    assert code == 0, log.read_text()
    assert (tmp_path / "seeder-data" / "p2p" / "seeding.json").is_file()
