"""`GET /v1/audit_events`: who created, cancelled, aliased or deleted what."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.api.deps import CurrentPrincipal, SessionDep
from backend.schemas.audit import AuditEventList, AuditEventObject
from backend.services import audit as service

router = APIRouter(prefix="/v1/audit_events", tags=["audit"])


@router.get("", response_model=AuditEventList)
def list_audit_events(session: SessionDep, principal: CurrentPrincipal,
                      after: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
                      limit: Annotated[int, Query(ge=1, le=100)] = 20,
                      resource_id: Annotated[str | None, Query(max_length=256)] = None) -> AuditEventList:
    """Audit events, newest first: an admin reads all of them, a member those of their team's objects."""
    rows, has_more = service.list_events(session=session, principal=principal, after=after, limit=limit,
                                         resource_id=resource_id)
    return AuditEventList.of([AuditEventObject.model_validate(r) for r in rows], has_more=has_more,
                             id_of=lambda e: str(e.id))
