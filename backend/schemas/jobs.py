"""Fine-tuning jobs, their events and checkpoints, shaped like OpenAI's fine-tuning API plus the studio's fields."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from backend.schemas.common import ListPage

JOB_STATUSES = ("validating_files", "queued", "running", "cancelling", "paused", "succeeded", "failed", "cancelled")
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
ACTIVE_STATUSES = tuple(s for s in JOB_STATUSES if s not in TERMINAL_STATUSES)


class JobError(BaseModel):
    code: str
    message: str
    param: str | None = None


class Progress(BaseModel):
    step: int
    total_steps: int | None = None
    eta_seconds: float | None = None


class JobObject(BaseModel):
    """A fine-tuning job (`fine_tuning.job`)."""

    id: str
    object: Literal["fine_tuning.job"] = "fine_tuning.job"
    status: str  # validating_files | queued | running | cancelling | paused | succeeded | failed | cancelled
    model: str
    fine_tuned_model: str | None = None
    created_at: int
    finished_at: int | None = None
    error: JobError | None = None
    trained_tokens: int | None = None
    hyperparameters: dict[str, Any]  # requested ("auto" allowed) until the run resolves them
    method: dict[str, Any]
    training_file: str
    validation_file: str | None = None
    suffix: str | None = None
    seed: int | None = None
    metadata: dict[str, str] | None = None
    tuning: dict[str, Any]
    training: dict[str, Any]
    priority: int
    queue_position: int | None = None  # 1-based among queued jobs (dispatched, then priority, fair share, FIFO)
    attempt: int
    progress: Progress
    trainable_params: int | None = None
    adapter: dict[str, Any] | None = None  # registry reference once succeeded
    estimated_finish: int | None = None
    owner: str | None = None  # the user who created it (team mode; `local` with auth off)
    team: str | None = None  # who may see it (team mode)


class JobList(ListPage[JobObject]):
    """A page of jobs, newest first."""


class JobEventObject(BaseModel):
    """One event of a job: `message`, `metrics`, `checkpoint` or `status`."""

    object: Literal["fine_tuning.job.event"] = "fine_tuning.job.event"
    id: str
    created_at: int
    level: str
    message: str
    type: str
    data: dict[str, Any] | None = None
    attempt: int | None = None  # the run that emitted it; curves take the latest attempt of a replayed step


class JobEventList(ListPage[JobEventObject]):
    """A page of events, oldest first; pass the last id as `after` for the next page."""


class CheckpointObject(BaseModel):
    """A checkpoint saved during training."""

    object: Literal["fine_tuning.job.checkpoint"] = "fine_tuning.job.checkpoint"
    id: str
    created_at: int
    step_number: int
    metrics: dict[str, Any] | None = None
    fine_tuning_job_id: str
    fine_tuned_model_checkpoint: str | None = None


class CheckpointList(ListPage[CheckpointObject]):
    """A page of checkpoints, latest step first."""
