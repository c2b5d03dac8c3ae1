"""The adapter registry: adapters, their versions, aliases and the alias history.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "adapters",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_adapters")),
    )
    op.create_table(
        "adapter_versions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("adapter_name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=True),
        sa.Column("base_model", sa.String(length=512), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("artifact", sa.String(length=16), nullable=True),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("lineage", sa.JSON(), nullable=True),
        sa.Column("flags", sa.JSON(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("merge_status", sa.String(length=16), nullable=True),
        sa.Column("merge_path", sa.String(length=1024), nullable=True),
        sa.Column("merge_error", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["adapter_name"], ["adapters.name"], ondelete="CASCADE",
                                name=op.f("fk_adapter_versions_adapter_name_adapters")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adapter_versions")),
        sa.UniqueConstraint("adapter_name", "version", name=op.f("uq_adapter_versions_adapter_name_version")),
        sa.UniqueConstraint("job_id", name=op.f("uq_adapter_versions_job_id")),
    )
    op.create_table(
        "adapter_aliases",
        sa.Column("adapter_name", sa.String(length=128), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["adapter_name"], ["adapters.name"], ondelete="CASCADE",
                                name=op.f("fk_adapter_aliases_adapter_name_adapters")),
        sa.PrimaryKeyConstraint("adapter_name", "alias", name=op.f("pk_adapter_aliases")),
    )
    op.create_table(
        "alias_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("adapter_name", sa.String(length=128), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("previous_version", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alias_events")),
    )
    op.create_index(op.f("ix_alias_events_adapter_name"), "alias_events", ["adapter_name"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_alias_events_adapter_name"), table_name="alias_events")
    op.drop_table("alias_events")
    op.drop_table("adapter_aliases")
    op.drop_table("adapter_versions")
    op.drop_table("adapters")
