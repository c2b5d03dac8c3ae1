"""The relay: worker events in Redis → job_events, checkpoints and the job row; idempotent on re-reads."""

from __future__ import annotations

import json
import time

from sqlalchemy import func, select

from backend.db.models import Checkpoint, Job, JobEvent
from backend.services.relay import Relay, relay_once
from tests.api.jobs_support import *  # noqa: F401,F403 (fixtures)

JOBS = "/v1/fine_tuning/jobs"


def counts(db, job_id: str) -> tuple[int, int]:
    with db.session() as session:
        events = session.scalar(select(func.count()).select_from(JobEvent).where(JobEvent.job_id == job_id))
        ckpts = session.scalar(select(func.count()).select_from(Checkpoint).where(Checkpoint.job_id == job_id))
    return events, ckpts


def run_relay(db, redis, job_id: str, settings, after: str = "0") -> str:
    with db.session() as session:
        return relay_once(session, redis, job_id, after=after, data_dir=settings.data_dir)


def test_relay_persists_events_and_updates_the_job(jobs_client, create, db, redis, worker, job_settings):
    job = create(suffix="mine")
    job_id = job["id"]
    t0 = time.time()
    worker.status(job_id, "running", created_at=t0)
    worker.emit(job_id, "message", {"plan": {"total_steps": 10}}, message="Training plan")
    for step in (1, 2, 3, 4):
        worker.metrics(job_id, step, total=10, created_at=t0 + 2 * step)
    ckpt = str(job_settings.jobs_dir / job_id / "checkpoints" / "checkpoint-4")
    worker.checkpoint(job_id, 4, ckpt)
    last = run_relay(db, redis, job_id, job_settings)
    assert last != "0"
    assert counts(db, job_id) == (7, 1)

    body = jobs_client.get(f"{JOBS}/{job_id}").json()
    assert body["status"] == "running"
    assert body["progress"]["step"] == 4 and body["progress"]["total_steps"] == 10
    assert body["progress"]["eta_seconds"] == 12.0  # 2 s per step (steps 1→4 in 6 s), 6 steps left
    assert abs(body["estimated_finish"] - (time.time() + 12)) < 3
    with db.session() as session:
        row = session.get(Job, job_id)
        assert row.started_at == int(t0) and row.last_event_seq == 7
        [checkpoint] = session.scalars(select(Checkpoint).where(Checkpoint.job_id == job_id)).all()
        assert checkpoint.step_number == 4 and checkpoint.metrics == {"train_loss": 0.5}
        assert checkpoint.path == f"jobs/{job_id}/checkpoints/checkpoint-4"  # relative to the data dir
        events = session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.seq)).all()
        assert [e.type for e in events] == ["status", "message", "metrics", "metrics", "metrics", "metrics", "checkpoint"]
        assert events[2].message.startswith("Step 1/10: training loss=")  # filled in when the worker sent none
        assert events[2].data["train_loss"] == 2.0 and events[0].data["status"] == "running"

    # Idempotent: reading the whole stream again (an API restart) and from the cursor inserts nothing.
    run_relay(db, redis, job_id, job_settings)
    assert run_relay(db, redis, job_id, job_settings, after=last) == last
    assert counts(db, job_id) == (7, 1)

    worker.status(job_id, "succeeded", result=worker.success_result("/out", steps=10))
    run_relay(db, redis, job_id, job_settings)
    run_relay(db, redis, job_id, job_settings)
    assert counts(db, job_id) == (8, 1)
    body = jobs_client.get(f"{JOBS}/{job_id}").json()
    assert body["status"] == "succeeded" and body["finished_at"] is not None
    assert body["trained_tokens"] == 12345 and body["trainable_params"] == 4096
    assert body["hyperparameters"] == {"n_epochs": 1, "batch_size": 4, "learning_rate_multiplier": None,
                                       "learning_rate": 2e-4}
    # The registry took the job as version 1 of the adapter named by its suffix; `/out` has no artifact yet,
    # so the version stays pending until checked.
    assert body["fine_tuned_model"] == "mine:1"
    assert body["adapter"] == {"name": "mine", "version": 1, "status": "pending", "model": "mine:1"}
    assert body["progress"] == {"step": 10, "total_steps": 10, "eta_seconds": None}
    assert body["estimated_finish"] is None


def test_without_a_suffix_the_adapter_is_named_after_model_and_method(jobs_client, create, db, redis, worker,
                                                                      job_settings):
    first, second = (create(tuning={"type": "dora"})["id"] for _ in range(2))
    for job_id in (first, second):
        worker.status(job_id, "succeeded", result=worker.success_result("/out"))
        run_relay(db, redis, job_id, job_settings)
    assert jobs_client.get(f"{JOBS}/{first}").json()["fine_tuned_model"] == "studio-tiny-llama-dora:1"
    assert jobs_client.get(f"{JOBS}/{second}").json()["fine_tuned_model"] == "studio-tiny-llama-dora:2"


def test_failed_status_sets_the_error(jobs_client, create, db, redis, worker, job_settings):
    job_id = create()["id"]
    worker.status(job_id, "running")
    worker.status(job_id, "failed", error={"code": "out_of_memory", "message": "CUDA out of memory"})
    worker.status(job_id, "succeeded", result=worker.success_result("/out"))  # a second terminal status loses
    run_relay(db, redis, job_id, job_settings)
    body = jobs_client.get(f"{JOBS}/{job_id}").json()
    assert body["status"] == "failed" and body["finished_at"] is not None
    assert body["error"] == {"code": "out_of_memory", "message": "CUDA out of memory", "param": None}
    assert body["fine_tuned_model"] is None
    assert counts(db, job_id) == (3, 0)  # every event is kept even when it changes nothing


def test_events_of_an_older_attempt_change_nothing(jobs_client, create, db, redis, worker, job_settings):
    job_id = create()["id"]
    worker.status(job_id, "running")
    worker.status(job_id, "paused", result={"checkpoint": "/elsewhere/ckpt-3", "global_step": 3})
    run_relay(db, redis, job_id, job_settings)
    assert jobs_client.post(f"{JOBS}/{job_id}/resume").json()["attempt"] == 2
    worker.metrics(job_id, 3, attempt=1)  # a straggler from attempt 1
    worker.status(job_id, "cancelled", attempt=1)
    run_relay(db, redis, job_id, job_settings)
    body = jobs_client.get(f"{JOBS}/{job_id}").json()
    assert body["status"] == "queued" and body["attempt"] == 2
    with db.session() as session:
        [ckpt] = session.scalars(select(Checkpoint).where(Checkpoint.job_id == job_id)).all()
    assert ckpt.step_number == 3 and ckpt.path == "/elsewhere/ckpt-3"  # outside the data dir: kept absolute


def test_malformed_entries_are_skipped(jobs_client, create, db, redis, worker, job_settings):
    job_id = create()["id"]
    key = f"studio:jobs:{job_id}:events"
    redis.xadd(key, {"event": "{not json"})
    redis.xadd(key, {"other": "field"})
    redis.xadd(key, {"event": json.dumps({"type": "message", "message": "no seq"})})
    worker.status(job_id, "running")
    run_relay(db, redis, job_id, job_settings)
    assert counts(db, job_id) == (1, 0)
    assert jobs_client.get(f"{JOBS}/{job_id}").json()["status"] == "running"


def test_background_relay_follows_active_jobs_and_restarts_cleanly(jobs_client, create, db, redis, worker, job_settings):
    a, b = create()["id"], create()["id"]
    worker.status(a, "running")
    worker.metrics(a, 1)
    worker.status(b, "running")
    relay = Relay(db=db, redis=redis, prefix="studio", interval=0.05, data_dir=job_settings.data_dir)
    assert relay.tick() == 3
    assert relay.tick() == 0
    worker.status(b, "succeeded", result=worker.success_result("/out"))
    assert relay.tick() == 1
    assert counts(db, a) == (2, 0) and counts(db, b) == (2, 0)
    assert jobs_client.get(f"{JOBS}/{b}").json()["status"] == "succeeded"

    restarted = Relay(db=db, redis=redis, prefix="studio", interval=0.05, data_dir=job_settings.data_dir)
    restarted.tick()  # reads both streams from the start: nothing is stored twice
    assert counts(db, a) == (2, 0) and counts(db, b) == (2, 0)


def test_relay_in_the_app_lifespan(job_settings, redis, worker, chat_file_id, jobs_client):
    from fastapi.testclient import TestClient

    from backend.app import create_app
    from tests.api.jobs_support import job

    settings = job_settings.model_copy(update={"relay_enabled": True})
    with TestClient(create_app(settings, migrate=False)) as client:
        job_id = client.post(JOBS, json=job("studio-tiny-llama", chat_file_id)).json()["id"]
        worker.status(job_id, "running")
        deadline = time.time() + 5
        while client.get(f"{JOBS}/{job_id}").json()["status"] != "running":
            assert time.time() < deadline, "the relay did not pick the event up"
            time.sleep(0.05)


def test_verifying_a_large_artifact_does_not_hold_other_jobs_events(job_settings, redis, worker, chat_file_id,
                                                                     jobs_client):
    """A version's files are hashed off the relay: while a 2 GiB artifact is being checked, another job's
    events still reach the API at once, and the version stays `pending` until its check ends."""
    from fastapi.testclient import TestClient

    from backend.app import create_app
    from tests.api.jobs_support import job

    settings = job_settings.model_copy(update={"relay_enabled": True})
    with TestClient(create_app(settings, migrate=False)) as client:
        big_id = client.post(JOBS, json=job("studio-tiny-llama", chat_file_id, suffix="big")).json()["id"]
        other = client.post(JOBS, json=job("studio-tiny-llama", chat_file_id)).json()["id"]
        output = settings.jobs_dir / big_id / "output"
        output.mkdir(parents=True)
        with open(output / "model.safetensors", "wb") as handle:  # sparse: no disk, still hashed byte by byte
            handle.truncate(2 * 1024**3)
        (output / "studio.json").write_text(json.dumps({"files": {"model.safetensors": "0" * 64},
                                                        "method": {"artifact": "full"}}))
        worker.status(other, "running")
        worker.status(big_id, "succeeded", result=worker.success_result(str(output)))
        deadline = time.time() + 10
        while client.get(f"{JOBS}/{big_id}").json()["status"] != "succeeded":
            assert time.time() < deadline, "the relay did not store the success"
            time.sleep(0.02)

        sent = time.monotonic()
        worker.metrics(other, 1)
        while not [e for e in client.get(f"{JOBS}/{other}/events").json()["data"] if e["type"] == "metrics"]:
            assert time.monotonic() - sent < 60, "the other job's event never arrived"
            time.sleep(0.02)
        latency = time.monotonic() - sent
        still = client.get("/v1/adapters/big/versions/1").json()["status"]
        print(f"other job's event reached the API in {latency * 1000:.0f} ms while the version was {still}")
        assert still == "pending", "the check finished before the other job's event: make the artifact bigger"
        assert latency < 1.0

        deadline = time.time() + 120
        while (version := client.get("/v1/adapters/big/versions/1").json())["status"] == "pending":
            assert time.time() < deadline, "the version was never checked"
            time.sleep(0.2)
        assert version["status"] == "failed" and version["error"]["code"] == "artifact_corrupt"
