"""Middlewares: errors as problem documents, a read retried after a lost database connection, and
who is calling (bearer token or web session)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy.exc import DBAPIError

from .. import auth
from ..errors import ApiError, Forbidden, Unauthorized
from .context import SESSION_TOKEN, SHOAL, USER

log = logging.getLogger("shoal.web")

SESSION_COOKIE = "shoal_session"

# CSRF: a request the session cookie authenticates must prove it comes from our own pages
# when it changes state. Header preferred; the form field is read only from small forms.
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
# Logging in does not act with the old session's authority; it checks Origin instead.
CSRF_EXEMPT = frozenset({"/login"})

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    411: "length_required",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    429: "too_many_requests",
}


def problem_response(error: ApiError) -> web.Response:
    """Render an :class:`ApiError` as ``application/problem+json``."""
    import json

    return web.Response(
        status=error.status,
        body=json.dumps(error.to_problem()).encode(),
        content_type="application/problem+json",
        headers=error.headers,
    )


@web.middleware
async def error_middleware(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    """Turn every error into a problem document; a bug answers 500 and is logged once."""
    try:
        return await handler(request)
    except ApiError as exc:
        return problem_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        if exc.status == 404:
            detail = f"No route for {request.path}."
        elif exc.status == 405:
            detail = f"{request.method} is not allowed on {request.path}."
        elif exc.status == 413:
            detail = "The request body is too large."
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        return problem_response(ApiError(detail, code=code, status=exc.status, headers=headers))
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(
            ApiError("An internal error occurred; it has been logged.", code="internal_error", status=500)
        )


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# SQLSTATE classes and codes of a connection PostgreSQL closed or never opened: 08xxx connection
# exceptions, 57P01-57P03 administrator/crash shutdown and "cannot connect now".
_LOST_STATES = ("08", "57P01", "57P02", "57P03")


def connection_lost(exc: BaseException) -> bool:
    """Whether a database error says the connection went away (not that the query was wrong)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    for cause in (exc, getattr(exc, "orig", None), getattr(getattr(exc, "orig", None), "__cause__", None)):
        if cause is None:
            continue
        if isinstance(cause, ConnectionError | TimeoutError):
            return True
        state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
        if isinstance(state, str) and state.startswith(_LOST_STATES):
            return True
    return False


def _unavailable() -> ApiError:
    return ApiError(
        "The database connection was lost; try again in a moment.",
        code="database_unavailable",
        status=503,
        headers={"Retry-After": "1"},
    )


@web.middleware
async def retry_middleware(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    """A read whose database connection drops (a restart, a failover, a killed backend) is run
    once more on a fresh connection; a write, or a read that fails again, answers 503
    ``database_unavailable`` with Retry-After instead of a 500. Nothing is retried once the
    answer has started."""
    try:
        return await handler(request)
    except (DBAPIError, OSError) as exc:
        if not connection_lost(exc):
            raise
        if request.method not in SAFE_METHODS or request.writer.output_size:
            log.warning("database connection lost during %s %s: %s", request.method, request.path, exc)
            raise _unavailable() from None
        log.warning(
            "database connection lost during %s %s; reading again: %s", request.method, request.path, exc
        )
    try:
        return await handler(request)
    except (DBAPIError, OSError) as exc:
        if not connection_lost(exc):
            raise
        log.warning("database connection lost again during %s %s: %s", request.method, request.path, exc)
        raise _unavailable() from None


@web.middleware
async def auth_middleware(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    """Resolve the caller from ``Authorization: Bearer`` or the session cookie."""
    header = request.headers.get("Authorization")
    shoal = request.app[SHOAL]
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Use 'Authorization: Bearer <token>'.", code="invalid_token")
        async with shoal.db.read() as session:
            user = await auth.user_for_access_token(session, token.strip(), kind="api")
        if user is None:
            raise Unauthorized("The access token is invalid, expired or revoked.", code="invalid_token")
        if user.blocked:
            raise Unauthorized("This account is blocked.", code="user_blocked")
        request[USER] = user
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            async with shoal.db.read() as session:
                user = await auth.user_for_access_token(session, cookie, kind="web")
            if user is not None and not user.blocked:
                request[USER] = user
                request[SESSION_TOKEN] = cookie
                if request.method in STATE_CHANGING and request.path not in CSRF_EXEMPT:
                    candidate = await _csrf_candidate(request, shoal.settings.max_json_body)
                    if not auth.check_csrf(shoal.secret, cookie, candidate):
                        raise Forbidden(
                            f"This request needs the session's CSRF token in the {CSRF_HEADER} header "
                            f"or the {CSRF_FIELD} form field (GET /api/v1/users/me/csrf-token).",
                            code="csrf_failed",
                        )
    return await handler(request)


async def _csrf_candidate(request: web.Request, max_form: int) -> str:
    """The CSRF token the request carries: the header, else the field of a small form.

    A form is read only when its declared length is at most ``max_form`` (the body is then
    cached by aiohttp for the handler); larger or chunked bodies, such as uploads, must
    use the header.
    """
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    length = request.content_length
    if request.content_type in FORM_TYPES and length is not None and length <= max_form:
        try:
            form = await request.post()
        except (ValueError, LookupError):  # malformed multipart, unknown charset
            return ""
        value = form.get(CSRF_FIELD)
        if isinstance(value, str):
            return value
    return ""
