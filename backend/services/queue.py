"""The API's side of the queue: send `studio.train` by name, and the job's Redis keys (control, lease).

The backend never imports `worker.tasks`; it has its own Celery client that only sends. Key names follow
the worker's contract (`worker/events.py`): `{prefix}:jobs:{job_id}:{events|seq|control|lease|dispatch}`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import redis
from celery import Celery

from backend.api.errors import APIError
from backend.settings import Settings

TRAIN_TASK = "studio.train"
TRAIN_QUEUE = "gpu"
WEEK = 7 * 24 * 3600  # the workers' visibility timeout; also how long an unread control value lingers
STREAM_MAXLEN = 100_000

# Before sending attempt N (KEYS dispatch, seq, lease; ARGV "{N}:{token}", seq floor, N): publish the token
# the task must claim with, keep the event counter above what the DB stored (a Redis restart resets it),
# and drop a lease an older attempt left behind (it reported its end, or the watcher found it gone).
_PREPARE = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', 604800)
if tonumber(redis.call('GET', KEYS[2]) or '0') < tonumber(ARGV[2]) then redis.call('SET', KEYS[2], ARGV[2]) end
local lease = redis.call('GET', KEYS[3])
if lease then
  local ok, value = pcall(cjson.decode, lease)
  if ok and type(value) == 'table' and tonumber(value['attempt']) and tonumber(value['attempt']) < tonumber(ARGV[3]) then
    redis.call('DEL', KEYS[3])
  end
end
return 1
"""
_FLOOR = "if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end return 1"
# The worker contract's append (worker/events.py `_APPEND`): INCR seq (never below ARGV[3]) + XADD.
_APPEND = """
local seq = redis.call('INCR', KEYS[2])
if seq <= tonumber(ARGV[3]) then
  seq = tonumber(ARGV[3]) + 1
  redis.call('SET', KEYS[2], seq)
end
local event = string.sub(ARGV[1], 1, -2) .. ',"seq":' .. seq .. '}'
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'event', event)
return seq
"""


class QueueUnavailable(APIError):
    """Redis (the broker) could not be reached: 503, the caller may retry."""

    def __init__(self, detail: str):
        super().__init__(503, "The job queue (Redis) could not be reached; retry later.", code="queue_unavailable")
        self.detail = detail


def job_key(prefix: str, job_id: str, kind: str) -> str:
    """`{prefix}:jobs:{job_id}:{kind}`, kind in events | seq | control | lease."""
    return f"{prefix}:jobs:{job_id}:{kind}"


def connect_redis(url: str) -> redis.Redis:
    """A client with text replies and short timeouts (API requests must not hang on a dead Redis)."""
    return redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=3, socket_timeout=10,
                                health_check_interval=15)


def make_celery_client(settings: Settings) -> Celery:
    """A send-only Celery app with the workers' broker settings."""
    transport: dict[str, Any] = {"visibility_timeout": WEEK}
    if settings.broker_prefix:
        transport["global_keyprefix"] = settings.broker_prefix
    client = Celery("studio-api", broker=settings.broker_url, set_as_current=False)
    client.conf.update(broker_transport_options=transport, task_serializer="json", accept_content=["json"],
                       broker_connection_retry_on_startup=False, broker_connection_max_retries=1)
    return client


class JobQueue:
    """Celery client + Redis client for one app; `app.state.queue`."""

    def __init__(self, settings: Settings):
        self.prefix = settings.redis_prefix
        self.redis = connect_redis(settings.broker_url)
        self.celery = make_celery_client(settings)
        self.on_queued: Callable[[], None] | None = None  # the scheduler's wake-up (set when it runs)

    def key(self, job_id: str, kind: str) -> str:
        return job_key(self.prefix, job_id, kind)

    def notify_queued(self) -> None:
        """A job became `queued`: wake the scheduler now rather than at its next tick."""
        if self.on_queued is not None:
            self.on_queued()

    def prepare_dispatch(self, *, job_id: str, attempt: int, dispatch: str, seq_floor: int) -> None:
        """Publish attempt `attempt`'s dispatch token (see `_PREPARE`). Raises `QueueUnavailable`."""
        try:
            self.redis.eval(_PREPARE, 3, self.key(job_id, "dispatch"), self.key(job_id, "seq"),
                            self.key(job_id, "lease"), dispatch, seq_floor, attempt)
        except redis.RedisError as exc:
            raise QueueUnavailable(str(exc)) from exc

    def mark_requeued(self, job_id: str, attempt: int) -> None:
        """`"{attempt}:"` as the dispatch token: no task holds it, and an older attempt may no longer re-take
        its lease (`worker/events.py`, `retake_lease`)."""
        self.redis.set(self.key(job_id, "dispatch"), f"{attempt}:", ex=WEEK)

    def raise_seq_floors(self, floors: dict[str, int]) -> None:
        """Keep each job's event counter at or above the last seq the DB stored (after a Redis restart)."""
        pipe = self.redis.pipeline(transaction=False)
        for job_id, floor in floors.items():
            pipe.eval(_FLOOR, 1, self.key(job_id, "seq"), floor)
        pipe.execute()

    def append_message(self, *, job_id: str, attempt: int, message: str, level: str = "info",
                       data: dict[str, Any] | None = None, seq_floor: int = 0) -> int:
        """Write a `message` event to the job's stream as a worker would (the relay stores it); returns its seq."""
        event = {"type": "message", "level": level, "message": message, "data": data or {},
                 "created_at": int(time.time()), "attempt": attempt}
        return int(self.redis.eval(_APPEND, 2, self.key(job_id, "events"), self.key(job_id, "seq"),
                                   json.dumps(event), STREAM_MAXLEN, seq_floor))

    def send_train(self, *, job_id: str, attempt: int, spec: dict[str, Any], output_dir: str,
                   checkpoint_dir: str, resume_from: str | None = None, dispatch: str | None = None) -> str:
        """Queue one attempt of a job; returns the Celery task id. Raises `QueueUnavailable`."""
        kwargs = {"job_id": job_id, "attempt": attempt, "spec": spec, "output_dir": output_dir,
                  "checkpoint_dir": checkpoint_dir, "resume_from": resume_from, "dispatch": dispatch}
        try:
            result = self.celery.send_task(TRAIN_TASK, kwargs=kwargs, queue=TRAIN_QUEUE,
                                           retry_policy={"max_retries": 2, "interval_start": 0.2,
                                                         "interval_step": 0.5})
        except Exception as exc:  # kombu raises OperationalError and friends when Redis is down
            raise QueueUnavailable(str(exc)) from exc
        return result.id

    def set_control(self, job_id: str, value: str) -> None:
        """Ask the worker to `cancel` or `pause` (it polls this key every step)."""
        try:
            self.redis.set(self.key(job_id, "control"), value, ex=WEEK)
        except redis.RedisError as exc:
            raise QueueUnavailable(str(exc)) from exc

    def clear_control(self, job_id: str) -> None:
        try:
            self.redis.delete(self.key(job_id, "control"))
        except redis.RedisError as exc:
            raise QueueUnavailable(str(exc)) from exc

    def close(self) -> None:
        self.redis.close()
        self.celery.close()


# ---------------------------------------------------------------------------------------------------
# Short calls to the inference workers (estimates, merges)

ESTIMATE_TASK, MERGE_TASK, MODEL_QUEUE = "studio.estimate", "studio.merge", "inference"


def call_worker(queue: JobQueue, task: str, kwargs: dict[str, Any], timeout: float) -> Any:
    """Send `task` to the inference queue and wait for its reply on a Redis list (`reply_to`).

    A plain BLPOP instead of Celery's result backend: thread-safe in the API's worker threads, and the
    reply expires on its own. 503 when no worker answers in time."""
    import json
    import time
    import uuid

    reply_to = f"{queue.prefix}:replies:{uuid.uuid4().hex}"
    try:
        queue.celery.send_task(task, kwargs={**kwargs, "reply_to": reply_to}, queue=MODEL_QUEUE, ignore_result=True,
                               expires=timeout)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            reply = queue.redis.blpop([reply_to], timeout=max(1, min(5, int(left))))
            if reply is not None:
                return json.loads(reply[1])
    except redis.RedisError as exc:
        raise QueueUnavailable(str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 — kombu's connection errors on send
        if isinstance(exc, APIError):
            raise
        raise QueueUnavailable(str(exc)) from exc
    raise APIError(503, f"No inference worker answered within {timeout:g}s; is `studio worker --queues inference` "
                        "running?", code="worker_unavailable")


def send_merge(queue: JobQueue, *, version_id: str, base: str, adapter_dir: str, output_dir: str) -> None:
    kwargs = {"version_id": version_id, "base": base, "adapter_dir": adapter_dir, "output_dir": output_dir}
    try:
        queue.celery.send_task(MERGE_TASK, kwargs=kwargs, queue=MODEL_QUEUE, ignore_result=True)
    except Exception as exc:  # noqa: BLE001
        raise QueueUnavailable(str(exc)) from exc


MERGE_STATE_TTL_SECONDS = 7 * 24 * 3600  # as worker.tasks.MERGE_TTL_SECONDS


def set_merge_state(queue: JobQueue, version_id: str, state: dict[str, Any]) -> None:
    """Record a merge before its task is sent: a record that later disappears means Redis lost the merge."""
    try:
        queue.redis.set(f"{queue.prefix}:merges:{version_id}", json.dumps(state), ex=MERGE_STATE_TTL_SECONDS)
    except redis.RedisError as exc:
        raise QueueUnavailable(str(exc)) from exc


def merge_state(queue: JobQueue, version_id: str) -> dict[str, Any] | None:
    """What the merge task last reported (`worker.tasks.merge_key`), or None when there is no record.
    Raises QueueUnavailable when Redis does not answer (no record and no answer are not the same)."""
    try:
        raw = queue.redis.get(f"{queue.prefix}:merges:{version_id}")
    except redis.RedisError as exc:
        raise QueueUnavailable(str(exc)) from exc
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None
