"""A later viewer whose listed peers cannot connect, in Chromium (see test_p2p_browser.py).

The player's loader waits for peers before it fetches its first segments over HTTP while the
tracker lists other viewers (up to ``httpDownloadInitialTimeoutPerSegment``, 2 s). Here the
other "viewers" are fake WebTorrent peers: they announce in the page's swarm on the instance's
WebSocket tracker (``/tracker/socket``) as a browser does, and then cannot connect. One case
per way of failing, each with a fresh page and two such peers listed:

- ``refused``: they answer every WebRTC offer with an answer without ICE credentials
  (``a=ice-ufrag``/``a=ice-pwd``); Chromium refuses it at ``setRemoteDescription`` and the
  page's connection attempt fails at once (the quick failure p2p-media-loader can see);
- ``silent``: they take the offers and never answer (a tab gone or frozen);
- ``unreachable``: they answer with credentials and one host candidate where nothing listens;
  Chromium keeps checking it (ICE "disconnected" after ~15 s, never "failed" within 45 s:
  ``P2P_SCENARIO_ICE_WAIT=45`` keeps the page that long and reports its ICE states);
- ``mixed``: one refusing peer and a real page holding the whole video: the page must wait for
  that viewer and take its segments from it, not give up on the first failure.

Each page reports on its own clock (``performance.now()``) when its loader asked for the first
segment (it opens the tracker's WebSocket then), when the tracker answered its announce (and
how many viewers it listed), when the first segment request went out over HTTP (Resource
Timing), and its player's byte counters.

It prints one JSON document; ``python -m tests.webui.p2p_unreachable_scenario WORKDIR [CASES]``
inside ``tests/netns-run.sh`` (CASES: comma-separated, default all).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import Browser, async_playwright

from instance.web.context import SHOAL
from p2p.swarm import swarm_id
from tests.media import make_clip
from tests.netns import HOST, namespace_instance, namespace_settings
from tests.support import new_user_client, publish

from .p2p_scenario import STEP, WEBRTC_ARGS, debug_logs, open_player, player_config, wait_until

CASES = ("refused", "silent", "unreachable", "mixed")
PEERS = 2  # fake peers listed per case: the wait may end only once both have failed

# Test-only instrumentation, before any script runs: when the page opened its tracker socket
# (the loader does so on its first segment request), when the tracker answered its announce
# and with how many viewers, when answers to its offers came back, and its connections' ICE states.
TIMING_JS = """
(() => {
  const t = window.__p2pTiming = {
    socket: null, trackerAnswer: null, incomplete: null, answers: [], ice: [],
  };
  const NativePC = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends NativePC {
    constructor(...args) {
      super(...args);
      this.addEventListener("iceconnectionstatechange", () => {
        t.ice.push([Math.round(performance.now()), this.iceConnectionState]);
      });
    }
  };
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      if (t.socket === null) t.socket = performance.now();
      this.addEventListener("message", (event) => {
        let data;
        try { data = JSON.parse(event.data); } catch { return; }
        if (!data || data.action !== "announce") return;
        if (data.incomplete !== undefined && t.trackerAnswer === null) {
          t.trackerAnswer = performance.now();
          t.incomplete = data.incomplete;
        }
        if (data.answer) t.answers.push(performance.now());
      });
    }
  };
})();
"""
# The start of the first segment request the loader sent over HTTP (its URLs carry ?range=).
TIMING_READ_JS = """() => {
  const first = performance.getEntriesByType("resource")
    .filter((e) => /-fragmented\\.mp4\\?(.*&)?range=/.test(e.name))
    .sort((a, b) => a.startTime - b.startTime)[0];
  return { ...window.__p2pTiming, firstHttpSegment: first ? first.startTime : null,
           stats: window.shoalPlayer && window.shoalPlayer.stats };
}"""


def _binary(hex_id: str) -> str:
    """An id as the WebTorrent protocol sends it: 20 bytes as a JSON string of code points 0–255."""
    return bytes.fromhex(hex_id).decode("latin-1")


def fake_answer(offer_sdp: str, *, credentials: bool) -> dict[str, str]:
    """An answer to ``offer_sdp`` whose one ICE candidate leads nowhere (a UDP port of the
    instance's host where nothing listens). Without ICE credentials (``credentials`` False)
    Chromium refuses it at ``setRemoteDescription`` (RFC 8839 §5.4 makes ``ice-ufrag`` and
    ``ice-pwd`` mandatory); with them it tries the candidate until ICE fails."""
    ice = [f"a=ice-ufrag:{secrets.token_hex(4)}", f"a=ice-pwd:{secrets.token_hex(12)}"] if credentials else []
    mid = next((line[6:] for line in offer_sdp.splitlines() if line.startswith("a=mid:")), "0")
    fingerprint = ":".join(secrets.token_hex(32)[i : i + 2].upper() for i in range(0, 64, 2))
    sdp = "\r\n".join(
        [
            "v=0",
            f"o=- {secrets.randbelow(2**62)} 2 IN IP4 127.0.0.1",
            "s=-",
            "t=0 0",
            f"a=group:BUNDLE {mid}",
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
            f"c=IN IP4 {HOST}",
            *ice,
            f"a=candidate:1 1 udp 2122260223 {HOST} 50000 typ host",
            f"a=fingerprint:sha-256 {fingerprint}",
            "a=setup:active",
            f"a=mid:{mid}",
            "a=sctp-port:5000",
            "",
        ]
    )
    return {"type": "answer", "sdp": sdp}


class FakePeer:
    """A WebTorrent peer listed in one swarm of the instance's tracker that never connects.

    It announces like a browser viewer (no ``left``: the tracker counts it as a viewer still
    downloading, as it counts browsers) and handles the offers the tracker hands it as its
    ``behaviour`` says (``refused`` or ``silent``, see the module docstring).
    """

    def __init__(self, http: aiohttp.ClientSession, tracker: str, info_hash: str, behaviour: str) -> None:
        self.http, self.tracker, self.behaviour = http, tracker, behaviour
        self.info_hash = _binary(info_hash)
        self.peer_id = "-FK0001-" + secrets.token_hex(6)
        self.offers = 0
        self.answered = 0
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.task: asyncio.Task[None] | None = None

    async def join(self) -> None:
        """Announce in the swarm and wait for the tracker's answer (so the page will see us)."""
        self.ws = await self.http.ws_connect(self.tracker)
        await self.ws.send_json(
            {
                "action": "announce",
                "info_hash": self.info_hash,
                "peer_id": self.peer_id,
                "numwant": 0,
                "uploaded": 0,
                "downloaded": 0,
                "event": "started",
                "offers": [],
            }
        )
        reply = await self.ws.receive_json(timeout=30)
        assert "interval" in reply, reply
        self.task = asyncio.create_task(self._serve())

    async def _serve(self) -> None:
        assert self.ws is not None
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            if "offer" not in data:
                continue
            self.offers += 1
            if self.behaviour == "silent":
                continue
            await self.ws.send_json(
                {
                    "action": "announce",
                    "info_hash": self.info_hash,
                    "peer_id": self.peer_id,
                    "to_peer_id": data["peer_id"],
                    "offer_id": data["offer_id"],
                    "answer": fake_answer(data["offer"]["sdp"], credentials=self.behaviour == "unreachable"),
                }
            )
            self.answered += 1

    async def leave(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.ws is not None:
            await self.ws.close()


async def run_case(
    browser: Browser, http: aiohttp.ClientSession, watch: str, tracker: str, swarm: str, case: str
) -> dict[str, Any]:
    """A fresh page joins the swarm where PEERS peers are listed that cannot connect (``mixed``:
    a page holding the whole video, which can, and one that cannot)."""
    holder = None
    if case == "mixed":
        holder = await open_player(browser, watch)
        await wait_until(holder[1], "s.bufferedEnd > s.duration - 0.5", "the holder page buffering the video")
    behaviour = "refused" if case == "mixed" else case
    fakes = [FakePeer(http, tracker, swarm, behaviour) for _ in range(PEERS - (holder is not None))]
    for fake in fakes:
        await fake.join()
    context, page = await open_player(browser, watch, init_scripts=(TIMING_JS,))
    try:
        deadline = time.monotonic() + STEP
        timing: dict[str, Any] = {}
        while time.monotonic() < deadline:
            timing = await page.page.evaluate(TIMING_READ_JS)
            playing = await page.page.evaluate("() => window.shoalPlayer.video.currentTime > 0")
            if playing and (timing["firstHttpSegment"] is not None or timing["stats"]["peerBytes"] > 0):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"{case}: no segment: {timing} {page.console[-30:]}")
        started = timing
        if holder is not None:  # past the loader's own wait: did anything go over HTTP?
            await asyncio.sleep(3)
            timing = await page.page.evaluate(TIMING_READ_JS)
        if os.environ.get("P2P_SCENARIO_ICE_WAIT"):  # how long Chromium takes to give up on ICE
            await asyncio.sleep(float(os.environ["P2P_SCENARIO_ICE_WAIT"]))
            timing = await page.page.evaluate(TIMING_READ_JS)
        return {
            "timing": timing,
            "playing": started["stats"],
            "offers": [f.offers for f in fakes],
            "answered": [f.answered for f in fakes],
            "errors": page.errors,
            **debug_logs(page=page),
        }
    finally:
        await context.close()
        if holder is not None:
            await holder[0].close()
        for fake in fakes:
            await fake.leave()


async def run(workdir: Path, cases: list[str]) -> dict[str, Any]:
    settings = namespace_settings(workdir, "p2p-unreachable", transcoding_resolutions="240")
    base = settings.public_url
    result: dict[str, Any] = {}
    async with namespace_instance(settings) as app:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as http:
            alice = await new_user_client(app[SHOAL], http, base, "alice")
            clip = make_clip(workdir, "p2p-unreachable.mp4", 426, 240, 25, 20.0)
            details = await publish(alice, clip, "Listed but unreachable", timeout=600, privacy=1)
            watch = f"{base}/w/{details['shortUUID']}"
            async with async_playwright() as p:
                browser = await p.chromium.launch(
                    executable_path="/usr/bin/chromium", headless=True, args=WEBRTC_ARGS
                )
                try:
                    config = await player_config(browser, watch)
                    result["config"] = config
                    # One rung: the page joins the swarm of variant 0 of the master playlist.
                    swarm = swarm_id(config["playlistUrl"], 0)
                    tracker = config["p2p"]["trackers"][0]
                    for case in cases:
                        result[case] = await run_case(browser, http, watch, tracker, swarm, case)
                finally:
                    await browser.close()
    return result


def main() -> None:
    workdir = Path(sys.argv[1])
    workdir.mkdir(parents=True, exist_ok=True)
    cases = sys.argv[2].split(",") if len(sys.argv) > 2 else list(CASES)
    assert all(case in CASES for case in cases), cases
    result = asyncio.run(run(workdir, cases))
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
