"""Request bodies and query strings as pydantic models (PeerTube's camelCase), and the 400 that
names what is wrong."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from ..errors import BadRequest


class Body(BaseModel):
    """Base of request bodies: camelCase names as in PeerTube, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class Query(BaseModel):
    """Base of query strings: camelCase names; unknown parameters are ignored (cache busters)."""

    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)


def validation_problem(exc: ValidationError, where: str) -> BadRequest:
    """A 400 naming the first bad field, with every error listed under ``errors``."""
    errors = []
    for err in exc.errors(include_url=False):
        name = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "missing":
            message = "is required"
        else:
            message = err["msg"].removeprefix("Value error, ")
        errors.append({"field": name, "message": message})
    first = errors[0]
    label = f"{where} field '{first['field']}'" if first["field"] else where
    return BadRequest(
        f"Invalid {label}: {first['message']}.",
        code="invalid_field",
        field=first["field"] or None,
        extra={"errors": errors},
    )
