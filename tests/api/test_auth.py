"""Team mode's front door: API keys (401 in the envelope without, with a bad or a revoked key), `/healthz`
open, keys stored hashed, `studio keys create|list|revoke`, and the hardening around every request
(`?api_key=` only where a browser needs it, body size limit, cross-origin writes, CORS)."""

from __future__ import annotations

import hashlib
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from backend.app import create_app
from backend.cli import app as cli
from backend.db.models import ApiKey, AuditEvent
from backend.services import auth
from backend.settings import Settings, get_settings
from tests.api.conftest import _empty_tables, database_of, fresh_app, started
from tests.conftest import EXAMPLES


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


@pytest.fixture
def auth_settings(settings) -> Settings:
    return settings.model_copy(update={"auth": "on"})


@pytest.fixture
def auth_app(auth_settings):
    return fresh_app(auth_settings)


@pytest.fixture
def auth_client(auth_app):
    yield from started(auth_app)


@pytest.fixture
def db(auth_settings):
    yield from database_of(auth_settings)


@pytest.fixture
def make_key(db):
    """`make_key(user, team=None, admin=False)` → the key in clear."""

    def _make(user: str = "alice", team: str | None = "ml", admin: bool = False) -> str:
        with db.session() as session:
            return auth.create_key(session=session, user=user, team=team, is_admin=admin)[1]

    return _make


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def v1_operations(app) -> list[tuple[str, str]]:
    """(method, path with placeholders filled) for every /v1 operation of the OpenAPI schema."""
    out = []
    for path, operations in app.openapi()["paths"].items():
        if path.startswith("/v1"):
            filled = re.sub(r"\{[^}]+\}", lambda m: "1" if "version" in m.group(0) else "x", path)
            out.extend((method.upper(), filled) for method in operations)
    return out


def test_every_v1_operation_needs_a_key(auth_app, auth_client):
    operations = v1_operations(auth_app)
    assert len(operations) >= 25
    for method, path in operations:
        error = error_of(auth_client.request(method, path), 401)
        assert error["type"] == "authentication_error" and error["code"] == "missing_api_key", (method, path)
        assert "Authorization: Bearer" in error["message"]


def test_an_unknown_a_malformed_and_a_revoked_key_are_refused(auth_client, make_key, db):
    for headers in (bearer("sk-studio-nope"), bearer("not-even-a-studio-key"), {"Authorization": "Basic YTpi"}):
        error = error_of(auth_client.get("/v1/files", headers=headers), 401)
        assert error["code"] in ("invalid_api_key", "missing_api_key")
    key = make_key()
    response = auth_client.get("/v1/files", headers=bearer(key))
    assert response.status_code == 200, response.text
    with db.session() as session:
        row = session.scalars(select(ApiKey)).one()
        auth.revoke_key(session=session, key_id=row.id)
    error = error_of(auth_client.get("/v1/files", headers=bearer(key)), 401)
    assert error["code"] == "invalid_api_key" and "revoked" in error["message"]
    assert auth_client.get("/v1/files", headers=bearer(key)).headers["WWW-Authenticate"] == "Bearer"


def test_healthz_the_dashboard_and_the_schema_stay_open(auth_client):
    assert auth_client.get("/healthz").status_code in (200, 503)  # 503 = no Redis here, still not a 401
    assert auth_client.get("/").status_code == 200
    assert auth_client.get("/openapi.json").status_code == 200


def test_auth_off_makes_every_request_a_local_admin(client):
    assert client.get("/v1/files").status_code == 200
    assert client.get("/v1/files", headers=bearer("sk-studio-ignored-when-off")).status_code == 200


def test_keys_are_stored_hashed(make_key, db):
    key = make_key(user="alice", team="ml")
    assert key.startswith("sk-studio-") and len(key) > 40
    with db.session() as session:
        row = session.scalars(select(ApiKey)).one()
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert row.prefix == key[:16] and row.user == "alice" and row.team == "ml" and row.is_admin is False
        stored = [getattr(row, c.key) for c in ApiKey.__table__.columns]
        assert key not in [str(v) for v in stored]


@pytest.mark.parametrize("user, team, admin, message", [
    ("alice", None, False, "needs a team"), ("al ice", "ml", False, "Invalid user"),
    ("alice", "M.L", False, "Invalid team"), ("alice", "ml.x", True, "Invalid team"),
])
def test_key_names_are_checked(db, user, team, admin, message):
    with db.session() as session, pytest.raises(auth.KeyRefused, match=message):
        auth.create_key(session=session, user=user, team=team, is_admin=admin)


@pytest.fixture
def cli_env(monkeypatch, auth_settings):
    _empty_tables(auth_settings.database_url)
    monkeypatch.setenv("STUDIO_DATA_DIR", str(auth_settings.data_dir))
    monkeypatch.setenv("STUDIO_DATABASE_URL", auth_settings.database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_cli_creates_lists_and_revokes_keys(cli_env, auth_client, db):
    created = cli_env.invoke(cli, ["keys", "create", "--user", "alice", "--team", "ml"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("sk-studio-")
    assert auth_client.get("/v1/files", headers=bearer(key)).status_code == 200

    admin = cli_env.invoke(cli, ["keys", "create", "--user", "root", "--admin"])
    assert admin.exit_code == 0, admin.output

    listed = cli_env.invoke(cli, ["keys", "list"])
    assert listed.exit_code == 0, listed.output
    assert all(word in listed.stdout for word in ("alice", "member", "root", "admin"))
    assert key not in listed.stdout and key[:16] in listed.stdout
    key_id = re.search(r"(key-\w+)\s+\S+\s+alice", listed.stdout).group(1)

    revoked = cli_env.invoke(cli, ["keys", "revoke", key_id])
    assert revoked.exit_code == 0, revoked.output
    assert error_of(auth_client.get("/v1/files", headers=bearer(key)), 401)["code"] == "invalid_api_key"
    assert "alice" not in cli_env.invoke(cli, ["keys", "list"]).stdout
    assert "alice" in cli_env.invoke(cli, ["keys", "list", "--all"]).stdout

    assert cli_env.invoke(cli, ["keys", "create", "--user", "bob"]).exit_code == 2  # a member needs a team
    assert cli_env.invoke(cli, ["keys", "revoke", "key-nope"]).exit_code == 2
    with db.session() as session:
        rows = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        assert [(r.action, r.resource_id) for r in rows] == [
            ("key.create", key_id), ("key.create", rows[1].resource_id), ("key.revoke", key_id)]
        assert all(r.actor.startswith("cli") for r in rows) and rows[0].team == "ml"


def test_a_query_key_is_accepted_only_where_a_browser_cannot_send_headers(auth_client, make_key):
    key = make_key()
    # any other route ignores ?api_key= (it would end up in logs and browser history)
    assert error_of(auth_client.get("/v1/files", params={"api_key": key}), 401)["code"] == "missing_api_key"
    # the event stream and downloads take it: here they get past auth to the 404 of an unknown object
    stream = auth_client.get("/v1/fine_tuning/jobs/ftjob-x/events/stream", params={"api_key": key})
    assert error_of(stream, 404)["code"] == "fine-tuning_job_not_found" or stream.status_code == 404
    download = auth_client.get("/v1/adapters/nope/versions/1/download", params={"api_key": key})
    assert error_of(download, 404)["code"] == "adapter_not_found"
    for bad in ("sk-studio-bad", "sk-studio-\u0100"):
        assert error_of(auth_client.get("/v1/adapters/nope/versions/1/download", params={"api_key": bad}),
                        401)["code"] == "invalid_api_key"


def test_the_query_key_is_scrubbed_from_the_url():
    import asyncio

    from backend.api.guards import QueryKey

    seen = {}

    async def app(scope, receive, send):
        seen.update(scope)

    scope = {"type": "http", "method": "GET", "path": "/v1/adapters/a/versions/1/download",
             "query_string": b"format=zip&api_key=sk-studio-secret", "headers": []}
    asyncio.run(QueryKey(app)(scope, None, None))
    assert seen["query_string"] == b"format=zip" and scope["query_string"] == b"format=zip"  # in place: the log
    assert (b"authorization", b"Bearer sk-studio-secret") in seen["headers"]


def test_json_bodies_are_capped_but_uploads_have_their_own_limit(settings):
    small = settings.model_copy(update={"max_request_bytes": 1000})
    _empty_tables(small.database_url)
    with TestClient(create_app(small, migrate=False)) as client:
        error = error_of(client.post("/v1/fine_tuning/jobs", json={"model": "x" * 2000}), 413)
        assert error["code"] == "request_too_large" and "1000 bytes" in error["message"]
        chunked = client.post("/v1/fine_tuning/jobs", content=iter([b'{"model": "' + b"x" * 600, b"x" * 600 + b'"}']),
                              headers={"Content-Type": "application/json"})  # no Content-Length: counted as read
        assert error_of(chunked, 413)["code"] == "request_too_large"
        chat = (EXAMPLES / "chat.jsonl").read_bytes()
        assert len(chat) > 1000
        upload = client.post("/v1/files", files={"file": ("chat.jsonl", chat)}, data={"purpose": "fine-tune"})
        assert upload.status_code == 200, upload.text


def test_cross_origin_writes_are_refused_unless_the_origin_is_allowed(settings):
    with TestClient(fresh_app(settings)) as client:
        refused = client.post("/v1/fine_tuning/jobs/ftjob-x/cancel", headers={"Origin": "https://evil.example"})
        assert error_of(refused, 403)["code"] == "cross_origin_refused"
        assert "access-control-allow-origin" not in refused.headers
        same = client.post("/v1/fine_tuning/jobs/ftjob-x/cancel", headers={"Origin": "http://testserver"})
        assert same.status_code == 404  # got through to the route
        assert client.get("/v1/files", headers={"Origin": "https://evil.example"}).status_code == 200  # reads:
        # the browser withholds the answer, since no CORS header allows that origin
        read = client.get("/v1/files", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in read.headers

    allowed = settings.model_copy(update={"cors_origins": "http://localhost:5173"})
    with TestClient(create_app(allowed, migrate=False)) as client:
        preflight = client.options("/v1/files", headers={"Origin": "http://localhost:5173",
                                                         "Access-Control-Request-Method": "POST",
                                                         "Access-Control-Request-Headers": "authorization"})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "http://localhost:5173"
        write = client.post("/v1/fine_tuning/jobs/ftjob-x/cancel", headers={"Origin": "http://localhost:5173"})
        assert write.status_code == 404 and write.headers["access-control-allow-origin"] == "http://localhost:5173"


def test_cors_wildcard_is_refused_without_auth(tmp_path):
    with pytest.raises(ValueError, match="CORS"):
        Settings(data_dir=tmp_path, cors_origins="*")
    assert Settings(data_dir=tmp_path, cors_origins="*", auth="on").cors_origin_list == ["*"]


def test_values_the_database_cannot_take_are_the_callers_mistake(client):
    # PostgreSQL refuses NUL characters in text and integers out of range: 400, never a 500
    for response in (client.get("/v1/files/file-%00"),
                     client.post("/v1/estimate", json={"model": "studio-tiny-llama", "training_file": "\x00"})):
        assert response.status_code in (400, 404), response.text  # 400 on PostgreSQL, 404 on SQLite
        error_of(response, response.status_code)
    assert client.get("/v1/files", params={"after": "\x00"}).status_code in (200, 400)


def test_serving_on_a_public_address_turns_auth_on(monkeypatch, tmp_path):
    from backend.cli import _bound_settings

    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STUDIO_HOST", "127.0.0.1")
    monkeypatch.setenv("STUDIO_PORT", "8000")
    monkeypatch.delenv("STUDIO_AUTH", raising=False)
    try:
        assert _bound_settings(None, None).auth == "off"
        settings = _bound_settings("0.0.0.0", 9000)  # `studio up --host 0.0.0.0` is team mode
        assert settings.auth == "on" and settings.host == "0.0.0.0" and settings.port == 9000
        monkeypatch.setenv("STUDIO_AUTH", "off")
        refused = CliRunner().invoke(cli, ["api", "--host", "0.0.0.0"])
        assert refused.exit_code == 2 and "STUDIO_AUTH=off is refused" in refused.output
    finally:
        get_settings.cache_clear()


def test_settings_keep_passwords_out_of_their_repr(tmp_path):
    settings = Settings(data_dir=tmp_path, database_url="postgresql+psycopg://u:secret@db/studio",
                        redis_url="redis://:hunter2@redis:6379/0")
    assert "secret" not in repr(settings) and "hunter2" not in repr(settings)
