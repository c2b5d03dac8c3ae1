"""API fixtures: every test runs once on SQLite and once on PostgreSQL (skipped when none is reachable,
except under CI (`CI` set), where an unreachable PostgreSQL fails the run instead of hiding half the suite).

PostgreSQL: `STUDIO_TEST_POSTGRES_URL` (default `postgresql+psycopg://postgres@127.0.0.1:5432/test`). Each
test session migrates a fresh schema of its own (through `upgrade_database`) and drops it at the end.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, delete, text

from backend.app import create_app
from backend.db.migrate import upgrade_database
from backend.db.models import Base
from backend.db.session import Database, make_engine
from backend.settings import Settings

POSTGRES_URL = os.environ.get("STUDIO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS: dict[str, str] = {}  # backend -> "ran on …" | "skipped: …", for the summary


def _postgres_unreachable() -> str | None:
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any driver error: no usable server
        return f"PostgreSQL not reachable at {POSTGRES_URL} ({type(exc).__name__}: {str(exc).splitlines()[0]})"


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request, tmp_path_factory):
    """A migrated, empty database for this test session."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'studio.db'}"
        upgrade_database(url)
        BACKENDS["sqlite"] = "ran"
        yield url
        return
    reason = _postgres_unreachable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: CI must run the PostgreSQL half of the API tests")
        BACKENDS["postgresql"] = f"skipped: {reason}"
        pytest.skip(reason)
    schema = f"studio_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    BACKENDS["postgresql"] = f"ran on {POSTGRES_URL} (schema {schema}, dropped afterwards)"
    try:
        url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
        upgrade_database(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def settings(database_url, tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, max_upload_bytes=5 * 1024 * 1024)


def _empty_tables(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(delete(table))
    engine.dispose()


def fresh_app(settings: Settings) -> FastAPI:
    """The app on `settings` over emptied tables (the session's schema is kept: migrating per test is slow)."""
    _empty_tables(settings.database_url)
    return create_app(settings, migrate=False)


def started(app: FastAPI) -> Iterator[TestClient]:
    """A client of `app` with its lifespan run (shut down afterwards): for a fixture to `yield from`."""
    with TestClient(app) as test_client:
        yield test_client


def database_of(settings: Settings) -> Iterator[Database]:
    """A `Database` on the settings' URL, disposed afterwards: for a fixture to `yield from`."""
    database = Database(settings.database_url)
    yield database
    database.dispose()


@pytest.fixture
def app(settings):
    return fresh_app(settings)


@pytest.fixture
def client(app):
    yield from started(app)


@pytest.fixture
def upload(client):
    """`upload(path_or_bytes, filename=None, purpose="fine-tune")` → response."""

    def _upload(source: Path | bytes, filename: str | None = None, purpose: str | None = "fine-tune"):
        content = source if isinstance(source, bytes) else Path(source).read_bytes()
        name = filename or (Path(source).name if not isinstance(source, bytes) else "data.jsonl")
        data = {"purpose": purpose} if purpose is not None else {}
        return client.post("/v1/files", files={"file": (name, content)}, data=data)

    return _upload


def pytest_terminal_summary(terminalreporter):
    if BACKENDS:
        terminalreporter.section("API database backends")
        for name in ("sqlite", "postgresql"):
            terminalreporter.write_line(f"{name}: {BACKENDS.get(name, 'not used')}")
