"""The scheduler: dispatches queued jobs from the DB to GPU workers, and re-queues jobs whose worker died.

The DB is the source of truth; Celery only delivers. A background task started in the app's lifespan (like
the relay) ticks every `STUDIO_SCHEDULER_INTERVAL_SECONDS` (and at once when a job is queued):

1. **Leadership.** With several API processes, one leads: it holds `{prefix}:scheduler:leader` (SET NX,
   refreshed each tick, expires when its holder dies). Others skip the tick. Independently of that, the
   dispatch itself is a compare-and-set (`queued` with `dispatched_at IS NULL` → set `dispatched_at`), so
   no job is ever dispatched twice, even by two leaders.
2. **Watch** (the lease watcher). A `running`/`cancelling` job with no lease in Redis, that no live worker
   lists in the registry and whose stream holds no unrelayed event, for `STUDIO_LEASE_GRACE_SECONDS`, lost
   its worker: it is re-queued (`requeue_or_fail`). A dispatched job whose token and lease are both gone
   (Redis lost the message, or the worker died before starting it) goes back to the queue uncounted; one
   still unclaimed after `STUDIO_DISPATCH_TIMEOUT_SECONDS` is replaced by a fresh dispatch.
3. **Dispatch.** Free slots = the live workers' training slots (`services/workers.py`) minus the jobs in
   flight (DB). The next waiting jobs by the fair rule (`services/fair_queue.py`) that the per-user and
   per-team limits allow are marked dispatched, then sent (`jobs.send_attempt`: a dispatch token the task must
   claim, `resume_from` = the newest checkpoint). Celery's FIFO never decides the order: a job is sent
   only when a worker is free to take it.

Re-queue policy (`requeue_or_fail`): a lost run is re-queued with `attempt + 1` and resumes from its newest
checkpoint, until the job has had `STUDIO_MAX_JOB_ATTEMPTS` runs; then it fails with `worker_lost`. A
cancelling job whose worker died is cancelled. Only `worker_lost` is retried: bad input
(`invalid_*`), `out_of_memory` and `training_error` fail at once.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis as redis_lib
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.api.errors import APIError
from backend.db.models import Job, now
from backend.db.session import Database
from backend.schemas.jobs import TERMINAL_STATUSES
from backend.services import fair_queue, workers
from backend.services.jobs import send_attempt
from backend.services.queue import JobQueue, QueueUnavailable
from backend.settings import Settings
from worker import lifecycle

log = logging.getLogger("studio.scheduler")
DEFAULT_MAX_ATTEMPTS: int = Settings.model_fields["max_job_attempts"].default
REQUEUED_CODES = frozenset({"worker_lost"})  # failures of the run, not of the job

# Lead while we hold the key (KEYS leader; ARGV token, TTL ms).
_LEAD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""


def requeue_or_fail(*, session: Session, job: Job, max_attempts: int, reason: str, counted: bool = True) -> str:
    """A run of `job` was lost: queue it again (attempt + 1; it resumes from its newest checkpoint when
    dispatched), or fail it `worker_lost` once it has had `max_attempts` runs. `counted=False` for a
    dispatch that never started. The caller commits. Returns `requeued` | `failed` | `cancelled`."""
    job.eta_seconds = None
    if lifecycle.next_state(job.status, "worker_lost") == "cancelled":  # cancelling: the cancel completes
        job.status, job.finished_at = "cancelled", now()
        return "cancelled"
    runs = job.requeues + 1
    if counted and runs >= max_attempts:
        job.status, job.finished_at = "failed", now()
        job.error = {"code": "worker_lost", "param": None,
                     "message": f"{reason.rstrip('.')}. The job ran {runs} time{'s' * (runs > 1)} and lost its worker "
                                f"each time (STUDIO_MAX_JOB_ATTEMPTS={max_attempts}); it is not retried again."}
        return "failed"
    job.status, job.attempt, job.dispatched_at, job.error = "queued", job.attempt + 1, None, None
    job.requeues += int(counted)
    return "requeued"


@dataclass
class TickResult:
    leader: bool = True
    dispatched: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)


class Scheduler:
    """`tick()` once (tests), or `start()` the loop in the lifespan and `await stop()` on shutdown."""

    def __init__(self, *, db: Database, queue: JobQueue, settings: Settings):
        self.db, self.queue, self.settings = db, queue, settings
        self.redis: redis_lib.Redis = queue.redis
        self.prefix = settings.redis_prefix
        self.limits = fair_queue.Limits(settings.max_running_per_user, settings.team_quota_map)
        self.token = secrets.token_hex(8)
        self.suspects: dict[str, float] = {}  # job id -> when it first looked lost (monotonic)
        self.redis_run_id: str | None = None
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._healthy = True
        self.on_dispatch: Callable[[], None] | None = None  # the relay's `watch_now`: read the new streams soon

    # -- one tick -----------------------------------------------------------------------------------

    def tick(self) -> TickResult:
        with self.db.session() as session:
            busy = session.scalar(select(Job.id).where(fair_queue.waiting_clause() | fair_queue.in_flight_clause())
                                  .limit(1))
        if busy is None:
            self.suspects.clear()
            return TickResult()
        if not self.lead():
            return TickResult(leader=False)
        self.check_redis_restart()
        live = workers.live_workers(self.redis, self.prefix)
        lost = self.watch(live)
        return TickResult(dispatched=self.dispatch(capacity=workers.training_slots(live)), lost=lost)

    def lead(self) -> bool:
        ttl_ms = int(max(3.0, 6 * self.settings.scheduler_interval_seconds) * 1000)
        return bool(self.redis.eval(_LEAD, 1, f"{self.prefix}:scheduler:leader", self.token, ttl_ms))

    def check_redis_restart(self) -> None:
        """A Redis restart without persistence resets every job's event counter: raise each active job's to
        the last seq the DB stored, so new events are not mistaken for ones already stored."""
        run_id = self.redis.info("server").get("run_id")
        if self.redis_run_id is not None and run_id != self.redis_run_id:
            with self.db.session() as session:
                floors = dict(session.execute(select(Job.id, Job.last_event_seq).where(
                    Job.status.not_in(TERMINAL_STATUSES), Job.last_event_seq > 0)).all())
            log.warning("Redis restarted (run id %s → %s); restoring the event counters of %d jobs",
                        self.redis_run_id, run_id, len(floors))
            if floors:
                self.queue.raise_seq_floors(floors)
        self.redis_run_id = run_id

    # -- dispatch -----------------------------------------------------------------------------------

    def dispatch(self, *, capacity: int) -> list[str]:
        """Send the next waiting jobs to free slots; returns their ids in dispatch order."""
        sent: list[str] = []
        with self.db.session() as session:
            flight = fair_queue.in_flight(session)
            free = capacity - flight.total
            for job_id in fair_queue.next_jobs(session, free=free, limits=self.limits, flight=flight):
                if self.dispatch_one(session, job_id):
                    sent.append(job_id)
        if sent and self.on_dispatch is not None:
            self.on_dispatch()
        return sent

    def dispatch_one(self, session: Session, job_id: str) -> bool:
        changed = session.execute(update(Job).where(Job.id == job_id, Job.status == "queued",
                                                    Job.dispatched_at.is_(None)).values(dispatched_at=now_ms())
                                  .execution_options(synchronize_session=False)).rowcount
        session.commit()
        if changed != 1:
            return False  # cancelled meanwhile, or another API process took it
        job = session.get(Job, job_id)
        session.refresh(job)
        try:
            resume_from = send_attempt(session=session, settings=self.settings, queue=self.queue, job=job)
        except QueueUnavailable:
            self._undispatch(session, job_id)
            raise
        except APIError as exc:  # a file of the job was deleted while it waited
            self._fail(session, job_id, {"code": exc.code or "invalid_training_file", "message": exc.message,
                                         "param": exc.param})
            return False
        if job.attempt > 1:
            where = f"resuming from {Path(resume_from).name}" if resume_from else "starting over (no checkpoint)"
            self._say(job_id, job.attempt, f"Attempt {job.attempt} dispatched, {where}", seq_floor=job.last_event_seq)
        return True

    def _undispatch(self, session: Session, job_id: str) -> None:
        session.execute(update(Job).where(Job.id == job_id, Job.status == "queued").values(dispatched_at=None)
                        .execution_options(synchronize_session=False))
        session.commit()

    def _fail(self, session: Session, job_id: str, error: dict[str, Any]) -> None:
        session.execute(update(Job).where(Job.id == job_id, Job.status == "queued")
                        .values(status="failed", finished_at=now(), error=error)
                        .execution_options(synchronize_session=False))
        session.commit()

    def _say(self, job_id: str, attempt: int, message: str, level: str = "info", seq_floor: int = 0) -> None:
        """A message event in the job's stream (best effort: the DB change already happened)."""
        try:
            self.queue.append_message(job_id=job_id, attempt=attempt, message=message, level=level,
                                      seq_floor=seq_floor)
        except redis_lib.RedisError as exc:
            log.warning("could not write an event for %s: %s", job_id, exc)

    # -- the lease watcher --------------------------------------------------------------------------

    def watch(self, live: list[dict[str, Any]]) -> list[str]:
        """Re-queue jobs whose run was lost (see the module docstring); returns their ids."""
        with self.db.session() as session:
            rows = session.execute(select(Job.id, Job.status, Job.attempt, Job.dispatched_at, Job.last_event_seq)
                                   .where(fair_queue.in_flight_clause())).all()
        if not rows:
            self.suspects.clear()
            return []
        pipe = self.redis.pipeline(transaction=False)
        for row in rows:
            pipe.exists(self.queue.key(row.id, "lease"))
            pipe.get(self.queue.key(row.id, "dispatch"))
            pipe.xrevrange(self.queue.key(row.id, "events"), count=1)
        replies = pipe.execute()
        busy, clock, wall_ms, lost = workers.busy_jobs(live), time.monotonic(), now_ms(), []
        for row, lease, token, last in zip(rows, replies[::3], replies[1::3], replies[2::3], strict=True):
            unrelayed = _last_seq(last) > row.last_event_seq
            healthy = bool(lease) or row.id in busy or unrelayed
            if row.status == "queued":
                ours = token is not None and token.startswith(f"{row.attempt}:") and token != f"{row.attempt}:"
                waited_ms = wall_ms - (row.dispatched_at or wall_ms)
                if ours and not lease and waited_ms > self.settings.dispatch_timeout_seconds * 1000:
                    self.lose(row, f"No worker claimed attempt {row.attempt} within "
                                   f"{self.settings.dispatch_timeout_seconds:g}s; it was dispatched again.")
                    lost.append(row.id)
                    continue
                healthy = healthy or ours
            if healthy:
                self.suspects.pop(row.id, None)
                continue
            since = self.suspects.setdefault(row.id, clock)
            if clock - since >= self.settings.lease_grace_seconds:
                self.suspects.pop(row.id, None)
                if row.status == "queued":
                    self.lose(row, f"Attempt {row.attempt} was lost before it started (its message or its "
                                   "worker went away); it was queued again.")
                else:
                    self.lose(row, f"The worker running attempt {row.attempt} stopped answering (no lease "
                                   f"heartbeat for {self.settings.lease_grace_seconds:g}s+).")
                lost.append(row.id)
        self.suspects = {k: v for k, v in self.suspects.items() if k in {r.id for r in rows}}
        return lost

    def lose(self, row, reason: str) -> None:
        """Re-queue (or fail, or cancel) the job of `row` if nothing changed it meanwhile."""
        with self.db.session() as session:
            job = session.scalars(select(Job).where(Job.id == row.id).with_for_update()).first()
            if job is None or job.status != row.status or job.attempt != row.attempt:
                session.rollback()
                return
            outcome = requeue_or_fail(session=session, job=job, max_attempts=self.settings.max_job_attempts,
                                      reason=reason, counted=row.status != "queued")
            session.commit()
            attempt, floor = job.attempt, job.last_event_seq
        log.warning("job %s: %s → %s", row.id, reason, outcome)
        if outcome == "requeued":
            try:
                self.queue.mark_requeued(row.id, attempt)  # the old attempt may not re-take its lease
            except redis_lib.RedisError as exc:
                log.warning("could not mark %s re-queued: %s", row.id, exc)
        level = "warn" if outcome == "requeued" else "error"
        self._say(row.id, row.attempt, f"{reason} Job {outcome}" + (f" as attempt {attempt}." if outcome == "requeued"
                                                                    else "."), level=level, seq_floor=floor)

    # -- the loop -----------------------------------------------------------------------------------

    def nudge(self) -> None:
        """Tick now (thread-safe: request handlers call it after queueing a job)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        delay = self.settings.scheduler_interval_seconds
        while not self._stopping.is_set():
            try:
                await asyncio.to_thread(self.tick)
                if not self._healthy:
                    log.info("scheduler: dispatching again")
                self._healthy, delay = True, self.settings.scheduler_interval_seconds
            except Exception:  # Redis or the DB away: say so once, retry with backoff
                if self._healthy:
                    log.exception("scheduler: tick failed (retrying)")
                self._healthy, delay = False, min(max(delay * 2, self.settings.scheduler_interval_seconds), 5.0)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            except asyncio.TimeoutError:
                pass

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.queue.on_queued = self.nudge
        self._task = self._loop.create_task(self.run(), name="studio-scheduler")

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self.queue.on_queued = None
        if self._task is not None:
            await self._task


def now_ms() -> int:
    return int(time.time() * 1000)


def _last_seq(entries) -> int:
    """The seq of the newest entry of an XREVRANGE … COUNT 1 reply (0 when none or unreadable)."""
    import json

    try:
        return int(json.loads(entries[0][1]["event"])["seq"])
    except (IndexError, KeyError, TypeError, ValueError):
        return 0
