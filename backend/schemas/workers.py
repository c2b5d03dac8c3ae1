"""Workers as the registry sees them (`GET /v1/workers`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from backend.schemas.common import ListPage


class GPU(BaseModel):
    index: int  # the physical index when CUDA_VISIBLE_DEVICES names it, else torch's
    name: str
    memory_bytes: int | None = None


class WorkerJob(BaseModel):
    id: str
    attempt: int


class WorkerObject(BaseModel):
    """A worker process that heartbeats into the registry (it drops out three heartbeats after its last)."""

    object: Literal["worker"] = "worker"
    id: str  # the Celery node name, e.g. `studio-gpu-4242@gpu-box-1`
    hostname: str
    pid: int
    queues: list[str]  # gpu (training) and/or inference
    slots: int  # training jobs it runs at once (1 per GPU process)
    gpus: list[GPU] | None = None  # [] on a CPU machine; null while being detected
    status: Literal["idle", "busy"]
    current_job: str | None = None  # the training job it runs now (the first, with several slots)
    jobs: list[WorkerJob]  # every training job it runs now, with its attempt
    started_at: int
    last_heartbeat_at: int


class WorkerList(ListPage[WorkerObject]):
    """Every live worker, by name."""
