"""Run a scenario module inside a throwaway network namespace (``tests/netns-run.sh``).

WebRTC never uses loopback, so WebRTC scenarios run in a namespace with a real interface; the
module prints its result as JSON on its last line of output.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_in_netns(module: str, workdir: Path, timeout: float) -> dict[str, Any]:
    """``python -m module workdir`` inside the namespace; its last output line, parsed."""
    proc = subprocess.run(
        [str(ROOT / "tests" / "netns-run.sh"), sys.executable, "-m", module, str(workdir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"scenario failed ({proc.returncode}):\n{proc.stderr[-6000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])
