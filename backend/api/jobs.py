"""`/v1/fine_tuning/jobs`: create, list, get, cancel, pause and resume fine-tuning jobs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Path, Query, Request
from sqlalchemy.orm import Session

from backend.api.deps import CurrentPrincipal, SessionDep, SettingsDep
from backend.api.errors import not_found
from backend.db.models import Job
from backend.schemas.jobs import JOB_STATUSES, JobList, JobObject
from backend.services import audit
from backend.services import jobs as service
from backend.services.auth import Principal
from backend.services.job_checks import job_body_schema
from backend.services.queue import JobQueue
from backend.services.registry import adapter_refs

router = APIRouter(prefix="/v1/fine_tuning/jobs", tags=["fine_tuning"])

JobId = Annotated[str, Path(description="The job's id, e.g. `ftjob-01J…`.", max_length=128)]
JobStatus = Literal[JOB_STATUSES]  # type: ignore[valid-type]
CREATE_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": job_body_schema()}}}}


def get_queue(request: Request) -> JobQueue:
    return request.app.state.queue


def load_job(session: Session, job_id: str, principal: Principal) -> Job:
    """The job, or 404 naming it (also when it belongs to another team)."""
    job = service.get_job(session=session, job_id=job_id, principal=principal)
    if job is None:
        raise not_found("fine-tuning job", job_id, "fine_tuning_job_id")
    return job


def public(session: Session, job: Job) -> JobObject:
    return service.job_public(job, positions=service.queue_positions(session=session, jobs=[job]),
                              adapters=adapter_refs(session=session, job_ids=[job.id]))


@router.post("", response_model=JobObject, openapi_extra=CREATE_BODY)
def create_fine_tuning_job(request: Request, session: SessionDep, settings: SettingsDep,
                           principal: CurrentPrincipal, body: Annotated[Any, Body(include_in_schema=False)] = None,
                           idempotency_key: Annotated[str | None, Header(max_length=255)] = None) -> JobObject:
    """Create a job: validated, stored as `queued`, then sent to a GPU worker."""
    job, created = service.create_job(session=session, settings=settings, queue=get_queue(request), body=body,
                                      idempotency_key=idempotency_key, principal=principal)
    if created:
        audit.record_for(principal, session=session, action="job.create", resource_type="fine_tuning.job",
                         resource_id=job.id, team=job.team, detail={"model": job.model, "suffix": job.suffix})
    return public(session, job)


@router.get("", response_model=JobList)
def list_fine_tuning_jobs(session: SessionDep, principal: CurrentPrincipal,
                          after: Annotated[str | None, Query(max_length=128)] = None,
                          limit: Annotated[int, Query(ge=1, le=100)] = 20,
                          status: Annotated[JobStatus | None, Query()] = None) -> JobList:
    """List jobs, newest first."""
    rows, has_more = service.list_jobs(session=session, after=after, limit=limit, status=status,
                                       principal=principal)
    positions = service.queue_positions(session=session, jobs=rows)
    adapters = adapter_refs(session=session, job_ids=[r.id for r in rows if r.status == "succeeded"])
    return JobList.of([service.job_public(r, positions=positions, adapters=adapters) for r in rows],
                      has_more=has_more)


@router.get("/{fine_tuning_job_id}", response_model=JobObject)
def retrieve_fine_tuning_job(fine_tuning_job_id: JobId, session: SessionDep,
                             principal: CurrentPrincipal) -> JobObject:
    """Get a job."""
    return public(session, load_job(session, fine_tuning_job_id, principal))


def _audited(session: Session, principal: Principal, action: str, job: Job) -> JobObject:
    audit.record_for(principal, session=session, action=action, resource_type="fine_tuning.job", resource_id=job.id,
                     team=job.team, detail={"status": job.status})
    return public(session, job)


@router.post("/{fine_tuning_job_id}/cancel", response_model=JobObject)
def cancel_fine_tuning_job(fine_tuning_job_id: JobId, request: Request, session: SessionDep,
                           principal: CurrentPrincipal) -> JobObject:
    """Cancel a job: at once when queued or paused, at the next training step when running."""
    job = service.cancel_job(session=session, queue=get_queue(request),
                             job=load_job(session, fine_tuning_job_id, principal))
    return _audited(session, principal, "job.cancel", job)


@router.post("/{fine_tuning_job_id}/pause", response_model=JobObject)
def pause_fine_tuning_job(fine_tuning_job_id: JobId, request: Request, session: SessionDep,
                          principal: CurrentPrincipal) -> JobObject:
    """Pause a running job: it saves a checkpoint and becomes `paused`."""
    job = service.pause_job(session=session, queue=get_queue(request),
                            job=load_job(session, fine_tuning_job_id, principal))
    return _audited(session, principal, "job.pause", job)


@router.post("/{fine_tuning_job_id}/resume", response_model=JobObject)
def resume_fine_tuning_job(fine_tuning_job_id: JobId, request: Request, session: SessionDep,
                           settings: SettingsDep, principal: CurrentPrincipal) -> JobObject:
    """Resume a paused job from its latest checkpoint (queued again, attempt + 1)."""
    job = service.resume_job(session=session, settings=settings, queue=get_queue(request),
                             job=load_job(session, fine_tuning_job_id, principal))
    return _audited(session, principal, "job.resume", job)

