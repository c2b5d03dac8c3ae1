"""Celery tasks: thin wrappers that claim a job and hand it to `worker.control` (no training logic here).

The API sends `studio.train` by name with kwargs `job_id, attempt, spec` (the JobSpec dict, files already
local absolute paths), `output_dir, checkpoint_dir, resume_from=None`. The task returns a small dict
`{status, error, exit_code}`; the job's real history is its event stream (see `worker.events`).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from . import events as ev
from .celery_app import app


@app.task(name="studio.train", bind=True)
def train(self, job_id: str, attempt: int, spec: dict, output_dir: str, checkpoint_dir: str,
          resume_from: str | None = None) -> dict[str, Any]:
    """Take the job's lease (or refuse: a job runs at most once at a time), then supervise its training."""
    from .control import Job, supervise

    redis_url = self.app.conf.broker_url
    redis = ev.connect(redis_url)
    worker = f"{self.request.hostname or socket.gethostname()}:{os.getpid()}"
    lease = json.dumps({"worker": worker, "attempt": attempt, "task_id": self.request.id, "since": int(time.time())})
    job = Job(job_id=job_id, attempt=attempt, output_dir=Path(output_dir), checkpoint_dir=Path(checkpoint_dir),
              redis=redis, lease=lease)
    if not ev.acquire_lease(redis, job_id, lease):
        holder = redis.get(ev.lease_key(job_id))
        job.message(f"Attempt {attempt} refused: the job is already running ({holder})", level="warn")
        return {"status": "skipped", "error": {"code": "lease_held", "message": f"lease held by {holder}"}}
    try:
        return supervise(job, spec, redis_url, resume_from)
    finally:
        ev.release_lease(redis, job_id, lease)
        redis.close()
