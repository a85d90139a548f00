"""The small exception hierarchy of the federation package (STYLE 13)."""

from __future__ import annotations


class FederationError(Exception):
    """Base of every error raised by :mod:`federation`."""


class FetchError(FederationError):
    """A remote document could not be fetched or used; ``url`` says which."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class Gone(FetchError):
    """The remote object does not exist (404) or was deleted (410)."""


class Refused(FetchError):
    """The SSRF guard refused the address before any connection was made."""


class Invalid(FetchError):
    """The remote answered something that is not a usable ActivityPub document."""


class SignatureError(FederationError):
    """An incoming request's HTTP signature is missing or wrong; ``reason`` is sent back (401)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
