"""Admin-editable options: a database value overrides the setting it shadows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..core import Shoal
from ..errors import BadRequest
from ..models import InstanceOption

EDITABLE = {
    "registration": ("open", "approval", "closed"),
    "instance_name": None,
    "instance_description": None,
}


async def get_options(shoal: Shoal) -> dict[str, Any]:
    """The effective editable options (database over settings)."""
    values = {key: getattr(shoal.settings, key) for key in EDITABLE}
    async with shoal.db.read() as session:
        for row in await session.scalars(select(InstanceOption)):
            if row.key in EDITABLE:
                values[row.key] = row.value
    return values


async def set_options(shoal: Shoal, changes: dict[str, Any]) -> dict[str, Any]:
    """Store new values for editable options; refuses unknown keys and bad values."""
    for key, value in changes.items():
        allowed = EDITABLE.get(key, ())
        if key not in EDITABLE:
            raise BadRequest(f"'{key}' is not an editable option.", code="invalid_field", field=key)
        if allowed and value not in allowed:
            raise BadRequest(f"'{key}' must be one of {', '.join(allowed)}.", code="invalid_field", field=key)
        if not allowed and (not isinstance(value, str) or not 1 <= len(value) <= 1000):
            raise BadRequest(
                f"'{key}' must be a text of 1 to 1000 characters.", code="invalid_field", field=key
            )
    async with shoal.db.write() as session:
        for key, value in changes.items():
            row = await session.get(InstanceOption, key)
            if row is None:
                session.add(InstanceOption(key=key, value=value))
            else:
                row.value = value
    return await get_options(shoal)
