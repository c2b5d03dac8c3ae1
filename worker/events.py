"""The queue contract between workers and the API: Redis keys, event shapes, exit codes.

Workers talk only to Redis (and storage); the API persists what they write. Everything below is the
contract the API side is built against, so change it in both places or not at all.

Keys (prefix `STUDIO_REDIS_PREFIX`, default `studio`):

- `{prefix}:jobs:{job_id}:events` — a Redis Stream, one entry per event (XADD, `MAXLEN ~ 100000`), one
  field `event` = JSON of the event dict. Entry ids are the API's cursor (`after`, `Last-Event-ID`).
- `{prefix}:jobs:{job_id}:seq` — INCR counter; every event carries `"seq"`, unique and increasing per job
  across attempts and writers (INCR + XADD happen in one Lua script, so stream order == seq order). Each
  writing process remembers the last seq it got and never takes a lower one (a Redis restart without
  persistence resets the counter; the API also raises it to the last seq it stored before a dispatch).
- `{prefix}:jobs:{job_id}:control` — the API SETs `cancel` or `pause`; the worker polls it (the training
  process at most every 0.25 s, the task every 0.5 s). The worker DELetes it once it has acted on it
  (status `paused` or `cancelled`); the API should also DEL it before sending a resume.
- `{prefix}:jobs:{job_id}:dispatch` — `"{attempt}:{token}"`, SET by the API's scheduler just before it sends
  the task with `dispatch="{attempt}:{token}"`. The task claims the job atomically (`claim_lease`, one Lua
  script): the value must still equal its `dispatch` (else the message is stale — a redelivery, or a
  dispatch the API has since replaced — and it is refused with `stale_dispatch`); the dispatch key is then
  DELeted and the lease SET NX (or the task refuses with `lease_held`), so one dispatch runs at most once,
  ever. Tasks sent
  without `dispatch` (the core's own tests) skip the token check. When the API re-queues a lost job it SETs
  `"{new attempt}:"` here (a token no task holds), which also stops the old attempt from re-taking its lease.
- `{prefix}:jobs:{job_id}:lease` — SET NX, TTL `STUDIO_LEASE_TTL_SECONDS` (30 s), value JSON `{"worker",
  "attempt", "task_id", "since"}`; refreshed every TTL/6 (≤ 5 s, the heartbeat) only while the value is
  still ours; deleted on exit. A task that cannot take it refuses to run ("a job runs at most once at a
  time"): it writes one `warn` message event (with its own attempt number, no status) and returns
  `{"status": "skipped", "error": {"code": "lease_held"}}`. When a refresh finds the key *gone* (a Redis
  restart without persistence) the task re-takes it (`retake_lease`) unless the dispatch key names a newer
  attempt; when someone else holds it, or a newer attempt was dispatched, the task kills its training
  process and writes a `warn` message, no status. The key vanishing while the DB says `running` (and no
  live worker listing the job in the registry) means the worker died: the API re-queues with `attempt + 1`
  from the last checkpoint.
- `{prefix}:workers:{name}` and the sorted sets `{prefix}:workers`, `{prefix}:{queue}:workers` — the worker
  registry (`worker/registry.py`): each worker's JSON `{name, hostname, pid, queues, slots, gpus, jobs,
  started_at, heartbeat_at}` (TTL 3 heartbeats) and its name scored with Redis' clock at every heartbeat.

Events (every one): `{type, level, message, data, created_at, attempt, seq}`; `created_at` is Unix seconds.

- `message` — `data` free-form (e.g. `plan`, `trainable_params`); level `info` | `warn` | `error`.
- `metrics` — `data`: `step, total_steps, train_loss, valid_loss, learning_rate, grad_norm,
  tokens_per_second, epoch` (+ `gpu_memory_bytes` on GPU).
- `checkpoint` — `data`: `{step_number, path, metrics}`.
- `status` — written by the worker: `data = {"status": running|succeeded|failed|cancelled|paused,
  "error": {"code", "message"} | null, "result": {...} | null}`. `result` is `TrainResult.to_dict()` (plan,
  params, trained_tokens, global_step, metrics, `checkpoint` when paused, `output_dir`); a hard-killed run
  has `{"checkpoint", "global_step"}` only. Exactly one terminal status per attempt is intended; should a
  second ever appear (a crash between writing it and recording that), the first one wins.

Error codes in a `failed` status: `invalid_training_file`, `invalid_spec`, `invalid_model`,
`invalid_tuning`, `out_of_memory` (the message ends with `OOM_HINT`), `training_error`, `worker_lost` (the
worker shut down or the training process died from a signal the kernel's OOM killer did not send;
`result.checkpoint`, when set, is where a re-queued attempt resumes). The API re-queues `worker_lost` (up to
`STUDIO_MAX_JOB_ATTEMPTS` runs); every other code is final.

Files: the task writes `spec.json`, `train-{attempt}.log` (the training process's stdout/stderr) and
reads `result.json` in the parent folder of `output_dir`, so give each job its own folder
(e.g. `$STUDIO_DATA_DIR/jobs/{job_id}/{output,checkpoints}`).

Exit codes of the training process (`python -m worker.run_job`) — see `worker/run_job.py`:
0 succeeded, 10 paused, 11 cancelled, 12 interrupted (SIGTERM: checkpoint saved, status `failed` /
`worker_lost`), 2 invalid input, 3 out of memory, 1 anything else.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

from .finetune.reporting import make_event  # torch-free: the core's one event shape

DEFAULT_PREFIX = "studio"
STREAM_MAXLEN = 100_000
LEASE_TTL_SECONDS = 30  # default of STUDIO_LEASE_TTL_SECONDS
TERMINAL_STATUSES = ("succeeded", "failed", "cancelled", "paused")
OOM_HINT = ("Try a smaller batch size (method.<type>.hyperparameters.batch_size) or max_seq_length, "
            "training.gradient_checkpointing=true, or QLoRA (tuning.type=qlora).")

# INCR the job's counter and append the event with that seq atomically: two writers (task + training
# process) can never interleave so that stream order and seq order disagree. ARGV[3] is the writer's last
# seq: after a Redis restart reset the counter, numbering continues above it instead of from 1.
_APPEND = """
local seq = redis.call('INCR', KEYS[2])
if seq <= tonumber(ARGV[3]) then
  seq = tonumber(ARGV[3]) + 1
  redis.call('SET', KEYS[2], seq)
end
local event = string.sub(ARGV[1], 1, -2) .. ',"seq":' .. seq .. '}'
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'event', event)
return {seq, id}
"""
# Refresh / release the lease only while it is still ours.
_REFRESH = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
# Claim a dispatched job: KEYS dispatch, lease; ARGV token ('' = no check), lease value, TTL ms.
_CLAIM = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'stale' end
if ARGV[1] ~= '' then redis.call('DEL', KEYS[1]) end
if not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return 'held' end
return 'claimed'
"""
# Re-take a lease whose key vanished: KEYS lease, dispatch; ARGV value, TTL ms, our attempt.
_RETAKE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local d = redis.call('GET', KEYS[2])
if d then
  local a = tonumber(string.match(d, '^(%d+):'))
  if a == nil or a > tonumber(ARGV[3]) then return 0 end
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
_last_seq: dict[str, int] = {}  # seq key -> the last seq this process got (the floor after a Redis reset)


def key_prefix(prefix: str | None = None) -> str:
    return prefix or os.environ.get("STUDIO_REDIS_PREFIX") or DEFAULT_PREFIX


def job_key(job_id: str, kind: str, prefix: str | None = None) -> str:
    """`{prefix}:jobs:{job_id}:{kind}` with kind in events | seq | control | lease."""
    return f"{key_prefix(prefix)}:jobs:{job_id}:{kind}"


def events_key(job_id: str, prefix: str | None = None) -> str:
    return job_key(job_id, "events", prefix)


def control_key(job_id: str, prefix: str | None = None) -> str:
    return job_key(job_id, "control", prefix)


def lease_key(job_id: str, prefix: str | None = None) -> str:
    return job_key(job_id, "lease", prefix)


def dispatch_key(job_id: str, prefix: str | None = None) -> str:
    return job_key(job_id, "dispatch", prefix)


def lease_ttl_seconds() -> float:
    """`STUDIO_LEASE_TTL_SECONDS` (30): how long a lease outlives its last heartbeat."""
    return float(os.environ.get("STUDIO_LEASE_TTL_SECONDS") or LEASE_TTL_SECONDS)


def lease_heartbeat_seconds() -> float:
    """How often a running task refreshes its lease: a sixth of the TTL, at most 5 s."""
    return min(5.0, lease_ttl_seconds() / 6)


def connect(url: str):
    """A redis-py client that rides out a short Redis restart instead of failing the run."""
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(url, decode_responses=True, health_check_interval=15,
                                retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), 8),
                                retry_on_error=[redis.ConnectionError, redis.TimeoutError])


def _finite(value: Any) -> Any:
    """NaN/inf become null: the stream is read by browsers, and JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def append_event(redis, job_id: str, event: dict[str, Any], *, attempt: int,
                 prefix: str | None = None) -> tuple[int, str]:
    """XADD one event (with `attempt` and a fresh `seq`); returns (seq, stream id)."""
    body = {k: v for k, v in event.items() if k != "seq"}
    body["attempt"] = attempt
    text = json.dumps(_finite(body), default=str)
    seq_key = job_key(job_id, "seq", prefix)
    seq, entry_id = redis.eval(_APPEND, 2, events_key(job_id, prefix), seq_key, text, STREAM_MAXLEN,
                               _last_seq.get(seq_key, 0))
    _last_seq[seq_key] = int(seq)
    return int(seq), entry_id.decode() if isinstance(entry_id, bytes) else entry_id


class RedisStreamReporter:
    """The core's `Reporter` for workers: every event goes to the job's stream."""

    def __init__(self, redis, job_id: str, attempt: int, prefix: str | None = None):
        self.redis, self.job_id, self.attempt, self.prefix = redis, job_id, attempt, prefix

    def report(self, event: dict[str, Any]) -> None:
        append_event(self.redis, self.job_id, event, attempt=self.attempt, prefix=self.prefix)


def emit_status(redis, job_id: str, attempt: int, status: str, *, error: dict[str, str] | None = None,
                result: dict[str, Any] | None = None, message: str | None = None,
                prefix: str | None = None) -> tuple[int, str]:
    """Append a `status` event; `error` is `{"code", "message"}` for `failed`."""
    if message is None:
        message = f"Job {status}" + (f": {error['message']}" if error else "")
    event = make_event("status", message, {"status": status, "error": error, "result": result},
                       level="error" if status == "failed" else "info")
    return append_event(redis, job_id, event, attempt=attempt, prefix=prefix)


def read_events(redis, job_id: str, after_id: str = "0-0", *, count: int | None = None,
                block_ms: int | None = None, prefix: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Events strictly after `after_id`, oldest first, as (stream id, event); `block_ms` waits for new ones."""
    reply = redis.xread({events_key(job_id, prefix): after_id}, count=count, block=block_ms)
    out = []
    for _stream, entries in reply or []:
        for entry_id, fields in entries:
            raw = fields.get("event", fields.get(b"event"))
            out.append((entry_id.decode() if isinstance(entry_id, bytes) else entry_id, json.loads(raw)))
    return out


# ---------------------------------------------------------------------------------------------------
# The lease (used by the task; here so the API and tests read the same definition)


def acquire_lease(redis, job_id: str, value: str, *, ttl: float | None = None, prefix: str | None = None) -> bool:
    return bool(redis.set(lease_key(job_id, prefix), value, nx=True, px=int((ttl or lease_ttl_seconds()) * 1000)))


def claim_lease(redis, job_id: str, value: str, dispatch: str | None, *, ttl: float | None = None,
                prefix: str | None = None) -> str:
    """`claimed` | `held` (someone holds the lease) | `stale` (`dispatch` is no longer the job's token)."""
    ttl_ms = int((ttl or lease_ttl_seconds()) * 1000)
    result = redis.eval(_CLAIM, 2, dispatch_key(job_id, prefix), lease_key(job_id, prefix), dispatch or "",
                        value, ttl_ms)
    return result.decode() if isinstance(result, bytes) else result


def refresh_lease(redis, job_id: str, value: str, *, ttl: float | None = None, prefix: str | None = None) -> bool:
    return bool(redis.eval(_REFRESH, 1, lease_key(job_id, prefix), value, int((ttl or lease_ttl_seconds()) * 1000)))


def retake_lease(redis, job_id: str, value: str, attempt: int, *, ttl: float | None = None,
                 prefix: str | None = None) -> bool:
    """Take the lease back after its key vanished (a Redis restart), unless a newer attempt was dispatched."""
    ttl_ms = int((ttl or lease_ttl_seconds()) * 1000)
    return bool(redis.eval(_RETAKE, 2, lease_key(job_id, prefix), dispatch_key(job_id, prefix), value, ttl_ms,
                           attempt))


def release_lease(redis, job_id: str, value: str, *, prefix: str | None = None) -> bool:
    return bool(redis.eval(_RELEASE, 1, lease_key(job_id, prefix), value))
