"""Database: migrations match the models, SQLite pragmas, idempotent event persistence, sortable ids."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from backend.db.ids import event_id, event_seq, new_id
from backend.db.migrate import upgrade_database
from backend.db.models import Base, Checkpoint, Job, JobEvent
from backend.db.session import Database

TABLES = {"files", "jobs", "job_events", "checkpoints", "adapters", "adapter_versions", "adapter_aliases",
          "alias_events", "api_keys", "audit_events"}


@pytest.fixture
def db(database_url):
    database = Database(database_url)
    with database.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    yield database
    database.dispose()


def test_migrations_produce_the_models_tables(db):
    upgrade_database(db.url)  # idempotent: already at head
    with db.engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) == TABLES | {"alembic_version"}
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_fresh_sqlite_migration(tmp_path):
    url = f"sqlite:///{tmp_path / 'nested' / 'studio.db'}"
    upgrade_database(url)
    database = Database(url)
    with database.engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) == TABLES | {"alembic_version"}
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    database.dispose()


def _job(**kw) -> Job:
    return Job(id=new_id("ftjob"), model="m", spec="{}", training_file="file-x", **kw)


def test_job_defaults_and_json_roundtrip(db):
    with db.session() as s:
        job = _job(metadata_={"team": "nlp"}, hyperparameters={"n_epochs": 3}, error=None)
        s.add(job)
        s.commit()
        job_id = job.id
    with db.session() as s:
        row = s.get(Job, job_id)
        assert row.status == "validating_files" and row.attempt == 0 and row.last_event_seq == 0
        assert row.metadata_ == {"team": "nlp"} and row.hyperparameters == {"n_epochs": 3}
        assert row.created_at > 0 and row.priority == 0


def test_idempotency_key_is_unique_but_nullable(db):
    with db.session() as s:
        s.add_all([_job(), _job(), _job(idempotency_key="k1")])
        s.commit()
        s.add(_job(idempotency_key="k1"))
        with pytest.raises(IntegrityError):
            s.commit()


def test_same_event_twice_is_refused_by_the_unique_constraint(db):
    with db.session() as s:
        job = _job()
        s.add(job)
        s.commit()
        s.add(JobEvent(id=event_id(job.id, 1), job_id=job.id, seq=1, message="step 1"))
        s.commit()
        s.add(JobEvent(id=f"{event_id(job.id, 1)}-dup", job_id=job.id, seq=1, message="step 1 again"))
        with pytest.raises(IntegrityError):
            s.commit()


def test_insert_or_ignore_makes_persisting_an_event_idempotent(db):
    """The relay's pattern: INSERT … ON CONFLICT DO NOTHING on (job_id, seq)."""
    with db.session() as s:
        job = _job()
        s.add(job)
        s.commit()
        dialect = {"sqlite": sqlite, "postgresql": postgresql}[db.engine.dialect.name]
        for seq in (1, 2, 1, 2, 3):
            row = {"id": event_id(job.id, seq), "job_id": job.id, "seq": seq, "created_at": 1, "level": "info",
                   "type": "metrics", "message": "", "data": {"step": seq}}
            s.execute(dialect.insert(JobEvent).values(row).on_conflict_do_nothing(index_elements=["job_id", "seq"]))
        s.commit()
        seqs = s.scalars(select(JobEvent.seq).where(JobEvent.job_id == job.id).order_by(JobEvent.id)).all()
    assert seqs == [1, 2, 3]


def test_deleting_a_job_cascades_to_events_and_checkpoints(db):
    with db.session() as s:
        job = _job()
        s.add(job)
        s.flush()
        s.add_all([JobEvent(id=event_id(job.id, 1), job_id=job.id, seq=1),
                   Checkpoint(id=new_id("ftckpt"), job_id=job.id, step_number=10, path="jobs/x/ckpt-10")])
        s.commit()
        s.execute(text("DELETE FROM jobs"))
        s.commit()
        assert s.scalars(select(JobEvent)).all() == [] and s.scalars(select(Checkpoint)).all() == []


def test_checkpoint_step_is_unique_per_job(db):
    with db.session() as s:
        job = _job()
        s.add(job)
        s.flush()
        s.add(Checkpoint(id=new_id("ftckpt"), job_id=job.id, step_number=5, path="a"))
        s.commit()
        s.add(Checkpoint(id=new_id("ftckpt"), job_id=job.id, step_number=5, path="b"))
        with pytest.raises(IntegrityError):
            s.commit()


def test_ids_sort_in_creation_order():
    ids = [new_id("file") for _ in range(2000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(i.startswith("file-") and len(i) == 31 for i in ids)


def test_event_ids_sort_by_seq_and_round_trip():
    job = new_id("ftjob")
    ids = [event_id(job, seq) for seq in (1, 2, 10, 100, 12345)]
    assert ids == sorted(ids) and ids[0].startswith("ftevent-")
    assert [event_seq(i) for i in ids] == [1, 2, 10, 100, 12345]
    assert event_seq("nonsense") is None and event_seq("ftevent-x-abc") is None
