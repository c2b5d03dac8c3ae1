"""The relay: copies every active job's Redis Stream into the database (events, checkpoints, job state).

Workers only write Redis; the API owns the DB. A background task started in the app's lifespan polls the
streams of all non-terminal jobs with one `XREAD` per tick and hands each job's new entries to
`apply_entries`, which runs in one transaction per job: lock the job row, skip entries whose `seq` is
already persisted (`jobs.last_event_seq`), insert-or-ignore the rest, fold them into the row, commit.
The stream cursors live in memory only; after an API restart every active stream is read from the start
and the seq check (plus the (job_id, seq) unique index) makes that a no-op for what was already stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis as redis_lib
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from backend.db.models import Job, now
from backend.db.session import Database
from backend.schemas.jobs import ACTIVE_STATUSES
from backend.services.events import apply_event, persist_event, stored_path, update_eta
from backend.services.queue import job_key
from backend.services.scheduler import DEFAULT_MAX_ATTEMPTS

log = logging.getLogger("studio.relay")
BATCH = 500
AFTERGLOW_SECONDS = 60  # keep reading a job this long after it ended: a worker's last words still land


def decode_entries(entries: list[tuple[str, dict[str, str]]]) -> list[tuple[str, dict[str, Any]]]:
    """Stream entries → (stream id, event dict); malformed entries are logged and dropped."""
    out = []
    for entry_id, fields in entries:
        try:
            event = json.loads(fields["event"])
            int(event["seq"])
        except (KeyError, TypeError, ValueError):
            log.warning("dropping malformed stream entry %s: %.200r", entry_id, fields)
            continue
        out.append((entry_id, event))
    return out


def apply_entries(*, session: Session, job_id: str, events: list[dict[str, Any]],
                  store_path: Callable[[str], str] = lambda p: p, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> int:
    """Persist and fold a job's events (oldest first) in one transaction; returns how many were new.

    A `failed` status with `worker_lost` re-queues the job (up to `max_attempts` runs; see the scheduler)."""
    job = session.scalars(select(Job).where(Job.id == job_id).with_for_update()).first()
    if job is None:
        session.rollback()
        return 0
    new = 0
    for event in sorted(events, key=lambda e: int(e["seq"])):
        seq = int(event["seq"])
        if seq <= job.last_event_seq:
            continue
        if persist_event(session=session, job_id=job_id, event=event):
            apply_event(session=session, job=job, event=event, store_path=store_path, max_attempts=max_attempts)
            new += 1
        job.last_event_seq = seq
    if new:
        session.flush()
        update_eta(session=session, job=job)
    session.commit()
    return new


def relay_once(session: Session, redis: redis_lib.Redis, job_id: str, *, prefix: str = "studio",
               after: str = "0", data_dir: Path | None = None, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> str:
    """Relay everything in the job's stream after stream id `after`; returns the last stream id read.

    Checkpoint paths inside `data_dir` are stored relative to it.
    """
    store_path = stored_path(data_dir)
    key = job_key(prefix, job_id, "events")
    while True:
        reply = redis.xread({key: after}, count=BATCH)
        entries = reply[0][1] if reply else []
        if not entries:
            return after
        apply_entries(session=session, job_id=job_id, events=[e for _, e in decode_entries(entries)],
                      store_path=store_path, max_attempts=max_attempts)
        after = entries[-1][0]


WATCH_REFRESH_SECONDS = 1.0


class Relay:
    """The background loop; `start()` in the lifespan, `await stop()` on shutdown."""

    def __init__(self, *, db: Database, redis: redis_lib.Redis, prefix: str, interval: float,
                 data_dir: Path | None = None, after_apply: Callable[[Session], Any] | None = None,
                 max_attempts: int = DEFAULT_MAX_ATTEMPTS):
        self.db, self.redis, self.prefix, self.interval = db, redis, prefix, interval
        self.max_attempts = max_attempts
        self.after_apply = after_apply  # e.g. check the registry versions a `succeeded` just registered
        self.store_path = stored_path(data_dir)
        self.cursors: dict[str, str] = {}  # job id -> last stream id relayed
        self._watch: list[str] = []  # jobs whose streams the relay reads, refreshed about once a second
        self._watch_at = 0.0
        self._task: asyncio.Task | None = None
        self._stopping = asyncio.Event()
        self._changed = asyncio.Event()
        self._healthy = True

    def watch_now(self) -> None:
        """Re-list the watched jobs at the next tick (the scheduler just dispatched one: its worker is starting)."""
        self._watch_at = 0.0

    async def wait_for_change(self, timeout: float) -> None:
        """Wake SSE followers as soon as new events are stored (or after `timeout`, whichever first)."""
        try:
            await asyncio.wait_for(self._changed.wait(), timeout=timeout)
        except TimeoutError:
            pass

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()  # followers already woken keep the set one; new waits get a fresh one

    def watched_jobs(self) -> list[str]:
        """Active jobs that have a stream, or soon will: a waiting job has none until a worker starts it, so
        thousands waiting in the queue cost one pipelined EXISTS a second, not an XREAD each per event; a
        dispatched one is read at once (its worker is starting), so its first events are not held back
        until the next refresh."""
        if time.monotonic() - self._watch_at < WATCH_REFRESH_SECONDS:
            return self._watch
        with self.db.session() as session:
            rows = list(session.execute(select(Job.id, Job.status, Job.dispatched_at).where(or_(
                Job.status.in_(ACTIVE_STATUSES), Job.finished_at >= now() - AFTERGLOW_SECONDS))))
        rows = [(job_id, "dispatched" if status == "queued" and dispatched else status)
                for job_id, status, dispatched in rows]
        queued = [job_id for job_id, status in rows if status == "queued"]
        pipe = self.redis.pipeline(transaction=False)
        for job_id in queued:
            pipe.exists(job_key(self.prefix, job_id, "events"))
        started = {job_id for job_id, exists in zip(queued, pipe.execute() if queued else [], strict=True) if exists}
        self._watch = [job_id for job_id, status in rows if status != "queued" or job_id in started]
        self._watch_at = time.monotonic()
        return self._watch

    def tick(self) -> int:
        """One pass over every watched job's stream; returns how many entries were read."""
        active = self.watched_jobs()
        self.cursors = {job_id: self.cursors.get(job_id, "0") for job_id in active}
        if not active:
            return 0
        keys = {job_key(self.prefix, job_id, "events"): job_id for job_id in active}
        # BLOCK: wake the moment a worker writes, instead of at the next poll (step-to-SSE latency).
        reply = self.redis.xread({key: self.cursors[job_id] for key, job_id in keys.items()}, count=BATCH,
                                 block=max(1, int(self.interval * 1000)))
        read = 0
        for key, entries in reply or []:
            job_id = keys[key.decode() if isinstance(key, bytes) else key]
            with self.db.session() as session:
                apply_entries(session=session, job_id=job_id, events=[e for _, e in decode_entries(entries)],
                              store_path=self.store_path, max_attempts=self.max_attempts)
                if self.after_apply is not None:
                    self.after_apply(session)
            self.cursors[job_id] = entries[-1][0]
            read += len(entries)
        return read

    async def run(self) -> None:
        delay = self.interval
        while not self._stopping.is_set():
            try:
                read = await asyncio.to_thread(self.tick)
                if read:
                    self._notify()
                if not self._healthy:
                    log.info("relay: reading job events again")
                self._healthy, delay = True, (0 if read else self.interval)  # XREAD already blocked
            except Exception:  # Redis or the DB away: say so once, retry with backoff
                if self._healthy:
                    log.exception("relay: cannot read job events (retrying)")
                self._healthy, delay = False, min(max(delay * 2, self.interval), 5.0)
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=delay or 0.001)
            except TimeoutError:
                pass

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="studio-relay")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
