"""The player's P2P on loopback: when the page offers it, the viewer's switch, the admin's switch,
private videos, and the byte totals players report (the admin page's P2P ratio).

Segments actually travelling between browsers need a real interface: test_p2p_browser.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page

from instance.models import P2PStats, Privacy, Role, Video
from instance.services import p2p_stats
from tests.conftest import Instance
from tests.media import make_clip
from tests.support import upload, wait_done

from .conftest import Problems, new_context

TIMEOUT = 180_000


async def published(inst: Instance, tmp_path: Path, **fields: Any) -> dict[str, Any]:
    client = await inst.user_client("carol")
    clip = make_clip(tmp_path, "p2p-player.mp4", 320, 240, 25, 3.0)
    video = await upload(client, clip, "Tide tables", **fields)
    details = await wait_done(client, video["id"])
    assert details["state"]["id"] == 1, details
    return details


async def player_config(inst: Instance, short_uuid: str) -> dict[str, Any]:
    status, html = await inst.client.get(f"/w/{short_uuid}")
    assert status == 200
    match = re.search(r'<script type="application/json" id="player-config">(.*?)</script>', html, re.S)
    assert match, html[:500]
    return json.loads(match.group(1))


async def test_page_offers_p2p_for_public_videos_only(make_instance, tmp_path: Path) -> None:
    inst = await make_instance(transcoding_resolutions="240", seeder_stun_server="stun.example.org:3478")
    details = await published(inst, tmp_path)
    config = await player_config(inst, details["shortUUID"])
    assert config["p2p"] == {
        "trackers": [inst.url.replace("http://", "ws://") + "/tracker/socket"],
        "segmentsSha256Url": details["streamingPlaylists"][0]["segmentsSha256Url"],
        "stunServer": "stun.example.org:3478",
    }
    async with inst.shoal.db.write() as session:
        row = await session.get(Video, details["id"])
        row.privacy = Privacy.PRIVATE
    owner = inst.client.as_user(await inst.client.login("carol", "password123"))
    status, html = await owner.get(f"/w/{details['shortUUID']}")
    assert status == 200
    config = json.loads(re.search(r'id="player-config">(.*?)</script>', html, re.S).group(1))
    assert config["needsToken"] is True and config["p2p"] is False


async def test_admin_switch_turns_p2p_off(make_instance, tmp_path: Path) -> None:
    inst = await make_instance(transcoding_resolutions="240", p2p_enabled=False)
    details = await published(inst, tmp_path)
    assert (await player_config(inst, details["shortUUID"]))["p2p"] is False


async def stored(inst: Instance) -> tuple[int, int, int]:
    async with inst.shoal.db.read() as session:
        row = await session.get(P2PStats, 1)
        return row.http_bytes, row.peer_bytes, row.reports


async def test_view_reports_add_bytes_to_the_p2p_ratio(make_instance, tmp_path: Path) -> None:
    inst = await make_instance(transcoding_resolutions="240")
    details = await published(inst, tmp_path)
    views = f"/api/v1/videos/{details['id']}/views"
    assert (await p2p_stats.totals(inst.shoal))["ratio"] is None
    status, _ = await inst.client.post(views, json={"currentTime": 5, "httpBytes": 3000, "peerBytes": 1000})
    assert status == 204
    # A later report from the same viewer (not a new view) still adds its bytes.
    status, _ = await inst.client.post(views, json={"currentTime": 35, "httpBytes": 0, "peerBytes": 4000})
    assert status == 204
    totals = await p2p_stats.totals(inst.shoal)
    assert totals == {"httpBytes": 3000, "peerBytes": 5000, "reports": 2, "ratio": 5000 / 8000}
    # Reports are written in batches (at most every few seconds per process), pending ones counted.
    await p2p_stats.write_pending(inst.shoal)
    assert await stored(inst) == (3000, 5000, 2)
    assert await p2p_stats.totals(inst.shoal) == totals
    for bad in ({"httpBytes": -1}, {"peerBytes": "lots"}, {"peerBytes": 1.5}, {"httpBytes": 2**53}):
        status, problem = await inst.client.post(views, json={"currentTime": 1, **bad})
        assert status == 400, (bad, problem)
        assert problem["code"] and problem["detail"], problem
    status, _ = await inst.client.post("/api/v1/videos/999999/views", json={"peerBytes": 10})
    assert status == 404
    assert (await p2p_stats.totals(inst.shoal))["reports"] == 2

    boss = await inst.user_client("boss", role=Role.ADMIN)
    status, html = await boss.get("/admin")
    assert status == 200
    assert re.search(r'id="p2p-ratio">62\.5%<', html), html[html.find('id="p2p"') :][:800]


async def chunk_requests(page: Page) -> list[str]:
    names = await page.evaluate("() => performance.getEntriesByType('resource').map(e => e.name)")
    return [name for name in names if "p2p-loader" in name]


async def open_watch(page: Page, url: str) -> None:
    await page.goto(url)
    await page.wait_for_function(
        "() => window.shoalPlayer && window.shoalPlayer.video.readyState >= 1", timeout=TIMEOUT
    )


async def test_viewer_turns_p2p_off_and_the_loader_stays_unloaded(
    make_instance, browser: Browser, tmp_path: Path
) -> None:
    inst = await make_instance(transcoding_resolutions="240")
    details = await published(inst, tmp_path)
    problems = Problems()
    context = await new_context(browser, inst.url, problems)
    page = await context.new_page()
    watch = f"/w/{details['shortUUID']}"

    await open_watch(page, watch)
    toggle = page.locator('[data-act="p2p"]')
    assert await toggle.is_visible()
    assert await toggle.inner_text() == "P2P on"
    assert await page.evaluate("() => window.shoalPlayer.stats.p2p") is True
    assert await chunk_requests(page)
    # Alone in its swarm, the P2P loader plays everything from HTTP (storage, S3 when scaled).
    await page.evaluate("() => { const v = window.shoalPlayer.video; v.muted = true; return v.play(); }")
    await page.wait_for_function(
        "() => window.shoalPlayer.video.currentTime > 1.5 && window.shoalPlayer.stats.httpBytes > 0",
        timeout=TIMEOUT,
    )
    await page.click('[data-act="stats"]')
    await page.wait_for_function(
        "() => document.getElementById('stats').textContent.includes('from p2p  0.00 MB')", timeout=TIMEOUT
    )

    await toggle.click()
    assert await toggle.inner_text() == "P2P off"
    assert await page.evaluate("() => localStorage.getItem('shoal-p2p')") == "off"
    await open_watch(page, watch)
    assert await page.evaluate("() => window.shoalPlayer.stats.p2p") is False
    assert await chunk_requests(page) == []
    await page.evaluate("() => { const v = window.shoalPlayer.video; v.muted = true; return v.play(); }")
    await page.wait_for_function("() => window.shoalPlayer.stats.httpBytes > 0", timeout=TIMEOUT)
    await context.close()
    assert problems.items == []


async def test_instance_without_p2p_loads_no_p2p_code(
    make_instance, browser: Browser, tmp_path: Path
) -> None:
    inst = await make_instance(transcoding_resolutions="240", p2p_enabled=False)
    details = await published(inst, tmp_path)
    problems = Problems()
    context = await new_context(browser, inst.url, problems)
    page = await context.new_page()
    await open_watch(page, f"/w/{details['shortUUID']}")
    assert await page.locator('[data-act="p2p"]').is_hidden()
    assert await page.evaluate("() => window.shoalPlayer.stats.p2p") is False
    assert await chunk_requests(page) == []
    await context.close()
    assert problems.items == []


async def first_fragment_file(page: Page) -> str:
    """The file of the first media byte range the page fetched (the start rung's file)."""
    await page.wait_for_function(
        "() => performance.getEntriesByType('resource').some(e => e.name.includes('-fragmented.mp4'))",
        timeout=TIMEOUT,
    )
    names = await page.evaluate(
        "() => performance.getEntriesByType('resource').sort((a, b) => a.startTime - b.startTime)"
        ".map(e => e.name).filter(n => n.includes('-fragmented.mp4'))"
    )
    return names[0].split("?")[0].rsplit("/", 1)[-1]


async def test_p2p_player_starts_on_the_tallest_rung_the_player_shows(
    make_instance, browser: Browser, tmp_path: Path
) -> None:
    inst = await make_instance(transcoding_resolutions="480,240")
    client = await inst.user_client("carol")
    video = await upload(client, make_clip(tmp_path, "rungs.mp4", 854, 480, 25, 3.0), "Two rungs")
    details = await wait_done(client, video["id"])
    assert details["state"]["id"] == 1, details
    problems = Problems()
    context = await new_context(browser, inst.url, problems)
    watch = f"/w/{details['shortUUID']}"

    # A large player (1280x800 window): the 480p rung from the first byte, no 240p start.
    page = await context.new_page()
    await open_watch(page, watch)
    assert await page.evaluate("() => window.shoalPlayer.stats.p2p") is True
    height = await page.evaluate("() => window.shoalPlayer.video.clientHeight")
    assert height >= 480, height
    assert "-480-" in await first_fragment_file(page)
    await page.close()

    # A player less than 480 px tall starts on the rung it shows in full.
    page = await context.new_page()
    await page.set_viewport_size({"width": 480, "height": 320})
    await open_watch(page, watch)
    height = await page.evaluate("() => window.shoalPlayer.video.clientHeight")
    assert height < 480, height
    assert "-240-" in await first_fragment_file(page)
    await page.close()
    await context.close()
    assert problems.items == []
