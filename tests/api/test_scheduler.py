"""The scheduler against the DB (SQLite and PostgreSQL) and a real Redis, without workers: the fair order
and `queue_position`, per-user and per-team limits, dispatch (once, even with two API processes), the lease
watcher, the re-queue policy (worker lost → attempt + 1 from the checkpoint; bounded; other errors final),
metrics stored once per (attempt, step), and the worker registry (`GET /v1/workers`)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select, update

from backend.db.ids import new_id
from backend.db.models import Checkpoint, Job, JobEvent
from backend.services import fair_queue
from backend.services.relay import relay_once
from backend.services.scheduler import Scheduler
from tests.api.jobs_support import *  # noqa: F401,F403 (fixtures)
from tests.api.jobs_support import dispatch, sent_tasks

JOBS = "/v1/fine_tuning/jobs"


def add_jobs(db, rows: list[tuple]) -> list[str]:
    """Insert jobs straight into the DB: each row is (owner, priority, created_at[, team[, status]])."""
    ids = []
    with db.session() as session:
        for row in rows:
            owner, priority, created_at, team, status = tuple(row) + (None, "queued")[len(row) - 3:]
            job = Job(id=new_id("ftjob"), status=status, model="m", spec="{}", training_file="file-x",
                      priority=priority, created_at=created_at, owner=owner, team=team, attempt=1)
            session.add(job)
            ids.append(job.id)
        session.commit()
    return ids


def order(db) -> list[str]:
    with db.session() as session:
        return [row.id for row in session.execute(fair_queue.ranked_waiting())]


def positions(db, ids) -> dict[str, int]:
    with db.session() as session:
        return fair_queue.queue_positions(session=session, job_ids=ids)


def scheduler(job_app, job_settings, **settings) -> Scheduler:
    """A scheduler like another API process's, with its own settings."""
    return Scheduler(db=job_app.state.db, queue=job_app.state.queue,
                     settings=job_settings.model_copy(update=settings))


def set_owner(db, job_id: str, owner: str | None, team: str | None = None) -> None:
    with db.session() as session:
        session.execute(update(Job).where(Job.id == job_id).values(owner=owner, team=team))
        session.commit()
    fair_queue.forget_positions()  # owners are fixed at creation in the API; here they change in place


def row(db, job_id: str) -> Job:
    with db.session() as session:
        return session.get(Job, job_id)


# ---------------------------------------------------------------------------------------------------
# The order


def test_priority_then_round_robin_across_users_then_fifo(db, job_app):
    a1, a2, a3, b1, b2, c1, a_urgent, anon = add_jobs(db, [
        ("alice", 0, 100), ("alice", 0, 101), ("alice", 0, 102), ("bob", 0, 103), ("bob", 0, 104),
        ("carol", 0, 105), ("alice", 5, 106), (None, 0, 107)])
    # alice's urgent job first; then one job per user per round, the longest-waiting user first in a round;
    # alice's urgent job used her first round, so her oldest normal job waits for round 1.
    expected = [a_urgent, b1, c1, anon, a1, b2, a2, a3]
    assert order(db) == expected
    assert positions(db, expected) == {job_id: i + 1 for i, job_id in enumerate(expected)}


def test_a_user_holding_gpus_waits_behind_one_holding_none(db, job_app):
    add_jobs(db, [("alice", 0, 90, None, "running"), ("alice", 0, 91, None, "running")])
    a1, a2, b1, b2 = add_jobs(db, [("alice", 0, 100), ("alice", 0, 101), ("bob", 0, 200), ("bob", 0, 201)])
    # alice holds two slots: bob's jobs take rounds 0 and 1, alice's 2 and 3.
    assert order(db) == [b1, b2, a1, a2]


def test_dispatched_jobs_come_first_in_queue_position(db, job_app):
    a1, b1, a2 = add_jobs(db, [("alice", 0, 100), ("bob", 0, 101), ("alice", 0, 102)])
    with db.session() as session:
        session.execute(update(Job).where(Job.id == a2).values(dispatched_at=500))
        session.commit()
    # a2 was handed to a worker (it starts next); alice holds a slot now, so bob's job goes before a1.
    assert positions(db, [a1, b1, a2]) == {a2: 1, b1: 2, a1: 3}
    assert positions(db, []) == {}


def test_jobs_page_shows_the_fair_positions(jobs_client, create, db):
    first, second, third = (create()["id"] for _ in range(3))
    set_owner(db, first, "alice")
    set_owner(db, second, "alice")
    set_owner(db, third, "bob")
    listed = {j["id"]: j["queue_position"] for j in jobs_client.get(JOBS).json()["data"]}
    assert listed == {first: 1, third: 2, second: 3}
    assert jobs_client.get(f"{JOBS}/{second}").json()["queue_position"] == 3


# ---------------------------------------------------------------------------------------------------
# Dispatch and limits


def test_dispatch_fills_free_slots_in_order_and_never_twice(job_app, create, db, redis):
    ids = [create()["id"] for _ in range(4)]
    set_owner(db, ids[0], "alice")
    set_owner(db, ids[1], "alice")
    set_owner(db, ids[2], "bob")
    set_owner(db, ids[3], "carol")
    assert dispatch(job_app, capacity=2) == [ids[0], ids[2]]
    assert dispatch(job_app, capacity=2) == []  # both slots are taken by the dispatched jobs
    assert dispatch(job_app, capacity=4) == [ids[3], ids[1]]
    assert [t["kwargs"]["job_id"] for t in sent_tasks(redis)] == [ids[0], ids[2], ids[3], ids[1]]
    assert all(row(db, j).dispatched_at is not None and row(db, j).status == "queued" for j in ids)


def test_round_robin_remembers_whose_turn_it_was(job_app, create, db):
    """One slot, jobs ending one by one: users take turns even though alice's jobs are all older."""
    ids = [create()["id"] for _ in range(6)]
    for job_id, owner in zip(ids, ("alice", "alice", "bob", "bob", "carol", "carol"), strict=True):
        set_owner(db, job_id, owner)
    served = []
    for _ in range(6):
        [job_id] = dispatch(job_app, capacity=1)
        served.append(row(db, job_id).owner)
        with db.session() as session:  # it ran and ended: nobody holds a slot now
            session.execute(update(Job).where(Job.id == job_id).values(status="succeeded"))
            session.commit()
        time.sleep(0.002)  # dispatch times are in ms
    assert served == ["alice", "bob", "carol", "alice", "bob", "carol"]


def test_per_user_limit_passes_over_a_blocked_user(job_app, job_settings, create, db, redis):
    ids = [create()["id"] for _ in range(4)]
    for job_id, owner in zip(ids, ("alice", "alice", "alice", "bob"), strict=True):
        set_owner(db, job_id, owner)
    limited = scheduler(job_app, job_settings, max_running_per_user=1)
    assert limited.dispatch(capacity=10) == [ids[0], ids[3]]  # one each; alice's others wait
    assert limited.dispatch(capacity=10) == []
    with db.session() as session:  # alice's job ends: her next one may go
        session.execute(update(Job).where(Job.id == ids[0]).values(status="succeeded"))
        session.commit()
    assert limited.dispatch(capacity=10) == [ids[1]]


def test_team_quota_caps_a_team_and_star_applies_to_unlisted_teams(job_app, job_settings, create, db):
    ids = [create()["id"] for _ in range(6)]
    teams = [("ann", "nlp"), ("ben", "nlp"), ("cat", "vision"), ("dan", "vision"), ("eve", "vision"), ("fay", None)]
    for job_id, (owner, team) in zip(ids, teams, strict=True):
        set_owner(db, job_id, owner, team)
    quota = scheduler(job_app, job_settings, team_quotas="nlp=1,*=2")
    sent = quota.dispatch(capacity=10)
    assert sent == [ids[0], ids[2], ids[3], ids[5]]  # nlp: 1, vision (via *): 2, no team: no quota


def test_cancelled_while_waiting_is_never_sent(jobs_client, job_app, create, redis):
    job_id = create()["id"]
    jobs_client.post(f"{JOBS}/{job_id}/cancel")
    assert dispatch(job_app) == [] and sent_tasks(redis) == []


def test_two_api_processes_never_dispatch_a_job_twice(job_app, job_settings, create, redis):
    ids = [create()["id"] for _ in range(12)]
    one, two = scheduler(job_app, job_settings), scheduler(job_app, job_settings)
    results: list[list[str]] = []
    start = threading.Barrier(2)

    def run(s: Scheduler) -> None:
        start.wait()
        results.append(s.dispatch(capacity=100))

    threads = [threading.Thread(target=run, args=(s,)) for s in (one, two)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = [t["kwargs"]["job_id"] for t in sent_tasks(redis)]
    assert sorted(sent) == sorted(ids) and len(set(sent)) == len(sent)
    assert sorted(results[0] + results[1]) == sorted(ids)
    assert one.lead() and not two.lead()  # one leader at a time


# ---------------------------------------------------------------------------------------------------
# The lease watcher and the re-queue policy


def running_job(create, worker, job_settings, redis, db, steps: int = 3, checkpoint: bool = True) -> tuple[str, str]:
    """A dispatched job that runs (relayed), with a checkpoint on disk at step `steps`."""
    job_id = create()["id"]
    worker.status(job_id, "running")
    for step in range(1, steps + 1):
        worker.metrics(job_id, step)
    ckpt = job_settings.jobs_dir / job_id / "checkpoints" / f"checkpoint-{steps}"
    if checkpoint:
        ckpt.mkdir(parents=True)
        worker.checkpoint(job_id, steps, str(ckpt))
    with db.session() as session:
        relay_once(session, redis, job_id, data_dir=job_settings.data_dir)
    return job_id, str(ckpt)


def test_a_job_whose_worker_vanished_is_requeued_from_its_checkpoint(job_app, job_settings, create, worker, redis, db):
    job_id, ckpt = running_job(create, worker, job_settings, redis, db)
    watcher = scheduler(job_app, job_settings, lease_grace_seconds=0.2)
    redis.set(f"studio:jobs:{job_id}:lease", json.dumps({"attempt": 1}), px=300)  # the last heartbeat's lease
    assert watcher.watch([]) == []
    time.sleep(0.35)  # the lease expires: no heartbeat, no worker lists the job
    assert watcher.watch([]) == []  # suspected, within the grace period
    time.sleep(0.25)
    assert watcher.watch([]) == [job_id]
    job = row(db, job_id)
    assert job.status == "queued" and job.attempt == 2 and job.requeues == 1 and job.dispatched_at is None
    assert redis.get(f"studio:jobs:{job_id}:dispatch") == "2:"  # attempt 1 may not re-take its lease
    assert watcher.dispatch(capacity=1) == [job_id]
    [task] = sent_tasks(redis)[-1:]
    assert task["kwargs"]["attempt"] == 2 and task["kwargs"]["resume_from"] == ckpt
    with db.session() as session:
        relay_once(session, redis, job_id, data_dir=job_settings.data_dir)
        messages = [e.message for e in session.scalars(select(JobEvent).where(JobEvent.job_id == job_id,
                                                                              JobEvent.type == "message"))]
    assert any("stopped answering" in m and "requeued as attempt 2" in m for m in messages), messages
    assert any(m == "Attempt 2 dispatched, resuming from checkpoint-3" for m in messages), messages


@pytest.mark.parametrize("alive", ["lease", "registry", "unrelayed"])
def test_a_job_with_a_sign_of_life_is_left_alone(job_app, job_settings, create, worker, redis, db, alive):
    job_id, _ = running_job(create, worker, job_settings, redis, db)
    watcher = scheduler(job_app, job_settings, lease_grace_seconds=0.01)
    live = []
    if alive == "lease":
        redis.set(f"studio:jobs:{job_id}:lease", json.dumps({"attempt": 1}))
    elif alive == "registry":  # after a Redis restart the worker lists the job again before re-taking the lease
        live = [{"name": "w1", "queues": ["gpu"], "slots": 1, "jobs": {job_id: 1}}]
    else:
        worker.status(job_id, "succeeded", result=worker.success_result("/out"))  # the relay has not read it yet
    for _ in range(3):
        assert watcher.watch(live) == []
        time.sleep(0.02)
    assert row(db, job_id).status == "running" and row(db, job_id).attempt == 1


def test_attempts_are_bounded_then_the_job_fails_worker_lost(job_app, job_settings, create, worker, redis, db):
    job_id, _ = running_job(create, worker, job_settings, redis, db)
    watcher = scheduler(job_app, job_settings, lease_grace_seconds=0.01, max_job_attempts=2)
    watcher.watch([])
    time.sleep(0.02)
    assert watcher.watch([]) == [job_id] and row(db, job_id).attempt == 2
    assert watcher.dispatch(capacity=1) == [job_id]
    worker.status(job_id, "running", attempt=2)
    with db.session() as session:
        relay_once(session, redis, job_id, data_dir=job_settings.data_dir)
    watcher.watch([])
    time.sleep(0.02)
    assert watcher.watch([]) == [job_id]
    job = row(db, job_id)
    assert job.status == "failed" and job.error["code"] == "worker_lost" and job.finished_at
    assert "ran 2 times" in job.error["message"] and "STUDIO_MAX_JOB_ATTEMPTS=2" in job.error["message"]


def test_a_cancelling_job_whose_worker_died_is_cancelled(jobs_client, job_app, job_settings, create, worker, redis, db):
    job_id, _ = running_job(create, worker, job_settings, redis, db)
    assert jobs_client.post(f"{JOBS}/{job_id}/cancel").json()["status"] == "cancelling"
    watcher = scheduler(job_app, job_settings, lease_grace_seconds=0.01)
    watcher.watch([])
    time.sleep(0.02)
    assert watcher.watch([]) == [job_id] and row(db, job_id).status == "cancelled"


def test_a_dispatch_lost_before_it_started_is_queued_again_uncounted(job_app, job_settings, create, redis, db):
    job_id = create()["id"]
    watcher = scheduler(job_app, job_settings, lease_grace_seconds=0.01)
    assert watcher.dispatch(capacity=1) == [job_id]
    assert watcher.watch([]) == []  # its token waits in Redis for a worker to claim it
    redis.delete(f"studio:jobs:{job_id}:dispatch")  # Redis restarted: message and token gone
    watcher.watch([])
    time.sleep(0.02)
    assert watcher.watch([]) == [job_id]
    job = row(db, job_id)
    assert job.status == "queued" and job.dispatched_at is None and job.attempt == 2 and job.requeues == 0


def test_an_unclaimed_dispatch_is_replaced_after_the_timeout(job_app, job_settings, create, redis, db):
    job_id = create()["id"]
    watcher = scheduler(job_app, job_settings, dispatch_timeout_seconds=1)
    assert watcher.dispatch(capacity=1) == [job_id]
    first = redis.get(f"studio:jobs:{job_id}:dispatch")
    with db.session() as session:
        session.execute(update(Job).where(Job.id == job_id).values(dispatched_at=Job.dispatched_at - 5000))
        session.commit()
    assert watcher.watch([]) == [job_id]
    assert watcher.dispatch(capacity=1) == [job_id]
    second = redis.get(f"studio:jobs:{job_id}:dispatch")
    assert first.startswith("1:") and second.startswith("2:")  # the old message is now stale


def test_worker_lost_reported_by_the_worker_requeues_other_errors_are_final(job_app, job_settings, create, worker,
                                                                           redis, db):
    lost, ckpt = running_job(create, worker, job_settings, redis, db, checkpoint=False)
    ckpt_dir = Path(ckpt)
    ckpt_dir.mkdir(parents=True)
    worker.status(lost, "failed", error={"code": "worker_lost", "message": "the training process stopped on signal 9"},
                  result={"checkpoint": str(ckpt_dir), "global_step": 3})
    oom, _ = running_job(create, worker, job_settings, redis, db, checkpoint=False)
    worker.status(oom, "failed", error={"code": "out_of_memory", "message": "out of memory. Try a smaller batch"})
    bad, _ = running_job(create, worker, job_settings, redis, db, checkpoint=False)
    worker.status(bad, "failed", error={"code": "invalid_training_file", "message": "line 2: no messages"})
    with db.session() as session:
        for job_id in (lost, oom, bad):
            relay_once(session, redis, job_id, data_dir=job_settings.data_dir)
    job = row(db, lost)
    assert job.status == "queued" and job.attempt == 2 and job.requeues == 1 and job.error is None
    with db.session() as session:
        [saved] = session.scalars(select(Checkpoint).where(Checkpoint.job_id == lost)).all()
    assert saved.step_number == 3
    assert row(db, oom).status == "failed" and row(db, oom).error["code"] == "out_of_memory"
    assert row(db, bad).status == "failed" and row(db, bad).error["code"] == "invalid_training_file"
    dispatched = dispatch(job_app)
    assert dispatched == [lost]
    assert sent_tasks(redis)[-1]["kwargs"]["resume_from"] == str(ckpt_dir)


def test_dispatch_drops_an_older_attempts_lease_and_keeps_the_event_counter_up(job_app, job_settings, create, worker,
                                                                                redis, db):
    job_id, _ = running_job(create, worker, job_settings, redis, db)
    redis.set(f"studio:jobs:{job_id}:lease", json.dumps({"attempt": 1, "worker": "dead"}))
    worker.status(job_id, "failed", error={"code": "worker_lost", "message": "lost"})
    with db.session() as session:
        relay_once(session, redis, job_id, data_dir=job_settings.data_dir)
    stored = row(db, job_id).last_event_seq
    redis.delete(f"studio:jobs:{job_id}:seq")  # a Redis restart reset the counter
    assert dispatch(job_app) == [job_id]
    assert redis.get(f"studio:jobs:{job_id}:lease") is None  # attempt 2 can claim at once
    assert int(redis.get(f"studio:jobs:{job_id}:seq")) > stored  # (+1: the "dispatched" message)
    redis.set(f"studio:jobs:{job_id}:lease", json.dumps({"attempt": 2}))
    job_app.state.queue.prepare_dispatch(job_id=job_id, attempt=2, dispatch="2:x", seq_floor=0)
    assert redis.get(f"studio:jobs:{job_id}:lease") is not None  # never another attempt's own lease


def test_redis_restart_restores_the_event_counters(job_app, job_settings, create, worker, redis, db):
    job_id, _ = running_job(create, worker, job_settings, redis, db)
    stored = row(db, job_id).last_event_seq
    watcher = scheduler(job_app, job_settings)
    watcher.check_redis_restart()
    redis.delete(f"studio:jobs:{job_id}:seq")
    watcher.redis_run_id = "another-run"  # as if the server had restarted
    watcher.check_redis_restart()
    assert int(redis.get(f"studio:jobs:{job_id}:seq")) == stored


def test_tick_leads_watches_and_dispatches(job_app, job_settings, create, redis, db):
    from worker.registry import Heartbeat

    job_id = create()["id"]
    ticker = scheduler(job_app, job_settings)
    assert ticker.tick().dispatched == []  # no worker announced itself: nothing is sent
    beat = Heartbeat(redis, name="gpu-1@box", queues=["gpu"], slots=1, gpus=[], prefix="studio")
    beat.beat()
    result = ticker.tick()
    assert result.leader and result.dispatched == [job_id]
    assert scheduler(job_app, job_settings).tick().leader is False  # another API process waits its turn


# ---------------------------------------------------------------------------------------------------
# Metrics per (attempt, step), and the worker registry


def test_each_attempt_and_step_is_stored_once_and_events_carry_the_attempt(jobs_client, create, worker, redis, db,
                                                                        job_settings):
    job_id = create()["id"]
    worker.status(job_id, "running")
    for step in (1, 2, 3):
        worker.metrics(job_id, step)
    worker.metrics(job_id, 3)  # the same point again (a replay within the attempt): not stored twice
    worker.emit(job_id, "metrics", {"step": 3, "total_steps": 10, "valid_loss": 1.5})  # an eval at step 3: kept
    worker.status(job_id, "failed", error={"code": "worker_lost", "message": "lost"})
    worker.status(job_id, "running", attempt=2)
    for step in (3, 4):  # attempt 2 resumed from checkpoint 2 and replays step 3
        worker.metrics(job_id, step, attempt=2)
    with db.session() as session:
        relay_once(session, redis, job_id, data_dir=job_settings.data_dir)
    events = jobs_client.get(f"{JOBS}/{job_id}/events", params={"limit": 100}).json()["data"]
    points = [(e["attempt"], e["data"]["step"], "train_loss" in e["data"]) for e in events if e["type"] == "metrics"]
    assert points == [(1, 1, True), (1, 2, True), (1, 3, True), (1, 3, False), (2, 3, True), (2, 4, True)]
    latest = {}
    for attempt, step, train in points:  # what a curve shows: the latest attempt of each step
        if train:
            latest[step] = max(latest.get(step, 0), attempt)
    assert latest == {1: 1, 2: 1, 3: 2, 4: 2}


def test_workers_endpoint_lists_the_registry(jobs_client, redis):
    from worker.registry import Heartbeat, job_started

    assert jobs_client.get("/v1/workers").json() == {"object": "list", "data": [], "has_more": False,
                                                     "first_id": None, "last_id": None}
    gpu = Heartbeat(redis, name="gpu-0@box", queues=["gpu"], slots=1, prefix="studio",
                    gpus=[{"index": 0, "name": "NVIDIA H200", "memory_bytes": 150 * 2**30}])
    cpu = Heartbeat(redis, name="inf@box", queues=["inference"], slots=1, prefix="studio", gpus=[])
    gpu.beat()
    cpu.beat()
    job_started(redis, "gpu-0@box", "ftjob-x", 2, prefix="studio")
    listed = jobs_client.get("/v1/workers").json()["data"]
    assert [w["id"] for w in listed] == ["gpu-0@box", "inf@box"]
    assert listed[0]["status"] == "busy" and listed[0]["current_job"] == "ftjob-x"
    assert listed[0]["jobs"] == [{"id": "ftjob-x", "attempt": 2}] and listed[0]["gpus"][0]["name"] == "NVIDIA H200"
    assert listed[1]["status"] == "idle" and listed[1]["gpus"] == [] and listed[1]["queues"] == ["inference"]
    assert jobs_client.get("/healthz").json()["workers"] == 2
    assert redis.zcard("studio:inference:workers") == 1  # what the chat endpoints check
    gpu.stop()
    assert [w["id"] for w in jobs_client.get("/v1/workers").json()["data"]] == ["inf@box"]
