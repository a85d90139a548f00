"""A long-running command's stop: a stop that wedges is cut off, with every thread's stack."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

# A command whose stop never ends: after SIGTERM it blocks on a lock nobody releases.
WEDGED = """
import asyncio, sys, threading
from instance.lifecycle import until_stopped

async def main():
    print("ready", flush=True)
    await until_stopped("wedged", grace=1.0)
    lock = threading.Lock()
    lock.acquire()
    lock.acquire()  # the stop that never ends

asyncio.run(main())
"""

CLEAN = """
import asyncio
from instance.lifecycle import stopped, until_stopped

async def main():
    print("ready", flush=True)
    await until_stopped("clean", grace=1.0)
    stopped()
    await asyncio.sleep(2)  # past the grace: the watchdog was disarmed

asyncio.run(main())
"""


def run_and_stop(code: str, tmp_path: Path) -> tuple[int, str, float]:
    root = Path(__file__).resolve().parents[2]
    err = tmp_path / "stderr"
    with err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", code], cwd=root, stdout=subprocess.PIPE, stderr=stderr
        )
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        time.sleep(0.2)  # the handlers are installed right after "ready"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=20)
        finally:
            proc.kill()
            proc.stdout.close()
    return code, err.read_text(), time.monotonic() - started


def test_a_wedged_stop_is_cut_off_with_every_threads_stack(tmp_path: Path) -> None:
    code, stderr, took = run_and_stop(WEDGED, tmp_path)
    assert code == 1, stderr
    assert "Timeout (0:00:01)!" in stderr and "in main" in stderr, stderr
    assert took < 10


def test_a_clean_stop_disarms_the_watchdog(tmp_path: Path) -> None:
    code, stderr, _ = run_and_stop(CLEAN, tmp_path)
    assert code == 0, stderr
    assert "Timeout" not in stderr
