"""Declared API routes: parsing, authorisation and rate limits in one place, and the OpenAPI document.

A handler is declared with :meth:`Api.route`; the wrapper validates the JSON (or form) body
and the query string with pydantic models, checks the caller's role and the route's rate
limit, and only then calls the handler, which reads ``request[BODY]`` / ``request[QUERY]``.
Every declared route appears in ``/api/v1/openapi.json``.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from .. import safejson
from ..errors import (
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    UnsupportedMediaType,
)
from ..models import Role
from ..web.context import SHOAL, USER, client_ip, require_user
from ..web.validation import validation_problem

BODY = web.RequestKey("body", BaseModel)
QUERY = web.RequestKey("query", BaseModel)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_ID = 2**31 - 1
"""The largest id a database row has (a 32-bit signed integer column)."""
_ID_RE = re.compile(r"^[0-9]{1,12}$")

AUTH_LEVELS = ("none", "optional", "user", "moderator", "admin")


async def parse_body(request: web.Request, model: type[BaseModel], *, form: bool) -> BaseModel:
    """Read and validate the request body against ``model``."""
    limit = request.app[SHOAL].settings.max_json_body
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.", code="body_too_large")
    ctype = request.content_type
    if form and ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            posted = await request.post()
        except (ValueError, LookupError) as exc:
            raise BadRequest(f"The form body cannot be read: {exc}.", code="malformed_form") from None
        data: Any = {k: v for k, v in posted.items() if isinstance(v, str)}
    elif ctype == "application/json" or (not request.body_exists and ctype == "application/octet-stream"):
        raw = await request.read() if request.body_exists else b"{}"
        if len(raw) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.", code="body_too_large")
        try:
            data = safejson.loads(raw or b"{}")
        except ValueError as exc:
            raise BadRequest(f"The body is not valid JSON: {exc}.", code="malformed_json") from None
    else:
        accepted = "application/json" + (" or a form" if form else "")
        raise UnsupportedMediaType(
            f"Send the body as {accepted}, not {ctype}.", code="unsupported_content_type"
        )
    if not isinstance(data, dict):
        raise BadRequest("The body must be a JSON object.", code="malformed_json")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc, "body") from None


def parse_query(request: web.Request, model: type[BaseModel]) -> BaseModel:
    """Validate the query string; parameters declared as lists take every repeated value."""
    data: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        keys = [key, key + "[]"]
        values = [v for k in keys for v in request.query.getall(k, [])]
        if not values:
            continue
        if typing.get_origin(info.annotation) is list or _is_optional_list(info.annotation):
            data[key] = [part for v in values for part in v.split(",") if part != ""]
        else:
            data[key] = values[-1]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc, "query") from None


def path_id(request: web.Request, name: str = "id") -> int:
    """A numeric id from the path: 400 naming it when it is not a number, 404 when out of range."""
    raw = request.match_info[name]
    if not _ID_RE.match(raw):
        raise BadRequest(f"'{name}' must be a positive integer.", code="invalid_field", field=name)
    value = int(raw)
    if not 0 < value <= MAX_ID:
        raise NotFound(f"Nothing has the id {value}.", code="not_found")
    return value


def _is_optional_list(annotation: Any) -> bool:
    return any(typing.get_origin(arg) is list for arg in typing.get_args(annotation))


@dataclass
class RouteSpec:
    """One declared route and what the OpenAPI document says of it."""

    method: str
    path: str
    handler: Handler
    summary: str
    auth: str = "optional"
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    form: bool = False
    tags: tuple[str, ...] = ()
    rate: str | None = None
    allow_pending_password: bool = False
    request_content: dict[str, Any] | None = None
    responses: dict[str, Any] = field(default_factory=dict)


class Api:
    """A set of declared routes, registered on an app together."""

    def __init__(self) -> None:
        self.routes: list[RouteSpec] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        auth: str = "optional",
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        form: bool = False,
        tags: tuple[str, ...] = (),
        rate: str | None = None,
        allow_pending_password: bool = False,
        request_content: dict[str, Any] | None = None,
        responses: dict[str, Any] | None = None,
    ) -> Callable[[Handler], Handler]:
        """Declare a route; see the module docstring for what the wrapper checks."""
        if auth not in AUTH_LEVELS:
            raise ValueError(f"unknown auth level {auth}")

        def decorate(fn: Handler) -> Handler:
            spec = RouteSpec(
                method=method,
                path=path,
                handler=fn,
                summary=summary,
                auth=auth,
                body=body,
                query=query,
                form=form,
                tags=tags,
                rate=rate,
                allow_pending_password=allow_pending_password,
                request_content=request_content,
                responses=responses or {},
            )
            spec.handler = _wrap(spec, fn)
            self.routes.append(spec)
            return fn

        return decorate

    def setup(self, app: web.Application) -> None:
        for spec in self.routes:
            if spec.method == "GET":
                # As aiohttp's add_get does: HEAD answers a GET's headers (link checkers, clients
                # probing a file's size before ranged GETs).
                app.router.add_get(spec.path, spec.handler)
            else:
                app.router.add_route(spec.method, spec.path, spec.handler)


def _wrap(spec: RouteSpec, fn: Handler) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        user = request.get(USER)
        if spec.auth in ("user", "moderator", "admin"):
            user = require_user(request)
            if spec.auth == "moderator" and not user.is_at_least(Role.MODERATOR):
                raise Forbidden("Only moderators and admins may do this.", code="insufficient_role")
            if spec.auth == "admin" and not user.is_at_least(Role.ADMIN):
                raise Forbidden("Only admins may do this.", code="insufficient_role")
        if (
            user is not None
            and user.must_change_password
            and spec.auth in ("user", "moderator", "admin")
            and not spec.allow_pending_password
        ):
            raise Forbidden(
                "Change your temporary password first (PUT /api/v1/users/me with currentPassword "
                "and password).",
                code="password_change_required",
            )
        if spec.rate is not None:
            shoal = request.app[SHOAL]
            limit, window = shoal.settings.rate(spec.rate)
            wait = await shoal.limiter.hit(spec.rate, client_ip(request), limit, window)
            if wait:
                raise TooManyRequests(
                    f"Too many {spec.rate} requests from your address; retry in {wait} s.",
                    retry_after=wait,
                )
        if spec.query is not None:
            request[QUERY] = parse_query(request, spec.query)
        if spec.body is not None:
            request[BODY] = await parse_body(request, spec.body, form=spec.form)
        return await fn(request)

    handler.__name__ = fn.__name__
    handler.__doc__ = fn.__doc__
    return handler


_PLACEHOLDER = re.compile(r"\{(\w+)(?::[^}]*)?\}")


def openapi_document(routes: list[RouteSpec], *, server_url: str, version: str) -> dict[str, Any]:
    """An OpenAPI 3.1 document describing ``routes``."""
    paths: dict[str, Any] = {}
    components: dict[str, Any] = {}
    for spec in routes:
        path = _PLACEHOLDER.sub(r"{\1}", spec.path)
        op: dict[str, Any] = {
            "summary": spec.summary,
            "operationId": f"{spec.method.lower()}_{spec.handler.__name__}",
            "tags": list(spec.tags),
            "responses": {"default": {"$ref": "#/components/responses/Problem"}},
        }
        if spec.handler.__doc__:
            op["description"] = " ".join(spec.handler.__doc__.split())
        ok = spec.responses or {"200": {"description": "Success"}}
        op["responses"].update(ok)
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PLACEHOLDER.findall(spec.path)
        ]
        if spec.query is not None:
            schema = spec.query.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
            components.update(schema.pop("$defs", {}))
            required = set(schema.get("required", []))
            for name, prop in schema.get("properties", {}).items():
                params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
        if params:
            op["parameters"] = params
        if spec.auth in ("user", "moderator", "admin"):
            op["security"] = [{"OAuth2": []}]
        if spec.body is not None:
            schema = spec.body.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
            components.update(schema.pop("$defs", {}))
            components[spec.body.__name__] = schema
            ref = {"$ref": f"#/components/schemas/{spec.body.__name__}"}
            content = {"application/json": {"schema": ref}}
            if spec.form:
                content["application/x-www-form-urlencoded"] = {"schema": ref}
            op["requestBody"] = {"required": True, "content": content}
        elif spec.request_content is not None:
            op["requestBody"] = {"required": True, "content": spec.request_content}
        paths.setdefault(path, {})[spec.method.lower()] = op
    components_doc = {
        "schemas": {
            **components,
            "Problem": {
                "type": "object",
                "required": ["type", "status", "code", "detail"],
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "code": {"type": "string"},
                    "detail": {"type": "string"},
                    "field": {"type": "string"},
                },
            },
        },
        "responses": {
            "Problem": {
                "description": "An error (RFC 9457)",
                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
            }
        },
        "securitySchemes": {
            "OAuth2": {
                "type": "oauth2",
                "flows": {"password": {"tokenUrl": "/api/v1/users/token", "scopes": {}}},
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Shoal REST API", "version": version},
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": components_doc,
    }
