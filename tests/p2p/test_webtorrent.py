"""WebTorrent clients download a rendition from the seeder over WebRTC (webtorrent_scenario.py).

Each client gets a torrent reduced to the instance's WebSocket tracker: no web seed, no HTTP
tracker, no DHT, so the bytes can only come from the libtorrent seeder over a WebRTC data
channel. The clients: Node WebTorrent 3 (npm ``webtorrent``, installed under
``tests/p2p/webtorrent`` by ``make test-deps``), and the PyPI libtorrent 2.1, whose WebTorrent
support shares one WebSocket among its torrents and expects its own dialect of the tracker
protocol (:mod:`p2p.webtorrent`). WebRTC never uses loopback, so the scenario runs in a
throwaway network namespace (``tests/netns-run.sh``) with an embedded instance bound to
198.18.0.1; the namespace cannot reach the host's PostgreSQL, Redis or S3 endpoint, so these
tests belong to the embedded run. The scenarios spend most of their time waiting on the WebRTC
exchange, so each is started when the run starts (``start_early``) and runs beside the other
tests; each test collects its result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.netns import early_result

ROOT = Path(__file__).resolve().parents[2]
CLIENT_DIR = ROOT / "tests" / "p2p" / "webtorrent"
SCENARIO = "tests.p2p.webtorrent_scenario"
TIMEOUT = 600


def scenario_result(client: str) -> dict[str, Any]:
    return early_result(SCENARIO, TIMEOUT, client)


def check_download(result: dict[str, Any], wires: list[str] | None = ["webrtc"]) -> None:  # noqa: B006
    client = result["client"]
    assert client["exit"] == 0, result
    if wires is not None:
        assert client["wires"] == wires, result  # the seeder was its only peer, over WebRTC
    assert client["downloaded"] == client["length"] == result["size"] > 0
    assert result["bytes_equal"] is True
    # The libtorrent session closes promptly even after a WebRTC exchange.
    assert result["seeder_stop_seconds"] < 8, result


@pytest.mark.embedded_only
@pytest.mark.start_early(SCENARIO, "node")
def test_node_webtorrent_downloads_from_the_seeder_over_webrtc() -> None:
    assert (CLIENT_DIR / "node_modules" / "webtorrent").is_dir(), (
        "the Node WebTorrent client is not installed: run `make test-deps`"
    )
    check_download(scenario_result("node"))


@pytest.mark.embedded_only
@pytest.mark.start_early(SCENARIO, "libtorrent")
def test_libtorrent_with_webtorrent_downloads_from_the_seeder_over_webrtc() -> None:
    """The super-seeding seeder shows a new WebRTC peer nothing at first, then switches to plain
    seeding (a lone downloader), which drops the connection: the seeder announces again a second
    later, on a new WebSocket that takes its peer id over, so the peer gets new offers (about
    8 s in all; 24 s when the seeder waited for libtorrent's own retry, never when the tracker
    kept the peer id on the old socket)."""
    check_download(scenario_result("libtorrent"))


@pytest.mark.embedded_only
@pytest.mark.start_early(SCENARIO, "transmission")
def test_transmission_downloads_from_the_seeder_alone() -> None:
    """transmission-cli 3.00 with the torrent as published minus its web seed: it skips the
    WebSocket tracker, finds the seeder through the HTTP tracker (the first tier) and gets every
    byte from it over TCP (it ignores peers on loopback, hence the namespace)."""
    check_download(scenario_result("transmission"), wires=None)
