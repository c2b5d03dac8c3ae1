"""The tables: uploaded files, jobs, job events, checkpoints, and the adapter registry (SQLAlchemy 2, typed).

Timestamps are Unix seconds (int), as in OpenAI's objects. JSON columns hold plain dicts/lists.
Ids are strings with a resource prefix (see `backend.db.ids`); event ids are derived from (job, seq).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Deterministic constraint names, so migrations can alter them on SQLite and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def now() -> int:
    """Current Unix time in whole seconds."""
    return int(time.time())


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, int: Integer}


class File(Base):
    """An uploaded, validated dataset. The bytes live at `storage_path` (relative to the data dir)."""

    __tablename__ = "files"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))  # display only, never a path
    purpose: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    file_format: Mapped[str] = mapped_column(String(16))  # container: jsonl | json | csv | parquet
    format: Mapped[str] = mapped_column(String(32))  # dataset: chat | prompt_completion | alpaca | text | preference
    num_examples: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32), default="processed")
    token_stats: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # canonical field -> the file's column (detected or given at upload); also stored beside the file
    column_mapping: Mapped[dict[str, str] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    storage_path: Mapped[str] = mapped_column(String(1024))
    owner: Mapped[str | None] = mapped_column(String(128), default=None, index=True)  # the user (team mode)
    team: Mapped[str | None] = mapped_column(String(128), default=None, index=True)  # who may see it


class Job(Base):
    """A fine-tuning job. `spec` is `JobSpec.model_dump_json()`; the rest is state the service tracks."""

    __tablename__ = "jobs"
    __table_args__ = (
        # The scheduler's query: next queued job by priority, then age.
        Index("ix_jobs_status_priority_created_at", "status", "priority", "created_at"),
        # Listing with ?status= pages by id (newest first) without sorting the whole status.
        Index("ix_jobs_status_id", "status", "id"),
        # The fair queue: each user's latest dispatch (who was served longest ago goes first).
        Index("ix_jobs_owner_dispatched_at", "owner", "dispatched_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(32), default="validating_files")
    model: Mapped[str] = mapped_column(String(512))
    spec: Mapped[str] = mapped_column(Text)
    training_file: Mapped[str] = mapped_column(String(4096))
    validation_file: Mapped[str | None] = mapped_column(String(4096), default=None)
    suffix: Mapped[str | None] = mapped_column(String(64), default=None)
    seed: Mapped[int | None] = mapped_column(BigInteger, default=None)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, default=None)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    started_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    finished_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)  # {code, message, param}
    fine_tuned_model: Mapped[str | None] = mapped_column(String(512), default=None)
    trained_tokens: Mapped[int | None] = mapped_column(BigInteger, default=None)
    trainable_params: Mapped[int | None] = mapped_column(BigInteger, default=None)
    total_params: Mapped[int | None] = mapped_column(BigInteger, default=None)
    hyperparameters: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)  # resolved values
    progress_step: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer, default=None)
    eta_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    attempt: Mapped[int] = mapped_column(Integer, default=0)  # 1 on the first run; bounded by max_job_attempts
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)
    output_dir: Mapped[str | None] = mapped_column(String(1024), default=None)
    checkpoint_dir: Mapped[str | None] = mapped_column(String(1024), default=None)
    last_event_seq: Mapped[int] = mapped_column(Integer, default=0)  # highest seq persisted; events start at 1
    owner: Mapped[str | None] = mapped_column(String(128), default=None, index=True)  # the user (team mode)
    team: Mapped[str | None] = mapped_column(String(128), default=None, index=True)  # who may see it
    # The scheduler: when the current attempt was handed to Celery, in Unix *milliseconds* (NULL: waiting in
    # the DB queue; kept once the job ends, so a user's last dispatch orders the round robin), and how many
    # times the job was re-queued because its worker was lost (bounded by max_job_attempts).
    dispatched_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    requeues: Mapped[int] = mapped_column(Integer, default=0)

    events: Mapped[list[JobEvent]] = relationship(back_populates="job", cascade="all, delete-orphan",
                                                  passive_deletes=True, order_by="JobEvent.seq")
    checkpoints: Mapped[list[Checkpoint]] = relationship(back_populates="job", cascade="all, delete-orphan",
                                                         passive_deletes=True, order_by="Checkpoint.step_number")


class JobEvent(Base):
    """One event a job emitted. `seq` (1, 2, …) is the emission order within the job.

    `id` is `backend.db.ids.event_id(job_id, seq)`; the unique (job_id, seq) constraint makes persisting
    the same event twice a no-op (insert-or-ignore), and its index serves "events of job X after seq N".
    `attempt` is the run that emitted it; `metric_key` (`{attempt}:{step}:train|valid`, metrics only) is
    unique per job, so each (attempt, step) of a curve is stored once.
    """

    __tablename__ = "job_events"
    __table_args__ = (UniqueConstraint("job_id", "seq"), UniqueConstraint("job_id", "metric_key"))

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    level: Mapped[str] = mapped_column(String(16), default="info")  # info | warn | error
    type: Mapped[str] = mapped_column(String(16), default="message")  # message | metrics
    message: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    attempt: Mapped[int | None] = mapped_column(Integer, default=None)
    metric_key: Mapped[str | None] = mapped_column(String(64), default=None)

    job: Mapped[Job] = relationship(back_populates="events")


class Checkpoint(Base):
    """A checkpoint saved during training; `path` is relative to the data dir."""

    __tablename__ = "checkpoints"
    __table_args__ = (UniqueConstraint("job_id", "step_number"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    step_number: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    path: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)

    job: Mapped[Job] = relationship(back_populates="checkpoints")


class Adapter(Base):
    """A named line of fine-tunes in the registry; each successful job adds a version."""

    __tablename__ = "adapters"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    owner: Mapped[str | None] = mapped_column(String(128), default=None, index=True)  # the user (team mode)
    team: Mapped[str | None] = mapped_column(String(128), default=None, index=True)  # who may see it

    versions: Mapped[list[AdapterVersion]] = relationship(back_populates="adapter", cascade="all, delete-orphan",
                                                          passive_deletes=True, order_by="AdapterVersion.version")
    aliases: Mapped[list[AdapterAlias]] = relationship(cascade="all, delete-orphan", passive_deletes=True,
                                                       order_by="AdapterAlias.alias")


class AdapterVersion(Base):
    """One trained artifact: `pending` (registered) → `ready` (files checked) | `failed`.

    `path` is the artifact folder (relative to the data dir when inside it); `lineage` is its `studio.json`
    plus the job and dataset ids; `flags` are serving-compatibility facts (vLLM/LoRAX refuse some adapters).
    `merge_*` track an export of the version merged into its base as a full model.
    """

    __tablename__ = "adapter_versions"
    __table_args__ = (UniqueConstraint("adapter_name", "version"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    adapter_name: Mapped[str] = mapped_column(ForeignKey("adapters.name", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    job_id: Mapped[str | None] = mapped_column(String(64), default=None, unique=True)
    base_model: Mapped[str] = mapped_column(String(512))
    method: Mapped[str] = mapped_column(String(32))
    artifact: Mapped[str | None] = mapped_column(String(16), default=None)  # peft | bottleneck | full
    path: Mapped[str] = mapped_column(String(1024))
    lineage: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    flags: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    merge_status: Mapped[str | None] = mapped_column(String(16), default=None)  # queued | running | succeeded | failed
    merge_path: Mapped[str | None] = mapped_column(String(1024), default=None)
    merge_error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)

    adapter: Mapped[Adapter] = relationship(back_populates="versions")


class AdapterAlias(Base):
    """`name@alias` points at one version (`production`, `staging`, …)."""

    __tablename__ = "adapter_aliases"

    adapter_name: Mapped[str] = mapped_column(ForeignKey("adapters.name", ondelete="CASCADE"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now)


class AliasEvent(Base):
    """Append-only history of alias moves: who pointed which alias where, and from where."""

    __tablename__ = "alias_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    adapter_name: Mapped[str] = mapped_column(String(128), index=True)
    alias: Mapped[str] = mapped_column(String(64))
    version: Mapped[int | None] = mapped_column(Integer, default=None)  # None: the alias was removed
    previous_version: Mapped[int | None] = mapped_column(Integer, default=None)
    actor: Mapped[str] = mapped_column(String(128), default="anonymous")
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)


class ApiKey(Base):
    """An API key (team mode). Only its sha256 is stored; `prefix` lets a person tell keys apart."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user: Mapped[str] = mapped_column(String(128), index=True)
    team: Mapped[str | None] = mapped_column(String(128), default=None)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, default=None)


class AuditEvent(Base):
    """Append-only: who created, cancelled, aliased or deleted what."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(128))
    team: Mapped[str | None] = mapped_column(String(128), default=None)
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(256), index=True)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
