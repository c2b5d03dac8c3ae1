"""Audit log rows on the wire."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from backend.schemas.common import ListPage


class AuditEventObject(BaseModel):
    """Who did what to which object, and when (append-only)."""

    model_config = ConfigDict(from_attributes=True)

    object: Literal["audit.event"] = "audit.event"
    id: int
    actor: str  # the key's user; `local` with auth off; `cli:<login>` for `studio keys`
    team: str | None = None  # the team of the object acted on
    action: str  # file.create, job.cancel, adapter.alias.set, key.revoke, …
    resource_type: str
    resource_id: str
    detail: dict[str, Any] | None = None
    created_at: int


class AuditEventList(ListPage[AuditEventObject]):
    """A page of audit events, newest first; pass `last_id` as `after` for the next page."""
