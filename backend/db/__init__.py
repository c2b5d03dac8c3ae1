"""Database layer: typed models, engine/session factory and Alembic migrations."""

from backend.db.models import Base, Checkpoint, File, Job, JobEvent
from backend.db.session import Database, make_engine

__all__ = ["Base", "Checkpoint", "Database", "File", "Job", "JobEvent", "make_engine"]
