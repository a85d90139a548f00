"""Viewers share segments in Chromium over WebRTC through the instance's tracker (p2p_scenario.py),
and a viewer whose listed peers cannot connect stops waiting for them (p2p_unreachable_scenario.py).

WebRTC never offers loopback candidates, so each scenario runs in a throwaway network
namespace (``tests/netns-run.sh``) with its own embedded instance bound to 198.18.0.1, and
reports what every page measured as JSON. The namespace cannot reach the host's PostgreSQL,
Redis or S3 endpoint, so this test belongs to the embedded run. Its pages mostly wait (playback
at 2x, peers connecting: about a quarter of a core), so the scenario starts when the run starts
(``start_early``) and runs beside the other tests; the test collects its result.
"""

from __future__ import annotations

import pytest

from tests.netns import early_result

SCENARIO = "tests.webui.p2p_scenario"
TIMEOUT = 1500  # upload, transcode, four pages playing a minute of video at 2x, on a busy machine
UNREACHABLE = "tests.webui.p2p_unreachable_scenario"
UNREACHABLE_TIMEOUT = 900  # upload, transcode, five pages opening a 20 s video
# The loader's start-up wait for peers (webui/src/p2p-loader.js) and, once the tracker has
# answered, how long an unanswered or unconnected peer is waited for (p2p-peer-wait.js).
PEER_WAIT_MS = 2000
ANSWER_WAIT_MS = 1000


def http_wait(timing: dict[str, float]) -> tuple[float, float]:
    """How long the page held its first segment back from HTTP: from its first segment request
    (when its loader opened the tracker's socket), and from the tracker's answer."""
    first = timing["firstHttpSegment"]
    assert first is not None, timing
    return first - timing["socket"], first - timing["trackerAnswer"]


@pytest.mark.embedded_only
@pytest.mark.start_early(SCENARIO)
def test_viewers_share_segments_and_reject_corrupted_ones() -> None:
    result = early_result(SCENARIO, TIMEOUT)

    config = result["config"]["p2p"]
    assert config["trackers"] == [config["trackers"][0]] and config["trackers"][0].startswith(
        "ws://198.18.0.1:"
    )
    assert config["trackers"][0].endswith("/tracker/socket")
    assert config["stunServer"] is None  # no STUN host unless the admin sets one
    assert config["segmentsSha256Url"].endswith("-segments-sha256.json")

    share = result["share"]
    a, b = share["a"], share["b"]
    assert a["p2p"] and b["p2p"]
    assert b["ended"], b
    # B joined after A held the whole video: part of B's segments came from A over WebRTC.
    assert b["peerBytes"] > 0, share
    # http://198.18.0.1 is no secure context: no WebCrypto, the player's own SHA-256 checked B's segments.
    assert b["secureContext"] is False
    assert a["uploadedBytes"] > 0, share
    assert b["httpBytes"] + b["peerBytes"] >= b["bytes"] * 0.9, b
    # The tracker told B that A was there, so B waited for A even for its first segments instead
    # of fetching the start over HTTP (at most the playing and the next segment of 15 go over HTTP
    # should A be slow to connect).
    assert b["httpBytes"] <= b["bytes"] * 0.2, b
    assert a["rejectedSegments"] == 0 and b["rejectedSegments"] == 0, share
    assert share["a_errors"] == [] and share["b_errors"] == [], share

    # Both players reported their bytes with their views; the instance keeps the totals.
    totals = result["totals"]
    assert totals["peerBytes"] >= b["peerBytes"] > 0, totals
    assert totals["httpBytes"] > 0 and 0 < totals["ratio"] < 1, totals

    corrupt = result["corrupt"]
    c, d = corrupt["c"], corrupt["d"]
    assert c["corrupted"] > 0, corrupt  # C really sent tampered segment data
    # D hashed what C sent, found it wrong, used none of it, and still played to the end over HTTP.
    assert d["rejectedSegments"] > 0, corrupt
    assert any("hash mismatch" in w for w in corrupt["d_warnings"]), corrupt
    assert d["peerBytes"] == 0, d
    assert d["ended"] and d["httpBytes"] >= d["bytes"], d
    assert corrupt["c_errors"] == [] and corrupt["d_errors"] == [], corrupt


@pytest.mark.embedded_only
@pytest.mark.start_early(UNREACHABLE)
def test_viewer_stops_waiting_for_peers_once_every_listed_peer_failed() -> None:
    result = early_result(UNREACHABLE, UNREACHABLE_TIMEOUT)
    for case in ("refused", "silent", "unreachable", "mixed"):
        outcome = result[case]
        # The tracker listed the page and two others, so the loader waited for peers; each of the
        # fake peers got the page's offer (and answered it, but for the silent ones).
        assert outcome["timing"]["incomplete"] == 3, outcome
        assert outcome["offers"] and all(n >= 1 for n in outcome["offers"]), outcome
        assert outcome["errors"] == [], outcome

    # Connections that fail at once end the wait at once: before, the loader waited its 2 s
    # (2.1 s from the first segment request, 1.9 s from the tracker's answer).
    from_request, from_answer = http_wait(result["refused"]["timing"])
    assert result["refused"]["answered"] == [1, 1], result["refused"]
    # (Bounds by the mechanisms, not by speed: the scenario runs beside the rest of the suite.)
    assert from_answer < ANSWER_WAIT_MS and from_request < PEER_WAIT_MS, result["refused"]["timing"]
    # Offers nobody answers, and answers whose candidates lead nowhere (Chromium never reports
    # that ICE failed in time), fail 1 s after the tracker's answer.
    for case in ("silent", "unreachable"):
        from_request, from_answer = http_wait(result[case]["timing"])
        assert ANSWER_WAIT_MS <= from_answer, (case, result[case]["timing"])
        assert from_request < PEER_WAIT_MS, (case, result[case]["timing"])

    # One listed peer failing is not all of them: the page waited for the one holding the video,
    # started on its segments and fetched nothing over HTTP.
    mixed = result["mixed"]
    assert mixed["playing"]["peerBytes"] > 0 and mixed["playing"]["httpBytes"] == 0, mixed
    assert mixed["timing"]["firstHttpSegment"] is None, mixed["timing"]
    assert mixed["timing"]["stats"]["httpBytes"] == 0, mixed["timing"]
