"""Watch one training subprocess: heartbeat, cancel/pause (cooperative, then a hard kill), exit → status.

The child (`worker.run_job`) writes its own final status; this module writes one only when the child
could not: it was hard-killed after the grace period, died from a signal, or exited without `result.json`.
Signal deaths: a SIGKILL we did not send while the kernel's OOM-kill counter rose → `out_of_memory` (with
`events.OOM_HINT`); any other signal (a `kill -9` by hand included), or exit 12 → `worker_lost`
(re-queueable by the API, with the latest checkpoint).

The lease heartbeat: every `events.lease_heartbeat_seconds()`; a refresh that finds the key gone (a Redis
restart) re-takes it unless a newer attempt was dispatched; a lease someone else holds stops the run.
`STUDIO_TRAINING_MODULE` (default `worker.run_job`) names the module run as the training process — the
queue's load test and benchmark swap in a stub that follows the same contract without loading a model.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import events as ev
from . import registry
from .finetune.reporting import make_event

log = logging.getLogger("studio.control")
POLL_SECONDS = 0.5
KILL_WAIT_SECONDS = 10.0


def stop_grace_seconds() -> float:
    """How long a cancel/pause may take cooperatively before the process group is killed."""
    return float(os.environ.get("STUDIO_STOP_GRACE_SECONDS", "30"))


@dataclass
class Job:
    job_id: str
    attempt: int
    output_dir: Path
    checkpoint_dir: Path
    redis: Any
    lease: str
    prefix: str | None = None
    worker: str | None = None  # the Celery node name, to list the job in the worker registry
    work_dir: Path = field(init=False)
    oom_kills: int | None = field(init=False, default=None)  # the kernel's OOM-kill count at launch

    def __post_init__(self) -> None:
        self.work_dir = self.output_dir.parent  # the job's folder: spec.json, result.json, train-N.log

    def status(self, status: str, *, error: dict | None = None, result: dict | None = None) -> dict[str, Any]:
        ev.emit_status(self.redis, self.job_id, self.attempt, status, error=error, result=result, prefix=self.prefix)
        return {"status": status, "error": error}

    def message(self, text: str, level: str = "info") -> None:
        ev.append_event(self.redis, self.job_id, make_event("message", text, level=level), attempt=self.attempt,
                        prefix=self.prefix)

    def control(self) -> str | None:
        value = self.redis.get(ev.control_key(self.job_id, self.prefix))
        return value if value in ("cancel", "pause") else None


def command(job: Job, spec_file: Path, result_file: Path, redis_url: str, resume_from: str | None) -> list[str]:
    module = os.environ.get("STUDIO_TRAINING_MODULE") or "worker.run_job"
    cmd = [sys.executable, "-m", module, "--job-id", job.job_id, "--attempt", str(job.attempt),
           "--spec-file", str(spec_file), "--output-dir", str(job.output_dir),
           "--checkpoint-dir", str(job.checkpoint_dir), "--redis-url", redis_url,
           "--key-prefix", ev.key_prefix(job.prefix), "--result-file", str(result_file)]
    return cmd + (["--resume-from", str(resume_from)] if resume_from else [])


def _pdeathsig():
    """A pre-exec hook that sends the child SIGUSR1 (→ checkpoint, report `worker_lost`, exit) if the pool
    process dies; Linux only. Not SIGTERM: the kernel sends the parent-death signal again each time the
    child is handed to another dying thread of the worker, and a second SIGTERM means "stop now".

    libc is loaded here, in the parent: between fork and exec the child may only make the one call."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGUSR1)  # 1 = PR_SET_PDEATHSIG


def launch(job: Job, spec: dict, redis_url: str, resume_from: str | None) -> tuple[subprocess.Popen, Path]:
    job.work_dir.mkdir(parents=True, exist_ok=True)
    spec_file, result_file = job.work_dir / "spec.json", job.work_dir / "result.json"
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    result_file.unlink(missing_ok=True)
    package_root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
    output = open(job.work_dir / f"train-{job.attempt}.log", "ab")
    job.oom_kills = oom_kills()
    try:
        child = subprocess.Popen(command(job, spec_file, result_file, redis_url, resume_from), env=env,
                                 stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True, preexec_fn=_pdeathsig())
    finally:
        output.close()
    return child, result_file


def kill_group(child: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(child.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def worker_shutting_down() -> bool:
    from celery.worker import state

    flags = (state.should_stop, state.should_terminate)  # an exit code once set, and EX_OK is 0
    return any(flag is not None and flag is not False for flag in flags)


def supervise(job: Job, spec: dict, redis_url: str, resume_from: str | None = None) -> dict[str, Any]:
    """Run the child to its end; returns `{status, error, exit_code}`."""
    if job.control() == "cancel":  # cancelled while queued: no need to load a model
        job.redis.delete(ev.control_key(job.job_id, job.prefix))
        return job.status("cancelled") | {"exit_code": None}
    job.status("running")
    child, result_file = launch(job, spec, redis_url, resume_from)
    requested, requested_at, killed_for, interrupted = None, 0.0, None, False
    beat, every = time.monotonic(), ev.lease_heartbeat_seconds()
    try:
        while child.poll() is None:
            now = time.monotonic()
            if now - beat >= every:
                beat = now
                if not heartbeat(job):
                    kill_group(child)  # someone else owns the job now: never run it twice
                    child.wait()
                    job.message("Lease lost (heartbeat missed); this attempt stopped", level="warn")
                    return {"status": "lease_lost", "error": None, "exit_code": child.returncode}
            if requested is None and (requested := job.control()):
                requested_at = now
            if requested and killed_for is None and now - requested_at > stop_grace_seconds():
                job.message(f"No {requested} within {stop_grace_seconds():g}s; killing the training process",
                            level="warn")
                killed_for = requested
                kill_group(child)
            if not interrupted and worker_shutting_down():
                interrupted = True
                child.send_signal(signal.SIGTERM)  # pause at the next step, then exit 12
            try:
                child.wait(POLL_SECONDS)  # returns the moment the child exits (a sleep would add up to 0.5 s)
            except subprocess.TimeoutExpired:
                pass
    finally:
        if child.poll() is None:  # the task itself is dying: do not leave an orphan training
            kill_group(child)
            child.wait(KILL_WAIT_SECONDS)
        kill_group(child)  # anything the child left in its group
    code = child.returncode
    outcome = read_result(result_file, job.attempt)
    if outcome is not None:
        return {"status": outcome["status"], "error": outcome["error"], "exit_code": code}
    status, error, result = exit_status(code, killed_for, job)
    if status in ("paused", "cancelled"):
        job.redis.delete(ev.control_key(job.job_id, job.prefix))
    return job.status(status, error=error, result=result) | {"exit_code": code}


def heartbeat(job: Job) -> bool:
    """Refresh the lease (re-take it if Redis lost it) and the registry's listing; False: the lease is lost."""
    if not ev.refresh_lease(job.redis, job.job_id, job.lease, prefix=job.prefix):
        if not ev.retake_lease(job.redis, job.job_id, job.lease, job.attempt, prefix=job.prefix):
            return False
        log.warning("job %s: the lease key vanished (a Redis restart?); re-took it", job.job_id)
    if job.worker:
        registry.job_started(job.redis, job.worker, job.job_id, job.attempt, prefix=job.prefix)
    return True


def oom_kills() -> int | None:
    """How many processes the kernel's OOM killer has killed: this cgroup's count (v2, then v1), else the
    machine's (`/proc/vmstat`); None where none can be read."""
    groups = {}
    for line in _lines("/proc/self/cgroup"):  # "0::/path" (v2), "4:memory:/path" (v1)
        _id, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        for name in controllers.split(",") or [""]:
            groups.setdefault(name, path.strip().lstrip("/"))
    candidates = []
    if "" in groups:
        candidates.append(Path("/sys/fs/cgroup") / groups[""] / "memory.events")
    if "memory" in groups:
        candidates.append(Path("/sys/fs/cgroup/memory") / groups["memory"] / "memory.oom_control")
    candidates.append(Path("/proc/vmstat"))
    for path in candidates:
        for line in _lines(path):
            name, _, value = line.partition(" ")
            if name == "oom_kill" and value.strip().isdigit():
                return int(value)
    return None


def _lines(path: str | Path) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def read_result(path: Path, attempt: int) -> dict | None:
    try:
        outcome = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return outcome if outcome.get("attempt") == attempt else None


def latest_checkpoint(checkpoint_dir: Path) -> tuple[str | None, int | None]:
    """The newest complete `checkpoint-N` (Trainer writes trainer_state.json last)."""
    done = [p for p in checkpoint_dir.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    steps = [(int(p.name.rsplit("-", 1)[1]), p) for p in done if p.name.rsplit("-", 1)[1].isdigit()]
    if not steps:
        return None, None
    step, path = max(steps)
    return str(path), step


def exit_status(code: int, killed_for: str | None, job: Job) -> tuple[str, dict | None, dict | None]:
    """Status for a child that did not report one itself (see the module docstring)."""
    checkpoint, step = latest_checkpoint(job.checkpoint_dir)
    resume = {"checkpoint": checkpoint, "global_step": step}
    if killed_for == "cancel" or code == 11:
        return "cancelled", None, None
    if killed_for == "pause" or code == 10:
        return "paused", None, resume
    if code == 3 or (code == -signal.SIGKILL and killed_by_oom(job)):
        message = f"the training process was killed (out of memory). {ev.OOM_HINT}"
        return "failed", _error("out_of_memory", message, job, log_line=False), resume
    if code < 0 or code == 12:
        why = f"signal {-code}" if code < 0 else "a worker shutdown"
        if code == -signal.SIGKILL and job.oom_kills is None:
            why += " (if this repeats, it may be running out of memory)"
        return "failed", _error("worker_lost", f"the training process stopped on {why}", job), resume
    return "failed", _error("training_error", f"the training process exited with code {code}", job), None


def killed_by_oom(job: Job) -> bool:
    """Did the OOM-kill count rise while the child ran? (False when it cannot be read.)"""
    after = oom_kills()
    return job.oom_kills is not None and after is not None and after > job.oom_kills


def _error(code: str, message: str, job: Job, log_line: bool = True) -> dict[str, str]:
    last = _last_log_line(job.work_dir / f"train-{job.attempt}.log") if log_line else None
    return {"code": code, "message": f"{message}: {last}" if last else message}


def _last_log_line(path: Path, tail: int = 4096) -> str | None:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - tail))
            lines = [ln.strip() for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return None
    return lines[-1][:300] if lines else None
