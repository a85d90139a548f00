"""Errors are answers: every API error is an RFC 9457 problem with a machine code and a sentence."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

PROBLEM_TYPE = "urn:shoal:error:"


class ApiError(Exception):
    """An error a client caused or can act on; rendered as ``application/problem+json``."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        field: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.field = field
        self.headers = headers or {}
        self.extra = extra or {}

    def to_problem(self) -> dict[str, Any]:
        """The problem document (RFC 9457), with PeerTube's ``error`` alias of ``detail``."""
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE + self.code,
            "title": HTTPStatus(self.status).phrase,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
            "error": self.detail,
        }
        if self.field:
            body["field"] = self.field
        body.update(self.extra)
        return body


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"


class TooManyRequests(ApiError):
    status = 429
    code = "too_many_requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after
