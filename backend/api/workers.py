"""`/v1/workers`: the live workers, their GPUs and their current jobs (the worker registry)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import select

from backend.api.deps import CurrentPrincipal, SessionDep
from backend.db.models import Job
from backend.schemas.workers import WorkerList, WorkerObject
from backend.services.queue import QueueUnavailable
from backend.services.workers import list_workers

router = APIRouter(prefix="/v1/workers", tags=["workers"])


@router.get("", response_model=WorkerList)
def list_live_workers(request: Request, session: SessionDep, principal: CurrentPrincipal) -> WorkerList:
    """List the live workers: queues, GPUs, and the job each runs now (503 when Redis is unreachable)."""
    queue = request.app.state.queue
    try:
        workers = list_workers(queue.redis, queue.prefix)
    except Exception as exc:  # noqa: BLE001 — redis-py's connection errors
        raise QueueUnavailable(str(exc)) from exc
    return WorkerList.of(hide_other_teams(session, principal, workers), has_more=False)


def hide_other_teams(session, principal, workers: list[WorkerObject]) -> list[WorkerObject]:
    """A member sees every worker and whether it is busy, but only their own team's job ids."""
    if principal.is_admin:
        return workers
    ids = {job.id for worker in workers for job in worker.jobs}
    rows = session.execute(select(Job.id, Job.team).where(Job.id.in_(ids))).all() if ids else []
    teams = {job_id: team for job_id, team in rows}
    for worker in workers:
        worker.jobs = [job for job in worker.jobs if principal.sees(teams.get(job.id))]
        worker.current_job = worker.jobs[0].id if worker.jobs else None
    return workers
