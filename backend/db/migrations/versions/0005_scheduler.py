"""The scheduler and crash-safe runs: when a job was dispatched (ms; indexed per owner for the round robin),
how often it was re-queued; the attempt of each event and a per-job unique key for metrics, so each
(attempt, step) is stored once.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("dispatched_at", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("requeues", sa.Integer(), nullable=False, server_default="0"))
        batch.create_index("ix_jobs_owner_dispatched_at", ["owner", "dispatched_at"], unique=False)
    with op.batch_alter_table("job_events") as batch:
        batch.add_column(sa.Column("attempt", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("metric_key", sa.String(length=64), nullable=True))
        batch.create_unique_constraint(op.f("uq_job_events_job_id_metric_key"), ["job_id", "metric_key"])


def downgrade() -> None:
    with op.batch_alter_table("job_events") as batch:
        batch.drop_constraint(op.f("uq_job_events_job_id_metric_key"), type_="unique")
        batch.drop_column("metric_key")
        batch.drop_column("attempt")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_owner_dispatched_at")
        batch.drop_column("requeues")
        batch.drop_column("dispatched_at")
