"""The worker registry: every worker announces itself in Redis, with its queues, GPUs and current jobs.

One heartbeat thread per worker process (started on Celery's `worker_ready`, stopped on `worker_shutdown`)
writes, every `STUDIO_WORKER_HEARTBEAT_SECONDS` (5 s):

- `{prefix}:workers:{name}` — JSON `{name, hostname, pid, queues, slots, gpus, started_at, heartbeat_at}`
  with a TTL of three heartbeats, so a dead worker drops out on its own;
- `{prefix}:workers` and `{prefix}:{queue}:workers` (one per consumed queue) — sorted sets scoring the
  worker's name with Redis' clock; entries older than a minute are pruned. The API's inference endpoints
  read `{prefix}:inference:workers`; the scheduler and `GET /v1/workers` read the rest.

`{prefix}:workers:{name}:jobs` — a hash `job id -> attempt` of the training jobs running on the worker,
written by the task itself (so it is right with any pool), expiring with the worker's entry.

Celery's ping is no liveness test here: a solo worker busy training or generating does not answer it.
`gpus` is `[{index, name, memory_bytes}]` (empty on a CPU machine), found without touching CUDA in the
worker process (CUDA is not fork-safe): a short `python -c` asks torch, only where an NVIDIA driver exists.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from celery.signals import worker_ready, worker_shutdown

from . import events as ev

log = logging.getLogger("studio.registry")
PRUNE_SECONDS = 60
_state: dict[str, Any] = {}


def heartbeat_seconds() -> float:
    return float(os.environ.get("STUDIO_WORKER_HEARTBEAT_SECONDS") or 5)


def workers_key(prefix: str | None = None) -> str:
    return f"{ev.key_prefix(prefix)}:workers"


def queue_workers_key(queue: str, prefix: str | None = None) -> str:
    return f"{ev.key_prefix(prefix)}:{queue}:workers"


def info_key(name: str, prefix: str | None = None) -> str:
    return f"{ev.key_prefix(prefix)}:workers:{name}"


def jobs_key(name: str, prefix: str | None = None) -> str:
    return f"{info_key(name, prefix)}:jobs"


# ---------------------------------------------------------------------------------------------------
# What a task calls


def job_started(redis, worker: str, job_id: str, attempt: int, prefix: str | None = None) -> None:
    """The task claimed `job_id`: list it under the worker until `job_finished`."""
    key = jobs_key(worker, prefix)
    redis.pipeline(transaction=False).hset(key, job_id, attempt).expire(key, int(3 * heartbeat_seconds()) + 1).execute()


def job_finished(redis, worker: str, job_id: str, prefix: str | None = None) -> None:
    try:
        redis.hdel(jobs_key(worker, prefix), job_id)
    except Exception as exc:  # noqa: BLE001 — Redis away: the key expires with the worker's entry
        log.warning("could not unlist job %s: %s", job_id, exc)


# ---------------------------------------------------------------------------------------------------
# GPUs


def _nvidia_present() -> bool:
    return Path("/proc/driver/nvidia/gpus").is_dir() or any(Path("/dev").glob("nvidia[0-9]*"))


_PROBE = """import json, torch
out = []
if torch.cuda.is_available():
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        out.append({"index": i, "name": p.name, "memory_bytes": int(p.total_memory)})
print(json.dumps(out))"""


def detect_gpus(timeout: float = 120.0) -> list[dict[str, Any]]:
    """The GPUs this worker may use (`CUDA_VISIBLE_DEVICES` respected); [] on a CPU machine.

    `index` is the physical index when `CUDA_VISIBLE_DEVICES` lists numbers, else torch's."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if not _nvidia_present() or (visible is not None and visible.strip() in ("", "-1")):
        return []
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=timeout)
        gpus = json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, OSError, ValueError, IndexError):
        log.warning("could not list the GPUs through torch; reading /proc/driver/nvidia")
        gpus = _proc_gpus()
    if not gpus and (found := _proc_gpus()):  # a driver but no CUDA torch (a CPU build): say what is there
        log.warning("an NVIDIA driver lists %d GPU(s) but torch sees none (a CPU build of torch?)", len(found))
        gpus = found
    ids = [v.strip() for v in (visible or "").split(",") if v.strip()]
    if ids and all(v.isdigit() for v in ids):
        for gpu in gpus:
            if gpu["index"] < len(ids):
                gpu["index"] = int(ids[gpu["index"]])
    return gpus


def _proc_gpus() -> list[dict[str, Any]]:
    gpus = []
    for i, folder in enumerate(sorted(Path("/proc/driver/nvidia/gpus").glob("*"))):
        try:
            info = dict(line.split(":", 1) for line in (folder / "information").read_text().splitlines() if ":" in line)
        except OSError:
            continue
        gpus.append({"index": i, "name": info.get("Model", "").strip() or "NVIDIA GPU", "memory_bytes": None})
    return gpus


# ---------------------------------------------------------------------------------------------------
# The heartbeat


class Heartbeat:
    """Announce one worker every `interval` seconds until `stop()` (which unlists it)."""

    def __init__(self, redis, *, name: str, queues: list[str], slots: int, prefix: str | None = None,
                 interval: float | None = None, gpus: list[dict[str, Any]] | None = None):
        self.redis, self.name, self.queues, self.slots, self.prefix = redis, name, sorted(queues), slots, prefix
        self.interval = interval or heartbeat_seconds()
        self.gpus = gpus  # None until detected
        self.started_at = int(time.time())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "hostname": socket.gethostname(), "pid": os.getpid(), "queues": self.queues,
                "slots": self.slots, "gpus": self.gpus, "started_at": self.started_at,
                "heartbeat_at": int(time.time())}

    def beat(self) -> None:
        now = int(self.redis.time()[0])
        ttl = int(3 * self.interval) + 1
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(info_key(self.name, self.prefix), json.dumps(self.info()), ex=ttl)
        pipe.expire(jobs_key(self.name, self.prefix), ttl)
        for key in [workers_key(self.prefix)] + [queue_workers_key(q, self.prefix) for q in self.queues]:
            pipe.zadd(key, {self.name: now}).zremrangebyscore(key, "-inf", now - PRUNE_SECONDS)
        pipe.execute()

    def _run(self) -> None:
        if self.gpus is None:
            self._safe_beat()  # announce at once; GPUs follow (torch takes seconds to import)
            self.gpus = detect_gpus()
        while True:
            self._safe_beat()
            if self._stop.wait(self.interval):
                return

    def _safe_beat(self) -> None:
        try:
            self.beat()
        except Exception as exc:  # noqa: BLE001 — Redis restarting: the next beat tries again
            log.warning("worker heartbeat failed: %s", exc)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="studio-worker-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.delete(info_key(self.name, self.prefix), jobs_key(self.name, self.prefix))
            for key in [workers_key(self.prefix)] + [queue_workers_key(q, self.prefix) for q in self.queues]:
                pipe.zrem(key, self.name)
            pipe.execute()
        except Exception:  # noqa: BLE001
            log.warning("could not unlist worker %s", self.name, exc_info=True)


@worker_ready.connect
def _start(sender=None, **_kwargs) -> None:
    queues = list(sender.app.amqp.queues.consume_from or {})
    slots = int(getattr(getattr(sender, "controller", None), "concurrency", None) or 1)
    heartbeat = Heartbeat(ev.connect(sender.app.conf.broker_url), name=sender.hostname, queues=queues, slots=slots)
    heartbeat.start()
    _state["heartbeat"] = heartbeat


@worker_shutdown.connect
def _stop(**_kwargs) -> None:
    heartbeat = _state.pop("heartbeat", None)
    if heartbeat is not None:
        heartbeat.stop()
        heartbeat.redis.close()
