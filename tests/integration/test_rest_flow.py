"""The whole service over REST with real parts: Redis (embedded), a Celery worker subprocess and the API
as its own process. Upload, create, follow the SSE stream to the end; cancel; pause and resume; restart
the API in the middle of a job and resume the stream with Last-Event-ID — no event lost, none twice."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.integration.stack import Stack, wait_for
from tests.integration.stack import create_job as stack_create_job

TERMINAL = {"succeeded", "failed", "cancelled"}


@pytest.fixture(scope="module")
def stack(studio_data_dir, tiny_model, tmp_path_factory):
    with Stack(studio_data_dir, tmp_path_factory.mktemp("stack-logs")) as stack:
        yield stack


def create_job(client, training_file: str, steps: int, save_steps: int = 5) -> dict:
    return stack_create_job(client, training_file, steps, save_steps=save_steps, suffix="rest")


def sse(client, job_id: str, last_event_id: str | None = None, stop_after: int | None = None):
    """(events, final status) from the job's event stream; stops early after `stop_after` events."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    events, status, current = [], None, {}
    with client.stream("GET", f"/v1/fine_tuning/jobs/{job_id}/events/stream", headers=headers,
                       timeout=httpx.Timeout(120, read=120)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith(":"):
                continue
            if line == "":
                if current.get("event") == "status":
                    status = json.loads(current["data"])["status"]
                    break
                if "data" in current:
                    events.append({"id": current.get("id"), **json.loads(current["data"])})
                    if stop_after and len(events) >= stop_after:
                        break
                current = {}
                continue
            key, _, value = line.partition(":")
            current[key] = value.lstrip()
    return events, status


def metric_steps(events) -> list[int]:
    return [e["data"]["step"] for e in events if e["type"] == "metrics" and "train_loss" in e["data"]]


def test_lora_job_from_upload_to_succeeded_following_the_stream(client, training_file):
    job = create_job(client, training_file, steps=8)
    assert job["status"] == "queued" and job["object"] == "fine_tuning.job"
    events, status = sse(client, job["id"])
    assert status == "succeeded"
    assert metric_steps(events) == list(range(1, 9))
    listed = client.get(f"/v1/fine_tuning/jobs/{job['id']}/events", params={"limit": 100}).json()["data"]
    assert [e["id"] for e in listed] == [e["id"] for e in events]
    done = client.get(f"/v1/fine_tuning/jobs/{job['id']}").json()
    assert done["status"] == "succeeded" and done["fine_tuned_model"] and done["trained_tokens"] > 0
    assert done["progress"]["step"] == 8
    checkpoints = client.get(f"/v1/fine_tuning/jobs/{job['id']}/checkpoints").json()["data"]
    assert sorted(c["step_number"] for c in checkpoints)[-1] == 8


def test_cancel_a_running_job(client, training_file):
    job = create_job(client, training_file, steps=400)
    sse(client, job["id"], stop_after=3)  # it is running
    assert client.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel").status_code == 200
    final = wait_for(client, job["id"], lambda j: j["status"] in TERMINAL)
    assert final["status"] == "cancelled" and final["progress"]["step"] < 400


def test_pause_then_resume_continues_from_the_checkpoint(client, training_file):
    steps_total = 150  # long enough that the pause always lands before the end, even on a fast machine
    job = create_job(client, training_file, steps=steps_total, save_steps=25)
    wait_for(client, job["id"], lambda j: j["progress"]["step"] >= 6)
    assert client.post(f"/v1/fine_tuning/jobs/{job['id']}/pause").status_code == 200
    paused = wait_for(client, job["id"], lambda j: j["status"] == "paused")
    paused_at = paused["progress"]["step"]
    resumed = client.post(f"/v1/fine_tuning/jobs/{job['id']}/resume")
    assert resumed.status_code == 200 and resumed.json()["attempt"] == 2
    events, status = sse(client, job["id"])
    assert status == "succeeded"
    steps = metric_steps(events)
    assert steps == sorted(steps) and steps[-1] == steps_total and len(steps) == len(set(steps)) == steps_total
    assert 0 < paused_at < steps_total


def test_api_restart_mid_job_loses_and_repeats_no_event(stack, client, training_file):
    job = create_job(client, training_file, steps=60)
    first, _ = sse(client, job["id"], stop_after=5)
    stack.stop_api()
    time.sleep(1.5)  # the worker keeps training and writing to Redis while the API is down
    stack.start_api()
    rest, status = sse(client, job["id"], last_event_id=first[-1]["id"])
    assert status == "succeeded"
    ids = [e["id"] for e in first + rest]
    assert len(ids) == len(set(ids))
    every = client.get(f"/v1/fine_tuning/jobs/{job['id']}/events", params={"limit": 100}).json()["data"]
    assert [e["id"] for e in every] == ids  # the stream delivered exactly what was stored, in order
    assert metric_steps(first + rest) == list(range(1, 61))
