"""A remote video on our watch page, in Chromium: played from its instance, shared through its tracker.

B resolves A's video by URL; B's watch page plays it from A (the page's CSP allows A's origin for
the player's fetches, nothing else), offers P2P through A's tracker (the swarm every instance's
viewers of that video join), and the page logs no error and no failed request.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.async_api import Browser

from tests.media import make_clip
from tests.support import upload, wait_done
from webui.security import media_origins

from .conftest import Problems, new_context
from .test_browser import play_past


async def test_remote_video_plays_from_its_instance(make_instance, browser: Browser, tmp_path: Path) -> None:
    a = await make_instance("a", transcoding_resolutions="240")
    b = await make_instance("b")
    alice = await a.user_client("alice")
    video = await upload(alice, make_clip(tmp_path, "remote.mp4", 320, 240, 25, 6.0), "Harbour from afar")
    details_a = await wait_done(alice, video["id"])
    assert details_a["state"]["id"] == 1, details_a

    bob = await b.user_client("bob")
    url = f"{a.url}/videos/watch/{video['uuid']}"
    status, found = await bob.get("/api/v1/search/videos", params={"search": url})
    assert status == 200 and found["total"] == 1, found
    remote = found["data"][0]
    assert remote["isLocal"] is False

    a_tracker = a.url.replace("http://", "ws://") + "/tracker/socket"
    status, details_b = await b.client.get(f"/api/v1/videos/{video['uuid']}")
    assert status == 200 and details_b["trackerUrls"] == [a_tracker, a.url + "/tracker/announce"]

    async with b.client.session.get(f"{b.url}/w/{remote['shortUUID']}") as response:
        assert response.status == 200
        policy = response.headers["Content-Security-Policy"]
        html = await response.text()
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert a.url in directives["connect-src"] and "ws://" + a.url.split("://")[1] in directives["connect-src"]
    assert a.url not in directives["script-src"]  # scripts still only from B
    assert "https:" in directives["connect-src"].split() and "https:" not in directives["script-src"]
    config = json.loads(re.search(r'id="player-config">(.*?)</script>', html, re.S).group(1))
    assert config["playlistUrl"] == details_a["streamingPlaylists"][0]["playlistUrl"]
    assert config["p2p"] and config["p2p"]["trackers"] == [a_tracker]

    # B's own pages keep the strict policy.
    async with b.client.session.get(f"{b.url}/") as response:
        assert a.url not in response.headers["Content-Security-Policy"]

    problems = Problems()
    context = await new_context(browser, b.url, problems)
    page = await context.new_page()
    await page.goto(f"/w/{remote['shortUUID']}")
    await play_past(page, 2.0)
    loaded = await page.evaluate(
        "() => performance.getEntriesByType('resource').map(e => e.name).filter(n => n.includes('.m3u8'))"
    )
    # The master playlist from A; the rungs' playlists from A or from A's storage (S3 when scaled).
    a_origins = {a.url, *media_origins(a.settings)}
    assert loaded and loaded[0] == config["playlistUrl"], loaded
    assert all("/".join(name.split("/", 3)[:3]) in a_origins for name in loaded), (loaded, a_origins)
    await page.goto(f"/videos/embed/{video['uuid']}")
    await play_past(page, 2.0)
    await context.close()
    assert problems.items == []
