"""A libtorrent 2.1 download as its own process, as a user's client would be: prints a JSON report.

Usage: ``python -m tests.p2p.libtorrent_client TORRENT OUT_DIR TIMEOUT [LISTEN_HOST]``

The PyPI wheel is built with WebTorrent support: with a ``ws://`` tracker the session
announces WebRTC offers there. The report: ``path``, ``wires`` (the kinds of its peer
connections, "webrtc" for a WebRTC data channel), ``downloaded``, ``length``, ``exit``.
The process ends with ``os._exit``: a session that spoke WebRTC may take minutes to close.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import libtorrent as lt


def download(torrent: Path, out: Path, timeout: float, host: str) -> dict[str, object]:
    session = lt.session(
        {
            "listen_interfaces": f"{host}:0",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "allow_multiple_connections_per_ip": True,  # the seeder may be on this very host
            "webtorrent_stun_server": "",
            "ssrf_mitigation": False,  # the tracker is on a private address
            "alert_mask": lt.alert_category.connect | lt.alert_category.error,
        }
    )
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(str(torrent))
    params.save_path = str(out)
    params.flags &= ~(lt.torrent_flags.paused | lt.torrent_flags.auto_managed)
    handle = session.add_torrent(params)
    wires: list[str] = []
    deadline = time.monotonic() + timeout
    while not handle.status().is_seeding and time.monotonic() < deadline:
        for alert in session.pop_alerts():
            if isinstance(alert, lt.peer_connect_alert):
                # Its Python binding has no socket type; the message ends with it: "(RTC)", "(TCP)"…
                kind = alert.message().rpartition("(")[2].rstrip(")")
                wires.append("webrtc" if kind == "RTC" else kind.lower())
        time.sleep(0.1)
    status = handle.status()
    return {
        "path": str(out / params.ti.name()),
        "wires": sorted(set(wires)),
        "connections": len(wires),
        "downloaded": status.total_wanted_done,
        "length": params.ti.total_size(),
        "exit": 0 if status.is_seeding else 1,
    }


def main() -> None:
    torrent, out, timeout = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    host = sys.argv[4] if len(sys.argv) > 4 else "0.0.0.0"
    report = download(torrent, out, timeout, host)
    print(json.dumps(report), flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
