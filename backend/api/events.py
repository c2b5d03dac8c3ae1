"""A job's events (list and Server-Sent Events stream) and checkpoints."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from backend.api.deps import CurrentPrincipal, SessionDep
from backend.api.errors import APIError, error_type
from backend.api.guards import QUERY_KEY_DOC
from backend.api.jobs import JobId, load_job
from backend.db.ids import event_id, event_seq
from backend.db.models import Job
from backend.db.session import Database
from backend.schemas.jobs import TERMINAL_STATUSES, CheckpointList, JobEventList
from backend.services import events as service
from backend.services.auth import Principal, key_revoked

router = APIRouter(prefix="/v1/fine_tuning/jobs", tags=["fine_tuning"])
REVOKED = "key_revoked"  # what `_read` answers for a revoked key, in place of the job's status

SSE_RESPONSE = {200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                      "description": "`id: <event id>`, `event: <type>`, `data: <event JSON>` per event; "
                                     "`: keep-alive` comments; a final `event: status` when the job has ended, or a "
                                     "final `event: error` (OpenAI's error envelope) when the key was revoked."}}


MAX_SEQ = 2**31 - 1  # `job_events.seq` is an INTEGER column (32 bits on PostgreSQL): no event has a larger seq


def seq_after(job_id: str, after: str | None, param: str) -> int:
    """The seq an `after` / `Last-Event-ID` cursor names (0 for none); 400 for another job's or a foreign id,
    and for a seq beyond any stored one (the database would overflow: a 500)."""
    if not after:
        return 0
    seq = event_seq(after)
    if seq is None or seq > MAX_SEQ or event_id(job_id, seq) != after:
        raise APIError(400, f"'{after}' is not an event id of job '{job_id}'.", param=param, code="invalid_value")
    return seq


@router.get("/{fine_tuning_job_id}/events", response_model=JobEventList)
def list_fine_tuning_events(fine_tuning_job_id: JobId, session: SessionDep, principal: CurrentPrincipal,
                            after: Annotated[str | None, Query(max_length=128)] = None,
                            limit: Annotated[int, Query(ge=1, le=100)] = 20) -> JobEventList:
    """List a job's events, oldest first; `after` is the last event id seen."""
    job = load_job(session, fine_tuning_job_id, principal)
    rows, has_more = service.list_events(session=session, job_id=job.id,
                                         after_seq=seq_after(job.id, after, "after"), limit=limit)
    return JobEventList.of([service.event_public(r) for r in rows], has_more=has_more)


@router.get("/{fine_tuning_job_id}/checkpoints", response_model=CheckpointList)
def list_fine_tuning_job_checkpoints(fine_tuning_job_id: JobId, session: SessionDep,
                                     principal: CurrentPrincipal,
                                     after: Annotated[str | None, Query(max_length=128)] = None,
                                     limit: Annotated[int, Query(ge=1, le=100)] = 10) -> CheckpointList:
    """List a job's checkpoints, latest step first."""
    job = load_job(session, fine_tuning_job_id, principal)
    rows, has_more = service.list_checkpoints(session=session, job_id=job.id, after=after, limit=limit)
    return CheckpointList.of([service.checkpoint_public(r, job) for r in rows], has_more=has_more)


@router.get("/{fine_tuning_job_id}/events/stream", response_class=StreamingResponse, responses=SSE_RESPONSE,
            openapi_extra=QUERY_KEY_DOC)
def stream_fine_tuning_events(fine_tuning_job_id: JobId, request: Request, session: SessionDep,
                              principal: CurrentPrincipal,
                              after: Annotated[str | None, Query(max_length=128)] = None,
                              last_event_id: Annotated[str | None, Header(max_length=128)] = None) -> StreamingResponse:
    """Follow a job's events live (Server-Sent Events), from the first one or after `Last-Event-ID`."""
    job = load_job(session, fine_tuning_job_id, principal)
    cursor = last_event_id or after
    start = seq_after(job.id, cursor, "Last-Event-ID" if last_event_id else "after")
    settings = request.app.state.settings
    body = follow(request, request.app.state.db, job.id, start, poll=settings.sse_poll_seconds,
                  keepalive=settings.sse_keepalive_seconds, principal=principal)
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _read(db: Database, job_id: str, after_seq: int, principal: Principal) -> tuple[str | None, list]:
    """The job's status, then its events after `after_seq` (in that order: a terminal status read first
    means every event up to it is already persisted, since the relay commits both together). The status is
    `REVOKED` once the caller's key has been revoked. One short session per poll: a follower waiting for
    events holds no pool connection."""
    with db.session() as session:
        if key_revoked(session=session, principal=principal):
            return REVOKED, []
        job = session.get(Job, job_id)
        if job is None:
            return None, []
        status = job.status
        rows, _ = service.list_events(session=session, job_id=job_id, after_seq=after_seq, limit=200)
        return status, [service.event_public(r) for r in rows]


def sse(event_type: str, data: str, event_id_: str | None = None) -> str:
    head = f"id: {event_id_}\n" if event_id_ else ""
    return f"{head}event: {event_type}\ndata: {data}\n\n"


async def follow(request: Request, db: Database, job_id: str, after_seq: int, *, poll: float,
                 keepalive: float, principal: Principal) -> AsyncIterator[str]:
    """Replay persisted events after `after_seq`, then poll for new ones until the job has ended, or until
    the caller's key is revoked (an `error` frame in OpenAI's envelope, then the end)."""
    loop = asyncio.get_running_loop()
    last_write = loop.time()
    while True:
        status, events = await run_in_threadpool(_read, db, job_id, after_seq, principal)
        if status == REVOKED:
            yield sse("error", json.dumps({"error": {
                "message": "Invalid API key: it was revoked while this stream was open.",
                "type": error_type(401), "param": None, "code": "invalid_api_key"}}))
            return
        for event in events:
            # The worker's own status changes are stored events like any other; on the wire they go out as
            # `message` frames so that the only `event: status` a client sees is the final one (no id).
            frame = "message" if event.type == "status" else event.type
            yield sse(frame, event.model_dump_json(), event.id)
            after_seq = event_seq(event.id) or after_seq
        if events:
            last_write = loop.time()
            continue  # there may be more than one page
        if status is None or status in TERMINAL_STATUSES:
            yield sse("status", json.dumps({"status": status or "deleted"}))
            return
        if loop.time() - last_write >= keepalive:
            yield ": keep-alive\n\n"
            last_write = loop.time()
        if await request.is_disconnected():
            return
        relay = getattr(request.app.state, "relay", None)
        if relay is not None:
            await relay.wait_for_change(poll)  # woken as soon as the relay stores new events
        else:
            await asyncio.sleep(poll)
