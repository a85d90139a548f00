"""Browser-to-browser P2P in Chromium, run inside ``tests/netns-run.sh`` (see test_p2p_browser.py).

WebRTC never offers loopback candidates, so this script starts an embedded instance bound to
198.18.0.1 (the namespace's veth), uploads a clip twice through the API (two videos, so two
swarms that cannot mix), and drives Chromium through two phases at once, one per video:

1. ``share``: page A plays the video; page B joins the swarm later and must receive part of
   its segments from A over WebRTC; their view reports reach the instance's P2P totals.
2. ``corrupt``: page C flips a byte in every binary WebRTC message it sends (an init script
   wraps ``RTCDataChannel.prototype.send``; the player itself is untouched); page D must reject
   those segments on their SHA-256, fetch them over HTTP instead, and play to the end.

It prints one JSON document with what each page measured; the pytest test asserts on it.
With ``P2P_SCENARIO_DEBUG=1`` the pages log p2p-media-loader's debug output and the document
carries every page's console.
Usage: ``tests/netns-run.sh python -m tests.webui.p2p_scenario WORKDIR``
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from instance.services import p2p_stats
from instance.web.context import SHOAL
from tests.media import make_clip
from tests.netns import namespace_instance, namespace_settings
from tests.support import PUBLISHED, new_user_client, upload, wait_done

from .conftest import CHROMIUM_ARGS

# Host candidates must carry the real address: Chromium otherwise hides it behind an mDNS name
# that nothing in the namespace resolves.
WEBRTC_ARGS = [*CHROMIUM_ARGS, "--disable-features=WebRtcHideLocalIpsWithMdns"]
# hls.js buffers 30 s ahead over HTTP as fast as it can; the segments after that are the ones a
# late viewer can get from an earlier one before it needs them.
CLIP_SECONDS = 60.0
STEP = 180.0  # seconds for any one condition on a busy machine

# Test-only sabotage, injected into page C before any script runs: every binary message it sends
# over a data channel (segment pieces) gets its first byte flipped; text (protocol) is untouched.
CORRUPT_UPLOADS = """
(() => {
  const send = RTCDataChannel.prototype.send;
  RTCDataChannel.prototype.send = function (data) {
    if (typeof data !== "string") {
      const bytes = data instanceof ArrayBuffer ? new Uint8Array(data.slice(0))
        : new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
      if (bytes.length) bytes[0] ^= 0xff;
      window.__corruptedMessages = (window.__corruptedMessages || 0) + 1;
      return send.call(this, bytes);
    }
    return send.call(this, data);
  };
})();
"""

STATS_JS = """() => {
  const p = window.shoalPlayer;
  if (!p) return null;
  const v = p.video;
  return {
    ...p.stats,
    bufferedEnd: v.buffered.length ? v.buffered.end(v.buffered.length - 1) : 0,
    currentTime: v.currentTime,
    duration: v.duration,
    ended: v.ended,
    corrupted: window.__corruptedMessages || 0,
    secureContext: window.isSecureContext,
  };
}"""


class Watched:
    """One page and what it logged: warnings (hash mismatches) and errors."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.warnings: list[str] = []
        self.errors: list[str] = []
        self.console: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", self._page_error)

    def _page_error(self, error: Any) -> None:
        self.errors.append(f"page error: {error}")
        self.console.append(f"page error: {error}")

    def _console(self, message: Any) -> None:
        self.console.append(f"{message.type}: {message.text}")
        if message.type == "warning":
            self.warnings.append(message.text)
        elif message.type == "error":
            self.errors.append(message.text)

    async def stats(self) -> dict[str, Any]:
        return await self.page.evaluate(STATS_JS)


async def wait_until(watched: Watched, condition: str, what: str, timeout: float = STEP) -> dict[str, Any]:
    """Poll the page's player stats until ``condition`` (a JS expression over ``s``) holds."""
    deadline = time.monotonic() + timeout
    stats: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        stats = await watched.page.evaluate(
            f"() => {{ const s = ({STATS_JS})(); return s && ({condition}) ? s : null; }}"
        )
        if stats:
            return stats
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}: {await watched.stats()} {watched.console[-30:]}")


async def open_player(
    browser: Browser, url: str, *, corrupt: bool = False, init_scripts: tuple[str, ...] = ()
) -> tuple[BrowserContext, Watched]:
    """A fresh profile on the watch page, playing muted; ``init_scripts`` run before the page's own."""
    context = await browser.new_context(viewport={"width": 960, "height": 600})
    context.set_default_timeout(STEP * 1000)
    if corrupt:
        await context.add_init_script(CORRUPT_UPLOADS)
    for script in init_scripts:
        await context.add_init_script(script)
    if os.environ.get("P2P_SCENARIO_DEBUG"):
        await context.add_init_script("localStorage.debug = 'p2pml:*,bittorrent-tracker:*,simple-peer'")
    page = await context.new_page()
    watched = Watched(page)
    if os.environ.get("P2P_SCENARIO_DEBUG"):
        page.on("request", lambda r: watched.console.append(f"request {r.method} {r.url}"))
        page.on("requestfinished", lambda r: watched.console.append(f"finished {r.url}"))
    await page.goto(url)
    try:
        await page.wait_for_function("() => window.shoalPlayer && window.shoalPlayer.video.readyState >= 1")
    except Exception as exc:
        raise AssertionError(f"the player did not start: {watched.console[-30:]}") from exc
    await page.evaluate("() => { const v = window.shoalPlayer.video; v.muted = true; return v.play(); }")
    return context, watched


async def publish_clips(base: str, instance: Any, workdir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The clip published twice: the video of the ``share`` phase and that of ``corrupt``."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as http:
        alice = await new_user_client(instance[SHOAL], http, base, "alice")
        clip = make_clip(workdir, "p2p-share.mp4", 426, 240, 25, CLIP_SECONDS)
        shared = await upload(alice, clip, "Shared by viewers", privacy=1)
        corrupted = await upload(alice, clip, "Shared by a corrupting viewer", privacy=1)
        done = [await wait_done(alice, video["id"], timeout=600) for video in (shared, corrupted)]
        assert all(details["state"]["id"] == PUBLISHED for details in done), done
        return done[0], done[1]


async def run(workdir: Path) -> dict[str, Any]:
    settings = namespace_settings(workdir, "p2p-scenario", transcoding_resolutions="240")
    base = settings.public_url
    result: dict[str, Any] = {}
    started = time.monotonic()
    async with namespace_instance(settings) as app:
        shared, corrupted = await publish_clips(base, app, workdir)
        watch = f"{base}/w/{shared['shortUUID']}"
        async with async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=WEBRTC_ARGS
            )
            try:
                result["config"] = await player_config(browser, watch)
                # Each phase waits on its pages' own conditions; run side by side they share
                # nothing but the instance (C and D only ever add HTTP bytes to the totals).
                corrupting = asyncio.create_task(corrupt(browser, f"{base}/w/{corrupted['shortUUID']}"))
                try:
                    result["share"] = await share(browser, watch)
                    result["totals"] = await p2p_stats.totals(app[SHOAL])
                finally:
                    result["corrupt"] = await corrupting
            finally:
                await browser.close()
        result["seconds"] = round(time.monotonic() - started, 1)
    return result


async def player_config(browser: Browser, watch: str) -> dict[str, Any]:
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(watch)
        return json.loads(await page.inner_text("#player-config"))
    finally:
        await context.close()


async def share(browser: Browser, watch: str) -> dict[str, Any]:
    """A plays until it holds the whole video; then B joins and plays to the end."""
    a_context, a = await open_player(browser, watch)
    try:
        await a.page.evaluate("() => { window.shoalPlayer.video.playbackRate = 2; }")
        await wait_until(a, "s.bufferedEnd > s.duration - 0.5", "page A holding the whole video")
        b_context, b = await open_player(browser, watch)
        try:
            await b.page.evaluate("() => { window.shoalPlayer.video.playbackRate = 2; }")
            b_stats = await wait_until(b, "s.ended", "page B playing to the end")
            a_stats = await a.stats()
            await b.page.close()  # pagehide: B's last report
            await a.page.close()
            return {
                "a": a_stats,
                "b": b_stats,
                "a_errors": a.errors,
                "b_errors": b.errors,
                "b_warnings": b.warnings,
                **debug_logs(a=a, b=b),
            }
        finally:
            await b_context.close()
    finally:
        await a_context.close()


async def corrupt(browser: Browser, watch: str) -> dict[str, Any]:
    """C corrupts every segment it uploads; D must notice, refetch over HTTP and play on."""
    c_context, c = await open_player(browser, watch, corrupt=True)
    try:
        await c.page.evaluate("() => { window.shoalPlayer.video.playbackRate = 2; }")
        await wait_until(c, "s.bufferedEnd > s.duration - 0.5", "page C holding the whole video")
        d_context, d = await open_player(browser, watch)
        try:
            await d.page.evaluate("() => { window.shoalPlayer.video.playbackRate = 2; }")
            d_stats = await wait_until(d, "s.ended", "page D playing to the end")
            c_stats = await c.stats()
            return {
                "c": c_stats,
                "d": d_stats,
                "c_errors": c.errors,
                "d_errors": d.errors,
                "d_warnings": d.warnings,
                **debug_logs(c=c, d=d),
            }
        finally:
            await d_context.close()
    finally:
        await c_context.close()


def debug_logs(**pages: Watched) -> dict[str, list[str]]:
    """Each page's console, when P2P_SCENARIO_DEBUG is set (the library's debug output included)."""
    if not os.environ.get("P2P_SCENARIO_DEBUG"):
        return {}
    return {f"{name}_console": page.console for name, page in pages.items()}


def main() -> None:
    workdir = Path(sys.argv[1])
    workdir.mkdir(parents=True, exist_ok=True)
    result = asyncio.run(run(workdir))
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
