"""Job events and checkpoints: persist what workers emit (idempotently), fold it into the job row, list it.

Events arrive from the job's Redis Stream (see `services/relay.py`) as the worker contract's dicts
`{type, level, message, data, created_at, attempt, seq}`. `seq` is unique per job, so persisting is
`INSERT … ON CONFLICT (job_id, seq) DO NOTHING` and re-reading a stream changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from backend.db.ids import event_id, new_id
from backend.db.models import Checkpoint, Job, JobEvent, now
from backend.schemas.jobs import TERMINAL_STATUSES, CheckpointObject, JobEventObject
from backend.services import registry
from backend.services.jobs import fine_tuned_model_name
from backend.services.public_paths import public_text, without_server_paths
from backend.services.scheduler import DEFAULT_MAX_ATTEMPTS, REQUEUED_CODES, requeue_or_fail
from worker import lifecycle
from worker.finetune.spec import parse_spec

EVENT_TYPES = ("message", "metrics", "checkpoint", "status")
LEVELS = ("info", "warn", "error")


def _insert(session: Session, model):
    return (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(model)


# ---------------------------------------------------------------------------------------------------
# Persisting


def stored_path(data_dir: Path | None) -> Callable[[str], str]:
    """How a worker's absolute path is stored: relative to the data dir when inside it, else as given."""
    def store(path: str) -> str:
        if data_dir is None:
            return path
        try:
            return str(Path(path).resolve().relative_to(Path(data_dir).resolve()))
        except ValueError:
            return path
    return store


def persist_event(*, session: Session, job_id: str, event: dict[str, Any]) -> bool:
    """Insert one event unless (job, seq) — or, for metrics, (job, attempt, step, series) — is already
    stored; True when it was new."""
    seq = int(event["seq"])
    kind = event.get("type") if event.get("type") in EVENT_TYPES else "message"
    level = event.get("level") if event.get("level") in LEVELS else "info"
    data = event.get("data") if isinstance(event.get("data"), dict) else None
    attempt = event.get("attempt") if isinstance(event.get("attempt"), int) else None
    values = dict(id=event_id(job_id, seq), job_id=job_id, seq=seq, created_at=_timestamp(event), level=level,
                  type=kind, message=str(event.get("message") or _default_message(kind, data)), data=data,
                  attempt=attempt, metric_key=metric_key(kind, attempt, data))
    result = session.execute(_insert(session, JobEvent).values(**values).on_conflict_do_nothing())
    return bool(result.rowcount)


def metric_key(kind: str, attempt: int | None, data: dict[str, Any] | None) -> str | None:
    """`{attempt}:{step}:train|valid` for a metrics event with a step: one point per series, step and attempt
    (a training log and an evaluation at the same step are two points)."""
    if kind != "metrics" or not data or not isinstance(data.get("step"), int):
        return None
    series = "train" if data.get("train_loss") is not None or data.get("valid_loss") is None else "valid"
    return f"{attempt or 0}:{data['step']}:{series}"


def save_checkpoint(*, session: Session, job_id: str, step_number: int, path: str,
                    metrics: dict[str, Any] | None, created_at: int) -> None:
    """Upsert on (job, step): a resumed attempt that saves the same step again replaces the path."""
    stmt = _insert(session, Checkpoint).values(id=new_id("ftckpt"), job_id=job_id, step_number=step_number,
                                               path=path, metrics=metrics, created_at=created_at)
    session.execute(stmt.on_conflict_do_update(index_elements=["job_id", "step_number"],
                                               set_={"path": path, "metrics": metrics}))


def _timestamp(event: dict[str, Any]) -> int:
    try:
        return int(float(event.get("created_at")))
    except (TypeError, ValueError):
        return now()


def _default_message(kind: str, data: dict[str, Any] | None) -> str:
    data = data or {}
    if kind == "metrics":
        loss = data.get("train_loss")
        return f"Step {data.get('step')}/{data.get('total_steps')}" + (
            f": training loss={loss:.4f}" if isinstance(loss, (int, float)) else "")
    if kind == "checkpoint":
        return f"Checkpoint saved at step {data.get('step_number')}"
    if kind == "status":
        return f"Job {data.get('status')}"
    return ""


# ---------------------------------------------------------------------------------------------------
# Folding events into the job row


def apply_event(*, session: Session, job: Job, event: dict[str, Any], store_path=lambda p: p,
                max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> None:
    """Update the job from one new event. Events of an older attempt are kept but change nothing."""
    if int(event.get("attempt") or job.attempt) < job.attempt:
        return
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    kind = event.get("type")
    if kind == "metrics" and job.status not in TERMINAL_STATUSES:
        if isinstance(data.get("step"), int):
            job.progress_step = data["step"]
        if isinstance(data.get("total_steps"), int):
            job.progress_total = data["total_steps"]
    elif kind == "checkpoint" and data.get("path") and isinstance(data.get("step_number"), int):
        save_checkpoint(session=session, job_id=job.id, step_number=data["step_number"],
                        path=store_path(str(data["path"])), metrics=data.get("metrics"), created_at=_timestamp(event))
    elif kind == "status":
        _apply_status(session=session, job=job, data=data, at=_timestamp(event), store_path=store_path,
                      max_attempts=max_attempts)


def _apply_status(*, session: Session, job: Job, data: dict[str, Any], at: int, store_path,
                  max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> None:
    status = data.get("status")
    result = data.get("result") if isinstance(data.get("result"), dict) else {}
    if result.get("checkpoint") and isinstance(result.get("global_step"), int):
        save_checkpoint(session=session, job_id=job.id, step_number=result["global_step"],
                        path=store_path(str(result["checkpoint"])), metrics=result.get("metrics") or None,
                        created_at=at)
    # The worker's status events are the lifecycle table's worker events (worker/lifecycle.py); a pair the
    # table refuses changes no status. Terminal states have no way out: the first terminal status wins and
    # the API's cancel is final.
    if job.status in lifecycle.TERMINAL:
        return
    if status == "running":
        job.status = lifecycle.next_state(job.status, "start") or job.status  # a repeated start changes nothing
        job.started_at = job.started_at or at
    elif status == "succeeded":
        job.status, job.finished_at, job.eta_seconds = lifecycle.next_state(job.status, "succeeded"), at, None
        _apply_result(job, result)
        registry.register_job_version(session=session, job=job, method=parse_spec(job.spec).tuning.type,
                                      store_path=store_path)
    elif status == "failed":
        error = data.get("error") if isinstance(data.get("error"), dict) else {}
        if error.get("code") in REQUEUED_CODES:  # the run was lost, not the job: run it again from its checkpoint
            requeue_or_fail(session=session, job=job, max_attempts=max_attempts,
                            reason=str(error.get("message") or "The worker was lost."))
            return
        job.status, job.finished_at, job.eta_seconds = lifecycle.next_state(job.status, "failed"), at, None
        job.error = {"code": str(error.get("code") or "training_error"),
                     "message": str(error.get("message") or "The job failed."), "param": error.get("param")}
    elif status == "cancelled":
        job.status, job.finished_at, job.eta_seconds = lifecycle.next_state(job.status, "cancelled"), at, None
    elif status == "paused":
        # A cancel that arrived while the worker was pausing wins (the table: cancelling + paused → cancelled).
        job.status = lifecycle.next_state(job.status, "paused")
        job.eta_seconds = None
        job.finished_at = at if job.status in lifecycle.TERMINAL else None
        if isinstance(result.get("global_step"), int):
            job.progress_step = result["global_step"]


def _apply_result(job: Job, result: dict[str, Any]) -> None:
    plan = result.get("plan") if isinstance(result.get("plan"), dict) else {}
    for attr in ("trained_tokens", "trainable_params", "total_params"):
        if isinstance(result.get(attr), int):
            setattr(job, attr, result[attr])
    if isinstance(result.get("global_step"), int):
        job.progress_step = result["global_step"]
    spec = parse_spec(job.spec)
    requested = spec.method.hyperparameters.model_dump()
    resolved = {**requested, **{k: plan[k] for k in ("n_epochs", "batch_size", "learning_rate", "beta")
                                if plan.get(k) is not None}}
    if resolved.get("learning_rate_multiplier") == "auto":
        resolved["learning_rate_multiplier"] = None  # the plan resolves a learning rate, not a multiplier
    job.hyperparameters = resolved
    if job.seed is None and isinstance(plan.get("seed"), int):
        job.seed = plan["seed"]
    job.fine_tuned_model = fine_tuned_model_name(job, spec)


def update_eta(*, session: Session, job: Job) -> None:
    """ETA from the rate of the current run: steps and seconds since its first metrics event."""
    if job.status != "running":
        job.eta_seconds = None
        return
    if not job.progress_total:
        return
    statuses = session.scalars(select(JobEvent).where(JobEvent.job_id == job.id, JobEvent.type == "status")
                               .order_by(JobEvent.seq.desc()))
    run_seq = next((e.seq for e in statuses if (e.data or {}).get("status") == "running"), 0)
    metrics = select(JobEvent).where(JobEvent.job_id == job.id, JobEvent.type == "metrics", JobEvent.seq > run_seq)
    first = session.scalars(metrics.order_by(JobEvent.seq).limit(1)).first()
    last = session.scalars(metrics.order_by(JobEvent.seq.desc()).limit(1)).first()
    if first is None or last is None:
        return
    steps = (last.data or {}).get("step", 0) - (first.data or {}).get("step", 0)
    seconds = last.created_at - first.created_at
    if steps > 0 and seconds > 0:
        job.eta_seconds = round(max(job.progress_total - job.progress_step, 0) * seconds / steps, 1)


# ---------------------------------------------------------------------------------------------------
# Reading


def event_public(row: JobEvent) -> JobEventObject:
    """The wire shape; server paths in the message and data become studio names (`public_paths`)."""
    return JobEventObject(id=row.id, created_at=row.created_at, level=row.level, message=public_text(row.message),
                          type=row.type, data=without_server_paths(row.data), attempt=row.attempt)


def list_events(*, session: Session, job_id: str, after_seq: int = 0, limit: int = 20) -> tuple[list[JobEvent], bool]:
    """Oldest first, after the event with seq `after_seq`."""
    rows = list(session.scalars(select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.seq > after_seq)
                                .order_by(JobEvent.seq).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def checkpoint_public(row: Checkpoint, job: Job) -> CheckpointObject:
    name = job.fine_tuned_model or fine_tuned_model_name(job, parse_spec(job.spec))
    return CheckpointObject(id=row.id, created_at=row.created_at, step_number=row.step_number, metrics=row.metrics,
                            fine_tuning_job_id=row.job_id, fine_tuned_model_checkpoint=f"{name}:ckpt-step-{row.step_number}")


def list_checkpoints(*, session: Session, job_id: str, after: str | None = None,
                     limit: int = 10) -> tuple[list[Checkpoint], bool]:
    """Latest step first; `after` is the last checkpoint id of the previous page."""
    query = select(Checkpoint).where(Checkpoint.job_id == job_id).order_by(Checkpoint.step_number.desc())
    if after:
        cursor = session.get(Checkpoint, after)
        if cursor is not None and cursor.job_id == job_id:
            query = query.where(Checkpoint.step_number < cursor.step_number)
    rows = list(session.scalars(query.limit(limit + 1)))
    return rows[:limit], len(rows) > limit
