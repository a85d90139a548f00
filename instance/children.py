"""Child processes end with the process that started them, even when it is killed with SIGKILL.

A parent that dies without cleaning up (``kill -9``, the OOM killer) cannot stop its children:
a process pool's worker then waits forever on a queue nobody writes, and keeps the
multiprocessing resource tracker alive with it. Linux's ``PR_SET_PDEATHSIG`` (prctl(2)) has
the kernel send the child a signal when its parent goes; elsewhere a thread watches for the
parent to change. Child programs (ffmpeg, ffprobe) get the same through ``setpriv --pdeathsig``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
SETPRIV = shutil.which("setpriv")


def die_with_parent(parent: int) -> None:
    """Make this (child) process end when its parent, ``parent`` (the pid the parent passed
    with ``initargs=(os.getpid(),)``), does: a pool's ``initializer``.

    Naming the parent catches one that died while the child was still starting. ``PR_SET_PDEATHSIG``
    follows the parent *thread* that started the child, so the watching thread stays as a fallback
    (and is all there is outside Linux).
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent went before the signal was set
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def child_argv(argv: list[str]) -> list[str]:
    """``argv`` run so that the kernel kills the program if this process dies (``setpriv``
    execs it, so the pid is still the program's own)."""
    if SETPRIV:
        return [SETPRIV, "--pdeathsig", "KILL", "--", *argv]
    return argv
