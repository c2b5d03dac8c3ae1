"""`create_app()`: the FastAPI application (routes, error envelope, database lifecycle)."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute
from starlette.middleware.cors import CORSMiddleware

from backend.api import (
    adapters,
    audit,
    docs,
    estimate,
    events,
    files,
    health,
    home,
    inference,
    jobs,
    models,
    workers,
)
from backend.api.deps import get_principal
from backend.api.errors import install_error_handlers
from backend.api.guards import BodyLimit, QueryKey, SameOriginWrites
from backend.api.headers import SecurityHeaders
from backend.api.hosts import AllowedHosts
from backend.api.keyfirst import KeyFirst
from backend.api.proxies import TrustedProxies
from backend.api.ratelimit import RateLimit
from backend.db.migrate import upgrade_database
from backend.db.session import Database
from backend.schemas.common import ErrorResponse
from backend.services.queue import JobQueue
from backend.services.relay import Relay
from backend.services.scheduler import Scheduler
from backend.services.verifier import VersionVerifier
from backend.settings import Settings, get_settings

ERROR_RESPONSES = {"4XX": {"model": ErrorResponse, "description": "The caller's mistake (OpenAI error envelope)."},
                   "5XX": {"model": ErrorResponse, "description": "Server error (OpenAI error envelope)."}}


def operation_id(route: APIRoute) -> str:
    """Stable operation ids for the generated client: `files-create_file`, `health-healthz`."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> FastAPI:
    """Build the app; the database is migrated to head at startup unless `migrate=False`."""
    settings = settings or get_settings()
    settings.ensure_dirs()
    db = Database(settings.database_url)
    queue = JobQueue(settings)  # connects lazily: an app without Redis still starts (jobs wait queued)
    scheduler = Scheduler(db=db, queue=queue, settings=settings)  # tests tick it by hand when disabled

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        if migrate:
            upgrade_database(settings.database_url)
        relay = verifier = None
        if settings.relay_enabled:
            verifier = VersionVerifier(db=db, settings=settings)  # hashes artifacts off the relay's thread
            verifier.start()
            relay = Relay(db=db, redis=queue.redis, prefix=settings.redis_prefix,
                          interval=settings.relay_interval_seconds, data_dir=settings.data_dir,
                          after_apply=verifier.poke,
                          max_attempts=settings.max_job_attempts)
            relay.start()
        _app.state.relay = relay  # SSE followers wait on it instead of polling the database
        if settings.scheduler_enabled:
            scheduler.on_dispatch = relay.watch_now if relay is not None else None
            scheduler.start()
        try:
            yield
        finally:
            if settings.scheduler_enabled:
                await scheduler.stop()
            if relay is not None:
                await relay.stop()
            if verifier is not None:
                verifier.stop()
            queue.close()
            db.dispose()

    app = FastAPI(title="Fine-tuning Studio", version="0.1.0", lifespan=lifespan,
                  generate_unique_id_function=operation_id, responses=ERROR_RESPONSES,
                  docs_url=None, redoc_url=None)  # served offline by api/docs.py
    app.state.settings = settings
    app.state.db = db
    app.state.queue = queue
    app.state.scheduler = scheduler
    install_error_handlers(app)
    app.include_router(home.router)
    app.include_router(docs.router)
    app.include_router(health.router)
    for router in V1_ROUTERS:  # every /v1 route needs a key when auth is on (401 before anything else)
        app.include_router(router, dependencies=[Depends(get_principal)])
    # Added innermost first; a request meets them bottom-up: proxy headers (trusted proxies only), the query
    # key scrubbed from the URL, security headers on every answer, the Host check, CORS, cross-site writes,
    # the API key (before any body is read), the rate limit, the body size cap.
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(RateLimit, limits=settings.rate_limits)
    app.add_middleware(KeyFirst, db=db, enabled=settings.auth_enabled)
    app.add_middleware(SameOriginWrites, allowed_origins=settings.cors_origin_list)
    if settings.cors_origin_list:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origin_list,
                           allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"])
    app.add_middleware(AllowedHosts, settings=settings)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(QueryKey)
    app.add_middleware(TrustedProxies, trusted=settings.trusted_proxy_list)
    return app


V1_ROUTERS = (files.router, jobs.router, events.router, models.router, adapters.router, estimate.router,
              inference.router, audit.router, workers.router)
