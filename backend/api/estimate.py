"""`POST /v1/estimate`: parameters and memory of a job before it runs (config only, no weights)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from backend.api.deps import CurrentPrincipal, SessionDep, SettingsDep
from backend.schemas.registry import EstimateObject
from backend.services.estimates import estimate_job
from backend.services.job_checks import job_body_schema

router = APIRouter(prefix="/v1/estimate", tags=["estimate"])
BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": job_body_schema()}}}}


@router.post("", response_model=EstimateObject, openapi_extra=BODY)
def estimate(request: Request, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal,
             body: Annotated[Any, Body(include_in_schema=False)] = None) -> EstimateObject:
    """Total and trainable parameters and memory by part, for a job body (`training_file` optional)."""
    return estimate_job(session=session, settings=settings, queue=request.app.state.queue, body=body,
                        principal=principal)
