"""Celery tasks: thin wrappers that claim a job and hand it to `worker.control` (no training logic here).

The API sends `studio.train` by name with kwargs `job_id, attempt, spec` (the JobSpec dict, files already
local absolute paths), `output_dir, checkpoint_dir, resume_from=None, dispatch=None` (the scheduler's
`"{attempt}:{token}"`, see `worker.events`). The task returns a small dict `{status, error, exit_code}`; the
job's real history is its event stream (see `worker.events`).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from . import events as ev
from . import registry
from .celery_app import app
from .control import Job, supervise  # torch-free; a broken import stops the worker at start, not each task


@app.task(name="studio.train", bind=True)
def train(self, job_id: str, attempt: int, spec: dict, output_dir: str, checkpoint_dir: str,
          resume_from: str | None = None, dispatch: str | None = None) -> dict[str, Any]:
    """Claim the job (its dispatch token + the lease, atomically; or refuse: a job runs at most once at a
    time), then supervise its training."""
    redis_url = self.app.conf.broker_url
    redis = ev.connect(redis_url)
    node = self.request.hostname or socket.gethostname()
    lease = json.dumps({"worker": f"{node}:{os.getpid()}", "attempt": attempt, "task_id": self.request.id,
                        "since": int(time.time())})
    job = Job(job_id=job_id, attempt=attempt, output_dir=Path(output_dir), checkpoint_dir=Path(checkpoint_dir),
              redis=redis, lease=lease, worker=node)
    claim = ev.claim_lease(redis, job_id, lease, dispatch)
    if claim != "claimed":
        try:
            return refuse(job, claim, dispatch)
        finally:
            redis.close()
    registry.job_started(redis, node, job_id, attempt)
    try:
        return supervise(job, spec, redis_url, resume_from)
    finally:
        registry.job_finished(redis, node, job_id)
        ev.release_lease(redis, job_id, lease)
        redis.close()


def refuse(job: Job, claim: str, dispatch: str | None) -> dict[str, Any]:
    """A message that must not run: the job is running elsewhere, or the dispatch was replaced or used."""
    if claim == "stale":  # a redelivered or superseded message: nothing to tell the user
        return {"status": "skipped", "error": {"code": "stale_dispatch", "message": f"dispatch {dispatch} is stale"}}
    holder = job.redis.get(ev.lease_key(job.job_id))
    job.message(f"Attempt {job.attempt} refused: the job is already running ({holder})", level="warn")
    return {"status": "skipped", "error": {"code": "lease_held", "message": f"lease held by {holder}"}}


def reply(redis_url: str, reply_to: str | None, value: dict[str, Any]) -> dict[str, Any]:
    """Push a short task's answer to the list the API waits on (BLPOP); it expires unread after a minute."""
    if reply_to:
        redis = ev.connect(redis_url)
        try:
            redis.pipeline().rpush(reply_to, json.dumps(value)).expire(reply_to, 60).execute()
        finally:
            redis.close()
    return value


@app.task(name="studio.estimate", bind=True)
def estimate(self, spec: dict, reply_to: str | None = None) -> dict[str, Any]:
    """Parameters and memory for a job body, from the model's config on the meta device (no weights)."""
    return reply(self.app.conf.broker_url, reply_to, _estimate(spec))


def _estimate(spec: dict) -> dict[str, Any]:
    from .finetune.estimate import estimate as run_estimate
    from .finetune.methods import MethodError
    from .finetune.models import ModelError
    from .finetune.spec import SpecError, parse_spec

    try:
        return {"estimate": run_estimate(parse_spec(spec)).to_dict()}
    except (SpecError, ModelError, MethodError, ValueError) as exc:
        return {"error": {"code": type(exc).__name__, "message": " ".join(str(exc).split())[:500]}}


MERGE_TTL_SECONDS = 7 * 24 * 3600


def merge_key(version_id: str, prefix: str | None = None) -> str:
    """`{prefix}:merges:{version_id}`: JSON `{status, error, path}` the API folds into the registry row."""
    return f"{ev.key_prefix(prefix)}:merges:{version_id}"


@app.task(name="studio.merge", bind=True)
def merge(self, version_id: str, base: str, adapter_dir: str, output_dir: str) -> dict[str, Any]:
    """Merge a registry version into its base as a full model; progress goes to the version's merge key."""
    from .finetune.merge import merge_adapter

    redis = ev.connect(self.app.conf.broker_url)
    key = merge_key(version_id)

    def report(status: str, error: dict | None = None) -> dict[str, Any]:
        state = {"status": status, "error": error, "path": output_dir}
        redis.set(key, json.dumps(state), ex=MERGE_TTL_SECONDS)
        return state

    try:
        report("running")
        try:
            merge_adapter(base=base, adapter_dir=adapter_dir, output_dir=output_dir)
        except Exception as exc:  # noqa: BLE001 — a failed merge is a status, not a crashed worker
            message = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
            return report("failed", {"code": "merge_failed", "message": message})
        return report("succeeded")
    finally:
        redis.close()
