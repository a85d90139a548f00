"""Running ffmpeg and ffprobe as child processes without blocking the event loop."""

from __future__ import annotations

import asyncio
import collections
import os
import shutil
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import Timeout

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"
SETPRIV = shutil.which("setpriv")

STDERR_TAIL_LINES = 20
STDOUT_LIMIT = 64 * 1024 * 1024

LineHandler = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class Completed:
    """What a finished child process left behind."""

    returncode: int
    stdout: bytes
    stderr_tail: tuple[str, ...]

    @property
    def stderr(self) -> str:
        """The last lines of standard error, joined."""
        return "\n".join(self.stderr_tail)


async def run(
    argv: Sequence[str],
    *,
    timeout: float | None,
    nice: int = 0,
    cwd: Path | None = None,
    on_line: LineHandler | None = None,
    timeout_code: str = "timeout",
) -> Completed:
    """Run ``argv`` and wait for it, killing it on timeout or cancellation.

    Standard output is either handed line by line to ``on_line`` or collected (up to
    64 MiB); standard error is drained continuously and only its last lines are kept, so
    a chatty tool can never fill a pipe and stall. The child is always reaped before this
    returns or raises.
    """
    command = list(argv)
    if SETPRIV:
        # PR_SET_PDEATHSIG: the kernel kills the tool if we die without cleaning up
        # (SIGKILL, OOM), so no orphaned ffmpeg keeps burning CPU after a worker crash.
        command = [SETPRIV, "--pdeathsig", "KILL", "--", *command]
    if nice:
        command = ["nice", "-n", str(nice), *command]
    # `nice` and `setpriv` exec the tool, so the pid we hold (and kill) is ffmpeg's own.
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=_child_env(),
        limit=1024 * 1024,
    )
    assert proc.stdout is not None and proc.stderr is not None
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
    chunks: list[bytes] = []

    async def drain_stderr() -> None:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                tail.append(line)

    async def drain_stdout() -> None:
        assert proc.stdout is not None
        if on_line is not None:
            async for raw in proc.stdout:
                await on_line(raw.decode("utf-8", "replace").strip())
            return
        total = 0
        while chunk := await proc.stdout.read(65536):
            total += len(chunk)
            if total <= STDOUT_LIMIT:
                chunks.append(chunk)

    tasks = [asyncio.ensure_future(drain_stdout()), asyncio.ensure_future(drain_stderr())]
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            await asyncio.gather(*tasks)
            returncode = await proc.wait()
    except TimeoutError:
        if not deadline.expired():
            raise
        name = os.path.basename(argv[0])
        raise Timeout(
            timeout_code, f"{name} did not finish within {timeout:g} s", "\n".join(tail)
        ) from None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return Completed(returncode, b"".join(chunks), tuple(tail))


def _child_env() -> dict[str, str]:
    """The environment for tools: ours, minus variables that make ffmpeg read config."""
    env = dict(os.environ)
    env.pop("FFREPORT", None)
    env.setdefault("LC_ALL", "C")
    return env


def ffprobe_argv(*args: str) -> list[str]:
    """ffprobe, quiet but for errors, reading plain files only, with ``args``."""
    return [FFPROBE, "-hide_banner", "-v", "error", "-protocol_whitelist", "file", *args]


def ffmpeg_argv(compiled: Sequence[str]) -> list[str]:
    """An ffmpeg-python compiled command with our global options in front.

    ffmpeg-python appends global arguments after the output; ffmpeg wants them first.
    Progress goes to stdout as key=value lines; only errors go to stderr.
    """
    return [
        compiled[0],
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-nostats",
        "-progress",
        "pipe:1",
        "-y",
        *compiled[1:],
    ]
