"""Cancelling while Redis is down: a job that never reached a worker (queued, not yet dispatched) or whose
worker has stopped (paused) is cancelled at once, Redis or not; a dispatched job, whose task may be on its
way to a worker, answers 503 and stays as it was (no half-committed cancel)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from backend.app import create_app
from backend.services.relay import relay_once
from tests.api.jobs_support import *
from tests.api.jobs_support import dispatch, error_of
from tests.helpers import free_port

JOBS = "/v1/fine_tuning/jobs"


def test_cancel_with_redis_down(job_settings, job_app, jobs_client, create, worker, redis, db):
    sent = create()["id"]
    assert dispatch(job_app, capacity=1) == [sent]  # a task for it is in the queue
    waiting = create()["id"]
    paused = create()["id"]
    worker.status(paused, "running")
    worker.status(paused, "paused", result={"checkpoint": "/tmp/ckpt", "global_step": 1})
    with db.session() as session:
        relay_once(session, redis, paused, data_dir=job_settings.data_dir)
    assert jobs_client.get(f"{JOBS}/{paused}").json()["status"] == "paused"

    down = job_settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    with TestClient(create_app(down, migrate=False)) as client:
        for job_id in (waiting, paused):
            response = client.post(f"{JOBS}/{job_id}/cancel")
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "cancelled"
            assert client.get(f"{JOBS}/{job_id}").json()["status"] == "cancelled"

        error = error_of(client.post(f"{JOBS}/{sent}/cancel"), 503)
        assert error["code"] == "queue_unavailable" and "retry" in error["message"]
        assert client.get(f"{JOBS}/{sent}").json()["status"] == "queued"  # nothing changed

    # Redis is back: the same cancel goes through and flags the task, which stops at its first step.
    body = jobs_client.post(f"{JOBS}/{sent}/cancel").json()
    assert body["status"] == "cancelled" and redis.get(f"studio:jobs:{sent}:control") == "cancel"
