"""Exceptions raised by the transcoding package.

Every error carries a machine-readable ``code`` (stable, snake_case, safe to store in a
database column or return in an API answer) and a human ``reason`` (one sentence).
"""

from __future__ import annotations


class TranscodingError(Exception):
    """Base class: something about a media file or an ffmpeg run went wrong.

    Catch this to handle every failure of the package in one place.
    """

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class InvalidMedia(TranscodingError):
    """The input is not media we accept (unreadable, unsafe, too big, too long, ...).

    Retrying will not help: the upload itself is the problem.
    """


class TranscodeFailed(TranscodingError):
    """ffmpeg or ffprobe failed on input that passed the probe.

    ``stderr`` keeps the tool's last lines of output for the logs.
    """

    def __init__(self, code: str, reason: str, stderr: str = "") -> None:
        super().__init__(code, reason)
        self.stderr = stderr


class Timeout(TranscodeFailed):
    """A tool ran longer than allowed and was killed.

    A subclass of :class:`TranscodeFailed` because the work did not complete; unlike other
    failures it may succeed later on a less busy machine.
    """
