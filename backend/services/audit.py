"""The audit log: who created, cancelled, aliased or deleted what (append-only `audit_events`).

A row is written after the action succeeded, in its own commit: a failed action leaves no row. `team` is
the team of the object acted on (so a team's members can read what happened to their objects, whoever
did it); `actor` is the principal's user (`local` with auth off, `cli:<login>` for the `studio` command).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.db.models import AuditEvent, now
from backend.services.auth import Principal, visible

ACTIONS = ("file.create", "file.delete", "job.create", "job.cancel", "job.pause", "job.resume",
           "adapter.delete", "adapter.version.delete", "adapter.version.merge", "adapter.alias.set",
           "adapter.alias.remove", "key.create", "key.revoke")


def record(*, session: Session, actor: str, action: str, resource_type: str, resource_id: str,
           team: str | None, detail: dict[str, Any] | None = None) -> AuditEvent:
    """Append one row and commit."""
    assert action in ACTIONS, action
    row = AuditEvent(actor=actor, team=team, action=action, resource_type=resource_type,
                     resource_id=resource_id, detail=detail, created_at=now())
    session.add(row)
    session.commit()
    return row


def record_for(principal: Principal, *, session: Session, action: str, resource_type: str, resource_id: str,
               team: str | None, detail: dict[str, Any] | None = None) -> AuditEvent:
    """`record` with the principal as the actor."""
    return record(session=session, actor=principal.user, action=action, resource_type=resource_type,
                  resource_id=resource_id, team=team, detail=detail)


def list_events(*, session: Session, principal: Principal, after: int | None = None, limit: int = 20,
                resource_id: str | None = None) -> tuple[list[AuditEvent], bool]:
    """Newest first; a member reads the rows of their team's objects, an admin every row."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit + 1)
    if (clause := visible(principal, AuditEvent.team)) is not None:
        query = query.where(clause)
    if after is not None:
        query = query.where(AuditEvent.id < after)
    if resource_id:
        query = query.where(AuditEvent.resource_id == resource_id)
    rows = list(session.scalars(query))
    return rows[:limit], len(rows) > limit
