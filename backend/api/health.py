"""`GET /healthz`: is the service able to work? Database, Redis, and how many workers answer."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from backend.api.deps import DatabaseDep
from backend.services.workers import live_workers

router = APIRouter(tags=["health"])
log = logging.getLogger("studio.api")


class Health(BaseModel):
    status: str  # ok | degraded
    database: str  # ok | unavailable
    redis: str = "unknown"  # ok | unavailable
    workers: int = 0  # live workers in the registry (a heartbeat within the last three)


def check_redis(queue) -> str:
    try:
        queue.redis.ping()
        return "ok"
    except Exception:  # a dead or unreachable Redis; the log has the details
        log.warning("health check: redis unavailable")
        return "unavailable"


def count_workers(queue) -> int:
    """Workers alive right now (the registry's heartbeats; a solo worker busy training answers no Celery
    ping); training jobs stay queued while none serves the `gpu` queue."""
    try:
        return len(live_workers(queue.redis, queue.prefix))
    except Exception:
        return 0


def check_database(db) -> str:
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return "ok"
    except Exception:  # any driver error means "not usable"; details go to the log, not the caller
        log.exception("health check: database unavailable")
        return "unavailable"


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
def healthz(db: DatabaseDep, request: Request):
    """Report the health of the service: database, Redis and live workers (503 when degraded)."""
    checks = {"database": check_database(db)}
    queue = getattr(request.app.state, "queue", None)
    workers = 0
    if queue is not None:
        checks["redis"] = check_redis(queue)
        workers = count_workers(queue) if checks["redis"] == "ok" else 0
    ok = all(v == "ok" for v in checks.values())
    body = Health(status="ok" if ok else "degraded", workers=workers, **checks)
    return body if ok else JSONResponse(body.model_dump(), status_code=503)
