"""Crash-safe runs with real processes (DESIGN §5): a private `redis-server` (no persistence, like the
machine's service), two `studio worker` processes, the API, and real LoRA training of the tiny model.

- `kill -9` of the training process → the task reports `worker_lost` → attempt 2 resumes from the
  checkpoint and succeeds; no (attempt, step) stored twice.
- `kill -9` of a whole worker while a second one runs → its training process checkpoints and reports
  (the kernel's parent-death signal) → the second worker finishes the job.
- `kill -9` of a worker and its training process together → nobody reports; the lease expires, the API's
  lease watcher re-queues the job, the other worker finishes it.
- Redis restarted (every key lost) mid-job → events already stored are intact, running jobs continue
  (their leases re-taken) or are re-queued, the waiting job runs; every job succeeds.

Leases are short here (`STUDIO_LEASE_TTL_SECONDS=6`, watcher grace 3 s) so a lost worker is noticed fast.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.integration.stack import PrivateRedis, Stack
from tests.integration.stack import create_job as stack_create_job
from tests.integration.stack import wait_for as stack_wait_for
from tests.integration.test_queue import training_processes

JOBS = "/v1/fine_tuning/jobs"
TERMINAL = {"succeeded", "failed", "cancelled"}
ENV = {"STUDIO_LEASE_TTL_SECONDS": "6", "STUDIO_WORKER_HEARTBEAT_SECONDS": "1", "STUDIO_LEASE_GRACE_SECONDS": "3",
       "STUDIO_SCHEDULER_INTERVAL_SECONDS": "0.2", "STUDIO_STOP_GRACE_SECONDS": "30"}
STEPS, SAVE_EVERY = 80, 10


@pytest.fixture(scope="module")
def stack(studio_data_dir, tiny_model, tmp_path_factory):
    logs = tmp_path_factory.mktemp("crash-logs")
    with Stack(studio_data_dir, logs, worker_queues=("gpu", "gpu"), env=ENV,
               redis=PrivateRedis(logs / "redis")) as stack:
        yield stack


@pytest.fixture
def two_workers(stack):
    """Two live gpu workers before the test (a test that kills one leaves the next one a fresh one)."""
    alive = [w for w in stack.workers if w.poll() is None]
    for _ in range(2 - len(alive)):
        stack.add_worker("gpu")
    stack.wait_workers(2)
    return stack


def create_job(client, training_file: str, steps: int = STEPS) -> str:
    return stack_create_job(client, training_file, steps, save_steps=SAVE_EVERY)["id"]


def wait_for(client, stack, job_id: str, predicate) -> dict:
    return stack_wait_for(client, job_id, predicate, timeout=240, stack=stack)


def events_of(client, job_id: str) -> list[dict]:
    events, after = [], None
    while True:
        page = client.get(f"{JOBS}/{job_id}/events", params={"limit": 100, **({"after": after} if after else {})}).json()
        events += page["data"]
        if not page["has_more"]:
            return events
        after = page["last_id"]


def points(events: list[dict]) -> list[tuple[int, int]]:
    """(attempt, step) of every training-loss point stored."""
    return [(e["attempt"], e["data"]["step"]) for e in events if e["type"] == "metrics" and "train_loss" in e["data"]]


def assert_resumed_and_complete(events: list[dict], attempt: int) -> None:
    """Each (attempt, step) once; the last attempt started after a checkpoint of an earlier one; the curve
    (the latest attempt of each step) covers every step."""
    stored = points(events)
    assert len(stored) == len(set(stored)), sorted(p for p in stored if stored.count(p) > 1)
    last = sorted(step for a, step in stored if a == attempt)
    earlier = [step for a, step in stored if a < attempt]
    assert last and last == list(range(last[0], STEPS + 1)), last
    assert 1 < last[0] <= max(earlier) + 1, (last[0], max(earlier))  # resumed after a checkpoint it reached
    curve = {}
    for a, step in stored:
        curve[step] = max(curve.get(step, 0), a)
    assert sorted(curve) == list(range(1, STEPS + 1))


def worker_running(client, job_id: str) -> dict | None:
    return next((w for w in client.get("/v1/workers").json()["data"] if w["current_job"] == job_id), None)


def test_kill_9_of_the_training_process_resumes_attempt_2_from_the_checkpoint(two_workers, client, training_file):
    stack = two_workers
    job_id = create_job(client, training_file)
    wait_for(client, stack, job_id, lambda j: j["progress"]["step"] >= 25)
    [pid] = training_processes(job_id)
    os.kill(pid, signal.SIGKILL)

    final = wait_for(client, stack, job_id, lambda j: j["status"] in TERMINAL)
    assert final["status"] == "succeeded" and final["attempt"] == 2, final
    events = events_of(client, job_id)
    [lost] = [e for e in events if e["type"] == "status" and e["data"]["status"] == "failed"]
    assert lost["attempt"] == 1 and lost["data"]["error"]["code"] == "worker_lost", lost  # not out_of_memory
    assert any(e["message"].startswith("Attempt 2 dispatched, resuming from checkpoint-") for e in events)
    assert_resumed_and_complete(events, attempt=2)


def test_kill_9_of_a_whole_worker_the_second_worker_finishes_the_job(two_workers, client, training_file):
    stack = two_workers
    job_id = create_job(client, training_file)
    wait_for(client, stack, job_id, lambda j: j["progress"]["step"] >= 25)
    running_on = worker_running(client, job_id)
    assert running_on is not None and running_on["jobs"] == [{"id": job_id, "attempt": 1}]
    [victim] = [w for w in stack.workers if w.pid == running_on["pid"]]
    stack.kill_worker(victim)

    survivor_ran_it = False
    deadline = time.time() + 240
    while (job := client.get(f"{JOBS}/{job_id}").json())["status"] not in TERMINAL and time.time() < deadline:
        on = worker_running(client, job_id)
        survivor_ran_it |= bool(on and on["pid"] != victim.pid and on["jobs"][0]["attempt"] == 2)
        time.sleep(0.3)
    assert job["status"] == "succeeded" and job["attempt"] == 2, f"{job}\n{stack.log_tail()}"
    assert survivor_ran_it
    assert victim.pid not in [w["pid"] for w in client.get("/v1/workers").json()["data"]]
    events = events_of(client, job_id)
    [lost] = [e for e in events if e["type"] == "status" and e["data"]["status"] == "failed"]
    assert lost["attempt"] == 1 and lost["data"]["error"]["code"] == "worker_lost"  # the orphan said so itself
    assert lost["data"]["result"]["checkpoint"]  # where it paused, right after the worker died
    assert_resumed_and_complete(events, attempt=2)
    deadline = time.time() + 30  # attempt 1's orphan checkpointed and left; attempt 2's exits after its status
    while training_processes(job_id) and time.time() < deadline:
        time.sleep(0.5)
    assert training_processes(job_id) == []


def test_a_worker_and_its_training_killed_together_the_lease_watcher_requeues(two_workers, client, training_file):
    stack = two_workers
    job_id = create_job(client, training_file)
    wait_for(client, stack, job_id, lambda j: j["progress"]["step"] >= 25)
    running_on = worker_running(client, job_id)
    [victim] = [w for w in stack.workers if w.pid == running_on["pid"]]
    [trainer] = training_processes(job_id)
    os.kill(trainer, signal.SIGSTOP)  # frozen, it cannot act on the parent-death signal
    stack.kill_worker(victim)
    os.kill(trainer, signal.SIGKILL)  # no one left to report: only the lease can tell

    final = wait_for(client, stack, job_id, lambda j: j["status"] in TERMINAL)
    assert final["status"] == "succeeded" and final["attempt"] == 2, final
    events = events_of(client, job_id)
    assert not [e for e in events if e["type"] == "status" and e["data"]["status"] == "failed"]
    assert any("stopped answering" in e["message"] and "requeued as attempt 2" in e["message"] for e in events)
    assert_resumed_and_complete(events, attempt=2)


def test_redis_restart_keeps_stored_events_and_every_job_finishes(two_workers, client, training_file):
    stack = two_workers
    running = [create_job(client, training_file) for _ in range(2)]
    waiting = create_job(client, training_file, steps=20)
    for job_id in running:
        wait_for(client, stack, job_id, lambda j: j["progress"]["step"] >= 15)
    assert client.get(f"{JOBS}/{waiting}").json()["status"] == "queued"  # both workers are busy
    before = {job_id: events_of(client, job_id) for job_id in running}

    stack.redis.restart()  # every key is gone: streams, leases, the broker's queues, the registry

    finals = {job_id: wait_for(client, stack, job_id, lambda j: j["status"] in TERMINAL) for job_id in running}
    finals[waiting] = wait_for(client, stack, waiting, lambda j: j["status"] in TERMINAL)
    assert {j["status"] for j in finals.values()} == {"succeeded"}, f"{finals}\n{stack.log_tail()}"
    for job_id in running:
        after = events_of(client, job_id)
        assert after[:len(before[job_id])] == before[job_id]  # what was stored is intact, in order
        stored = points(after)
        assert len(stored) == len(set(stored))
        attempt = finals[job_id]["attempt"]
        assert attempt in (1, 2)  # it continued (lease re-taken) or was re-queued from its checkpoint
        assert max(step for a, step in stored if a == attempt) == STEPS
        ids = [e["id"] for e in after]
        assert len(ids) == len(set(ids))
