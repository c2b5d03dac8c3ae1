"""The worker registry as the API reads it (the workers write it: `worker/registry.py`).

Keys (prefix `STUDIO_REDIS_PREFIX`): `{prefix}:workers` — a sorted set of worker names scored with their
last heartbeat; `{prefix}:workers:{name}` — the worker's JSON (expires three heartbeats after the last);
`{prefix}:workers:{name}:jobs` — hash `job id -> attempt` of the training jobs it runs now. A worker is
live while its JSON key exists.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis as redis_lib

from backend.schemas.workers import GPU, WorkerJob, WorkerObject

log = logging.getLogger("studio.workers")
TRAIN_QUEUE = "gpu"


def workers_key(prefix: str) -> str:
    return f"{prefix}:workers"


def info_key(prefix: str, name: str) -> str:
    return f"{prefix}:workers:{name}"


def live_workers(redis: redis_lib.Redis, prefix: str) -> list[dict[str, Any]]:
    """Every live worker: its JSON plus `jobs` ({job id: attempt}), sorted by name."""
    names = sorted(redis.zrange(workers_key(prefix), 0, -1))
    if not names:
        return []
    pipe = redis.pipeline(transaction=False)
    for name in names:
        pipe.get(info_key(prefix, name))
        pipe.hgetall(f"{info_key(prefix, name)}:jobs")
    replies = pipe.execute()
    workers = []
    for name, raw, jobs in zip(names, replies[::2], replies[1::2], strict=True):
        if raw is None:
            continue  # its entry expired: the worker stopped beating
        try:
            info = json.loads(raw)
        except ValueError:
            log.warning("worker %s: unreadable registry entry %.200r", name, raw)
            continue
        info["jobs"] = {job_id: int(attempt) for job_id, attempt in (jobs or {}).items() if str(attempt).isdigit()}
        workers.append(info)
    return workers


def training_slots(workers: list[dict[str, Any]]) -> int:
    """How many training jobs the live workers can run at once (their slots, on the `gpu` queue)."""
    return sum(int(w.get("slots") or 1) for w in workers if TRAIN_QUEUE in (w.get("queues") or []))


def busy_jobs(workers: list[dict[str, Any]]) -> set[str]:
    """Jobs some live worker says it is running."""
    return {job_id for w in workers for job_id in w["jobs"]}


def list_workers(redis: redis_lib.Redis, prefix: str) -> list[WorkerObject]:
    """`GET /v1/workers`: every live worker, by name."""
    out = []
    for w in live_workers(redis, prefix):
        jobs = [WorkerJob(id=job_id, attempt=attempt) for job_id, attempt in sorted(w["jobs"].items())]
        gpus = w.get("gpus")
        out.append(WorkerObject(id=w["name"], hostname=w.get("hostname") or "", pid=int(w.get("pid") or 0),
                                queues=list(w.get("queues") or []), slots=int(w.get("slots") or 1),
                                gpus=[GPU(**g) for g in gpus] if isinstance(gpus, list) else None,
                                status="busy" if jobs else "idle", current_job=jobs[0].id if jobs else None,
                                jobs=jobs, started_at=int(w.get("started_at") or 0),
                                last_heartbeat_at=int(w.get("heartbeat_at") or 0)))
    return out
