"""Run a scenario module inside a throwaway network namespace (``tests/netns-run.sh``).

WebRTC never uses loopback, so WebRTC scenarios run in a namespace with a real interface; the
module prints its result as JSON on its last line of output.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from instance.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
HOST = "198.18.0.1"
"""The namespace's own address (its veth): instances inside bind here, never to loopback."""


def free_port() -> int:
    """A free TCP port on :data:`HOST`."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def namespace_settings(workdir: Path, secret_key: str, **overrides: Any) -> Settings:
    """Settings of an embedded instance listening on :data:`HOST` (a free port), its data in
    ``workdir``; ``overrides`` are more settings (ladder, seeder, tracker rate ...)."""
    from instance.settings import load_settings

    port = free_port()
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {
        "public_url": f"http://{HOST}:{port}",
        "listen": f"{HOST}:{port}",
        "data_dir": workdir / "data",
        "database_url": f"sqlite+aiosqlite:///{workdir / 'shoal.db'}",
        "secret_key": secret_key,
        "federation_allow_hosts": HOST,
        "rate_limit_tracker": "1000/60",
    }
    return load_settings(**{**values, **overrides})


def run_in_netns(module: str, workdir: Path, timeout: float, *args: str) -> dict[str, Any]:
    """``python -m module workdir args…`` inside the namespace; its last output line, parsed."""
    proc = subprocess.run(
        [str(ROOT / "tests" / "netns-run.sh"), sys.executable, "-m", module, str(workdir), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"scenario failed ({proc.returncode}):\n{proc.stderr[-6000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])
