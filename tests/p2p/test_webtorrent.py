"""A Node WebTorrent client downloads a rendition from the seeder over WebRTC (webtorrent_scenario.py).

The client (npm ``webtorrent``, installed under ``tests/p2p/webtorrent`` by ``make test-deps``)
gets a torrent reduced to the instance's WebSocket tracker: no web seed, no HTTP tracker, no
DHT, so the bytes can only come from the libtorrent seeder over a WebRTC data channel.
WebRTC never uses loopback, so the scenario runs in a throwaway network namespace
(``tests/netns-run.sh``) with an embedded instance bound to 198.18.0.1; the namespace cannot
reach the host's PostgreSQL, Redis or S3 endpoint, so this test belongs to the embedded run.
The scenario spends most of its time waiting on the WebRTC exchange, so it is started when the
run starts (``start_early``) and runs beside the other tests; the test collects its result.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.netns import early_result

ROOT = Path(__file__).resolve().parents[2]
CLIENT_DIR = ROOT / "tests" / "p2p" / "webtorrent"
SCENARIO = "tests.p2p.webtorrent_scenario"
TIMEOUT = 600


@pytest.mark.embedded_only
@pytest.mark.start_early(SCENARIO)
def test_node_webtorrent_downloads_from_the_seeder_over_webrtc() -> None:
    assert (CLIENT_DIR / "node_modules" / "webtorrent").is_dir(), (
        "the Node WebTorrent client is not installed: run `make test-deps`"
    )
    result = early_result(SCENARIO, TIMEOUT)
    client = result["client"]
    assert client["exit"] == 0, result
    assert client["wires"] == ["webrtc"], result  # the seeder was its only peer, over WebRTC
    assert client["downloaded"] == client["length"] == result["size"] > 0
    assert result["bytes_equal"] is True
    # The libtorrent session closes promptly even after a WebRTC exchange.
    assert result["seeder_stop_seconds"] < 8, result
