"""`/v1/workers`: the live workers, their GPUs and their current jobs (the worker registry)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from backend.schemas.workers import WorkerList
from backend.services.queue import QueueUnavailable
from backend.services.workers import list_workers

router = APIRouter(prefix="/v1/workers", tags=["workers"])


@router.get("", response_model=WorkerList)
def list_live_workers(request: Request) -> WorkerList:
    """List the live workers: queues, GPUs, and the job each runs now (503 when Redis is unreachable)."""
    queue = request.app.state.queue
    try:
        workers = list_workers(queue.redis, queue.prefix)
    except Exception as exc:  # noqa: BLE001 — redis-py's connection errors
        raise QueueUnavailable(str(exc)) from exc
    return WorkerList.of(workers, has_more=False)
