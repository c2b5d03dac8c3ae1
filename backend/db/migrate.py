"""Run Alembic migrations from code (no alembic.ini): `upgrade_database(url)`.

Also runnable as `python -m backend.db.migrate` to migrate the database the settings point at.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config for `url`; the URL travels in `attributes` (no ConfigParser `%` escaping)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    return config


def upgrade_database(url: str, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision` (idempotent)."""
    from backend.db.session import make_engine

    engine = make_engine(url)  # SQLite pragmas (WAL) apply to the migration connection too
    try:
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


if __name__ == "__main__":
    from backend.settings import get_settings

    upgrade_database(get_settings().database_url)
