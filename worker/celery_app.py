"""The Celery app for workers, configured for long GPU jobs (STYLE: "The queue").

`STUDIO_REDIS_URL` (default `redis://127.0.0.1:6379/0`) is broker and result backend. Optional
`STUDIO_BROKER_PREFIX` prefixes every broker key, so several studios (or test runs) can share one Redis;
the API's Celery client must use the same value. Importing this module stays light (no torch).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence

from celery import Celery
from kombu import Queue

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
WEEK = 7 * 24 * 3600


def redis_url_from_env() -> str:
    return os.environ.get("STUDIO_REDIS_URL") or DEFAULT_REDIS_URL


def configure(app: Celery, redis_url: str, broker_prefix: str | None = None) -> Celery:
    """Settings for jobs that run for hours on one GPU each and must not run twice."""
    transport = {"visibility_timeout": WEEK}  # longer than the longest job, or Redis redelivers it
    prefix = broker_prefix or os.environ.get("STUDIO_BROKER_PREFIX")
    if prefix:
        transport["global_keyprefix"] = prefix
    app.conf.update(
        broker_url=redis_url,
        result_backend=redis_url,
        result_expires=WEEK,
        broker_transport_options=transport,
        result_backend_transport_options={"global_keyprefix": prefix} if prefix else {},
        broker_connection_retry_on_startup=True,
        task_serializer="json", result_serializer="json", accept_content=["json"],
        task_acks_late=True,  # a message is acked when the job ends, so a lost worker's job is redelivered
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # never hold a second job while one trains
        worker_cancel_long_running_tasks_on_connection_loss=True,  # it will be redelivered anyway
        worker_soft_shutdown_timeout=float(os.environ.get("STUDIO_SOFT_SHUTDOWN_SECONDS", "60")),
        worker_enable_remote_control=True,  # ping/inspect for health checks and tests
        task_queues=(Queue("gpu"), Queue("inference")),
        task_default_queue="gpu",
        task_routes={"studio.train": {"queue": "gpu"}, "studio.generate": {"queue": "inference"}},
        worker_hijack_root_logger=False,
    )
    return app


def make_celery(redis_url: str | None = None, broker_prefix: str | None = None) -> Celery:
    """A configured app; the API can build its client with this too (it imports no torch)."""
    app = Celery("studio", include=["worker.tasks", "worker.inference"])
    return configure(app, redis_url or redis_url_from_env(), broker_prefix)


app = make_celery()


def run_worker(queues: Sequence[str] = ("gpu",), concurrency: int = 1, redis_url: str | None = None,
               hostname: str | None = None, loglevel: str = "INFO") -> None:
    """Start a worker in this process (blocks). One process per GPU: `solo` for concurrency 1."""
    if redis_url:
        os.environ["STUDIO_REDIS_URL"] = redis_url  # the training subprocesses read it too
        configure(app, redis_url)
    pool = "solo" if concurrency == 1 else "prefork"
    name = hostname or f"studio-{'-'.join(queues)}-{os.getpid()}@{socket.gethostname()}"
    app.worker_main(["worker", "-Q", ",".join(queues), "-c", str(concurrency), "-P", pool,
                     "-n", name, "--loglevel", loglevel, "--without-gossip", "--without-mingle"])
