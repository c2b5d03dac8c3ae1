"""`GET /healthz`: is the service able to work? (database now; Redis and workers join later)."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from backend.api.deps import DatabaseDep

router = APIRouter(tags=["health"])
log = logging.getLogger("studio.api")


class Health(BaseModel):
    status: str  # ok | degraded
    database: str  # ok | unavailable


def check_database(db) -> str:
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return "ok"
    except Exception:  # any driver error means "not usable"; details go to the log, not the caller
        log.exception("health check: database unavailable")
        return "unavailable"


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
def healthz(db: DatabaseDep):
    """Report the health of the service and its database (503 when degraded)."""
    checks = {"database": check_database(db)}
    ok = all(v == "ok" for v in checks.values())
    body = Health(status="ok" if ok else "degraded", **checks)
    return body if ok else JSONResponse(body.model_dump(), status_code=503)
