"""Alembic environment: the models' metadata, and the URL from `upgrade_database` or the settings."""

from __future__ import annotations

from alembic import context

from backend.db.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        from backend.settings import get_settings

        url = get_settings().database_url
    return url


def _configure(**kwargs) -> None:
    context.configure(target_metadata=target_metadata, render_as_batch=True,  # SQLite ALTER via table copy
                      compare_type=True, **kwargs)


def run_offline() -> None:
    _configure(url=_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    from backend.db.session import make_engine

    engine = make_engine(_url())
    try:
        with engine.begin() as conn:
            _configure(connection=conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
