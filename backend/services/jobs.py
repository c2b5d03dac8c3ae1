"""Fine-tuning jobs: create (validate → commit as `queued`), read, list, and the cancel/pause/resume
transitions.

The DB row is the source of truth; Celery only delivers. A `queued` job waits in the DB until the scheduler
(`services/scheduler.py`) dispatches it to a GPU worker with a free slot (`send_attempt`). Status changes
that come from the worker (running, succeeded, …) arrive through the relay (`services/relay.py`).
"""

from __future__ import annotations

import logging
import secrets
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.api.errors import APIError
from backend.db.ids import new_id
from backend.db.models import Checkpoint, File, Job, now
from backend.schemas.jobs import JobError, JobObject, Progress
from backend.services import fair_queue
from backend.services.auth import Principal, can_see, visible
from backend.services.cursors import check_cursor
from backend.services.job_checks import check_job, parse_job_body
from backend.services.pagination import newest_first
from backend.services.public_paths import without_server_paths
from backend.services.queue import JobQueue, QueueUnavailable
from backend.settings import Settings
from worker import lifecycle
from worker.finetune.spec import JobSpec, parse_spec

log = logging.getLogger("studio.jobs")


# ---------------------------------------------------------------------------------------------------
# Reading


def get_job(*, session: Session, job_id: str, principal: Principal | None = None) -> Job | None:
    """The job, or None when there is none or `principal` may not see it."""
    job = session.get(Job, job_id)
    return job if job is not None and can_see(principal, job.team) else None


def list_jobs(*, session: Session, after: str | None = None, limit: int = 20, status: str | None = None,
              principal: Principal | None = None) -> tuple[list[Job], bool]:
    """Newest first; `after` is the last id of the previous page. Only what `principal` may see."""
    where = [clause for clause in (Job.status == status if status else None, visible(principal, Job.team))
             if clause is not None]
    check_cursor(after, "ftjob", "fine-tuning job")
    return newest_first(session, Job, after=after, limit=limit, where=tuple(where))


def queue_positions(*, session: Session, jobs: list[Job]) -> dict[str, int]:
    """1-based place of the given queued jobs, by the scheduler's own rule (`services/fair_queue.py`):
    dispatched jobs first, then priority, fair share across users, FIFO.

    The database numbers the queue (window functions) and returns only the rows asked for.
    """
    return fair_queue.queue_positions(session=session, job_ids=[job.id for job in jobs if job.status == "queued"])


def fine_tuned_model_name(job: Job, spec: JobSpec) -> str:
    """`ft:<model>:<suffix or tuning type>:<job id body>`, OpenAI's naming."""
    return f"ft:{job.model}:{job.suffix or spec.tuning.type}:{job.id.removeprefix('ftjob-')}"


def job_public(job: Job, *, positions: dict[str, int] | None = None,
               adapters: dict[str, dict[str, Any]] | None = None) -> JobObject:
    """The wire shape; `positions` from `queue_positions` and `adapters` from `registry.adapter_refs`
    (each computed once per request)."""
    spec = parse_spec(job.spec)
    eta = job.eta_seconds if job.status == "running" else None
    return JobObject(
        id=job.id, status=job.status, model=job.model, fine_tuned_model=job.fine_tuned_model,
        created_at=job.created_at, finished_at=job.finished_at,
        error=JobError(**without_server_paths(job.error)) if job.error else None, trained_tokens=job.trained_tokens,
        hyperparameters=job.hyperparameters or spec.method.hyperparameters.model_dump(),
        method=spec.method.model_dump(mode="json", exclude_none=True), training_file=job.training_file,
        validation_file=job.validation_file, suffix=job.suffix, seed=job.seed, metadata=job.metadata_,
        tuning=spec.tuning.model_dump(mode="json"), training=spec.training.model_dump(mode="json"),
        priority=job.priority, queue_position=(positions or {}).get(job.id) if job.status == "queued" else None,
        attempt=job.attempt, progress=Progress(step=job.progress_step, total_steps=job.progress_total,
                                               eta_seconds=eta),
        trainable_params=job.trainable_params, adapter=(adapters or {}).get(job.id),
        estimated_finish=int(time.time() + eta) if eta is not None else None, owner=job.owner, team=job.team,
    )


# ---------------------------------------------------------------------------------------------------
# Creating and sending


def job_dirs(settings: Settings, job_id: str) -> tuple[str, str]:
    """(output_dir, checkpoint_dir), absolute: `<data_dir>/jobs/<id>/{output,checkpoints}`."""
    base = settings.jobs_dir / job_id
    return str(base / "output"), str(base / "checkpoints")


def worker_spec(*, session: Session, settings: Settings, job: Job) -> dict[str, Any]:
    """The stored spec with file ids replaced by the files' absolute local paths (the task's `spec`)."""
    spec = parse_spec(job.spec).model_dump(mode="json")
    for field in ("training_file", "validation_file"):
        if spec.get(field):
            row = session.get(File, spec[field])
            if row is None:
                raise APIError(400, f"The {field.replace('_', ' ')} '{spec[field]}' of this job was deleted.",
                               param=field, code="file_not_found")
            spec[field] = str(settings.data_dir / row.storage_path)
    return spec


def checkpoint_path(settings: Settings, row: Checkpoint) -> str:
    """Absolute path of a checkpoint (`path` is stored relative to the data dir when it lies inside it)."""
    return str(settings.data_dir / row.path)


def latest_checkpoint(*, session: Session, job_id: str) -> Checkpoint | None:
    return session.scalars(select(Checkpoint).where(Checkpoint.job_id == job_id)
                           .order_by(Checkpoint.step_number.desc()).limit(1)).first()


def resume_checkpoint(*, session: Session, settings: Settings, job_id: str) -> str | None:
    """Absolute path of the newest checkpoint still on disk (where a re-run resumes), or None."""
    rows = session.scalars(select(Checkpoint).where(Checkpoint.job_id == job_id)
                           .order_by(Checkpoint.step_number.desc()))
    return next((path for row in rows if Path(path := checkpoint_path(settings, row)).exists()), None)


def send_attempt(*, session: Session, settings: Settings, queue: JobQueue, job: Job) -> str | None:
    """Send the job's current attempt (the scheduler calls this once it has marked the job dispatched):
    publish a fresh dispatch token, then `studio.train` with it, resuming from the newest checkpoint.
    Returns `resume_from`. Raises `APIError` when a file of the job was deleted, `QueueUnavailable`."""
    spec = worker_spec(session=session, settings=settings, job=job)
    resume_from = resume_checkpoint(session=session, settings=settings, job_id=job.id)
    dispatch = f"{job.attempt}:{secrets.token_hex(8)}"
    queue.prepare_dispatch(job_id=job.id, attempt=job.attempt, dispatch=dispatch, seq_floor=job.last_event_seq)
    queue.send_train(job_id=job.id, attempt=job.attempt, spec=spec, output_dir=job.output_dir,
                     checkpoint_dir=job.checkpoint_dir, resume_from=resume_from, dispatch=dispatch)
    return resume_from


def _by_idempotency_key(session: Session, key: str, spec: JobSpec, principal: Principal | None) -> Job | None:
    job = session.scalars(select(Job).where(Job.idempotency_key == key)).first()
    # Another team's key answers like a reused one: their job is neither returned nor revealed.
    if job is not None and (job.spec != spec.model_dump_json() or not can_see(principal, job.team)):
        raise APIError(409, "This Idempotency-Key was already used with a different job body.",
                       param="Idempotency-Key", code="idempotency_key_reused")
    return job


def create_job(*, session: Session, settings: Settings, queue: JobQueue, body: Any,
               idempotency_key: str | None = None, principal: Principal | None = None) -> tuple[Job, bool]:
    """Validate, store as `queued` (committed, owned by `principal` and their team); the scheduler
    dispatches it. Returns (job, created).

    With an `idempotency_key` already used for the same body, the stored job is returned and nothing new is
    queued.
    """
    spec = parse_job_body(body)
    if idempotency_key and (existing := _by_idempotency_key(session, idempotency_key, spec, principal)):
        return existing, False
    check_job(session=session, settings=settings, spec=spec, principal=principal)
    job_id = new_id("ftjob")
    output_dir, checkpoint_dir = job_dirs(settings, job_id)
    job = Job(id=job_id, status=lifecycle.CREATED, model=spec.model, spec=spec.model_dump_json(),
              training_file=spec.training_file, validation_file=spec.validation_file, suffix=spec.suffix,
              seed=spec.seed, metadata_=spec.metadata, priority=spec.priority, attempt=1,
              idempotency_key=idempotency_key or None, output_dir=output_dir, checkpoint_dir=checkpoint_dir,
              progress_step=0, last_event_seq=0, owner=principal.user if principal else None,
              team=principal.team if principal else None)
    session.add(job)
    try:
        session.commit()
    except IntegrityError:  # a concurrent request with the same Idempotency-Key won
        session.rollback()
        existing = _by_idempotency_key(session, idempotency_key, spec, principal) if idempotency_key else None
        if existing is None:
            raise
        return existing, False
    queue.notify_queued()
    return job, True


# ---------------------------------------------------------------------------------------------------
# Transitions


def _refuse(job: Job, action: str, event: str) -> APIError:
    """400 for a user action the lifecycle table refuses from the job's status; it lists where it is allowed."""
    allowed = lifecycle.sources(event)
    allowed_text = ", ".join(allowed[:-1]) + f" or {allowed[-1]}" if len(allowed) > 1 else allowed[0]
    return APIError(400, f"Cannot {action} job '{job.id}': the job is already {job.status}"
                         f" (only {allowed_text} jobs can be {action}d)." if job.status in lifecycle.TERMINAL else
                         f"Cannot {action} job '{job.id}': it is {job.status}; only {allowed_text} jobs can be "
                         f"{action}d.", param="fine_tuning_job_id", code="invalid_job_state")


def _transition(session: Session, job: Job, expected: tuple[str, ...], *also: Any, **values: Any) -> bool:
    """Compare-and-set on the status (and the conditions `also`: the relay or the scheduler may have moved
    the job since it was read); commits and reloads `job` either way. True when this call made the change."""
    result = session.execute(update(Job).where(Job.id == job.id, Job.status.in_(expected), *also).values(**values)
                             .execution_options(synchronize_session=False))
    session.commit()
    session.refresh(job)
    return result.rowcount == 1


def cancel_job(*, session: Session, queue: JobQueue, job: Job) -> Job:
    """The `cancel_requested` rules of `worker/lifecycle.py`: queued/paused → cancelled now; running →
    cancelling (the worker stops at its next step); cancelling stays."""
    for _ in range(3):  # a status that changed under us is looked at again
        target = lifecycle.next_state(job.status, "cancel_requested")
        if target is None:
            raise _refuse(job, "cancel", "cancel_requested")
        if target == job.status:  # already cancelling
            return job
        if target == "cancelling":
            queue.set_control(job.id, "cancel")  # before the write: a job never shows cancelling with no signal
            if _transition(session, job, (job.status,), status=target):
                return job
        elif job.status != "paused" and job.dispatched_at is not None:
            # Its task may be on the way to a worker: the flag first (the task cancels itself at its first
            # step). With Redis down that is a 503 and nothing changes, as for a running job.
            queue.set_control(job.id, "cancel")
            if _transition(session, job, (job.status,), status=target, finished_at=now(), eta_seconds=None):
                return job
        else:
            # Never sent (the CAS fails if the scheduler dispatches it meanwhile: then the branch above), or
            # paused (its worker has stopped): the database alone decides, so Redis being down does not matter.
            undispatched = (Job.dispatched_at.is_(None),) if job.status != "paused" else ()
            if _transition(session, job, (job.status,), *undispatched, status=target, finished_at=now(),
                           eta_seconds=None):
                try:  # belt and braces: a task that slipped out anyway stops at its first step
                    queue.set_control(job.id, "cancel")
                except QueueUnavailable:
                    log.warning("could not set the cancel flag of %s (Redis unreachable)", job.id)
                return job
    raise APIError(409, f"Job '{job.id}' kept changing while it was being cancelled; retry.",
                   param="fine_tuning_job_id", code="conflict")


def pause_job(*, session: Session, queue: JobQueue, job: Job) -> Job:
    """Ask a running job to checkpoint and stop; it stays `running` until the worker reports `paused`."""
    if lifecycle.next_state(job.status, "pause_requested") is None:
        raise _refuse(job, "pause", "pause_requested")
    queue.set_control(job.id, "pause")
    return job


def resume_job(*, session: Session, settings: Settings, queue: JobQueue, job: Job) -> Job:
    """paused → queued with attempt + 1; the scheduler dispatches it, resuming from the latest checkpoint."""
    if (target := lifecycle.next_state(job.status, "resume")) is None:
        raise _refuse(job, "resume", "resume")
    worker_spec(session=session, settings=settings, job=job)  # its files must still exist
    queue.clear_control(job.id)
    if not _transition(session, job, lifecycle.sources("resume"), status=target, attempt=Job.attempt + 1,
                       eta_seconds=None, finished_at=None, error=None, dispatched_at=None):
        raise _refuse(job, "resume", "resume")
    queue.notify_queued()
    return job
