"""Children of ``shoal serve`` (the signing process, the multiprocessing resource tracker) end
with it, even when it is killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import free_port, serve_env, start_process, wait_http


def children_of(pid: int) -> set[int]:
    """Live (not zombie) processes whose parent is ``pid``, from /proc."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def until(condition: Callable[[], bool], seconds: float) -> None:
    """Wait until ``condition()`` holds, at most ``seconds``."""
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds * 10)):
        if condition() or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.1)


@pytest.mark.embedded_only
async def test_children_die_with_a_killed_serve(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_process(["serve"], serve_env(tmp_path / "data", port), tmp_path / "serve.log")
    try:
        await wait_http(url + "/api/v1/config")
        await until(lambda: len(children_of(proc.pid)) >= 2, 30)
        children = children_of(proc.pid)
        assert len(children) >= 2, (children, (tmp_path / "serve.log").read_text()[-2000:])
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        await until(lambda: not any(alive(pid) for pid in children), 10)
        left = [pid for pid in children if alive(pid)]
        names = [Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:200] for pid in left]
        for pid in left:  # do not leave them to the next test
            os.kill(pid, signal.SIGKILL)
        assert not left, f"children still alive after their parent was killed: {left} {names}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
