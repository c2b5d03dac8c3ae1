"""Rate limits (issue 9): per API key, per client address with auth off; 429 in OpenAI's envelope with
`Retry-After`; `STUDIO_RATE_LIMIT` (`off` disables); `/healthz` and event streams never counted.
(The test session runs with STUDIO_RATE_LIMIT=off, tests/conftest.py; each test here sets its own.)"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from backend.app import create_app
from backend.settings import Settings
from tests.api.conftest import _empty_tables
from tests.api.test_auth import bearer, db, error_of, make_key  # noqa: F401 — fixtures

BASE = "http://localhost:8000"


def client_for(settings: Settings) -> TestClient:
    _empty_tables(settings.database_url)
    return TestClient(create_app(settings, migrate=False), base_url=BASE)


def test_past_the_limit_the_answer_is_429_with_retry_after(settings):
    with client_for(settings.model_copy(update={"rate_limit": "3/minute"})) as client:
        assert [client.get("/v1/files").status_code for _ in range(3)] == [200, 200, 200]
        refused = client.get("/v1/files")
        error = error_of(refused, 429)
        assert error["type"] == "rate_limit_error" and error["code"] == "rate_limit_exceeded"
        assert "3 per 1 minute" in error["message"] and "STUDIO_RATE_LIMIT" in error["message"]
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["x-ratelimit-limit-requests"] == "3"
        assert refused.headers["x-ratelimit-remaining-requests"] == "0"
        # writes count too, and are refused before their body is read
        assert error_of(client.post("/v1/fine_tuning/jobs", json={}), 429)["code"] == "rate_limit_exceeded"


@pytest.fixture
def auth_settings(settings) -> Settings:  # the fixtures imported from test_auth build keys in this database
    return settings.model_copy(update={"auth": "on", "rate_limit": "2/minute"})


def test_each_key_has_its_own_budget(auth_settings, make_key):  # noqa: F811
    alice, bob = make_key(user="alice", team="ml"), make_key(user="bob", team="ml")
    with TestClient(create_app(auth_settings, migrate=False), base_url=BASE) as client:
        assert [client.get("/v1/files", headers=bearer(alice)).status_code for _ in range(3)] == [200, 200, 429]
        assert [client.get("/v1/files", headers=bearer(bob)).status_code for _ in range(2)] == [200, 200]
        assert client.get("/v1/files", headers=bearer(bob)).status_code == 429
        # a wrong key is refused as such (401), never counted against a real key's budget
        assert client.get("/v1/files", headers=bearer("sk-studio-wrong")).status_code == 401


def test_without_auth_each_client_address_has_its_own_budget(settings):
    # TestClient's peer is "testclient"; X-Forwarded-For counts only from a configured proxy
    limited = settings.model_copy(update={"rate_limit": "2/minute"})
    with client_for(limited) as client:
        spoofed = [client.get("/v1/files", headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
                   for i in range(3)]
        assert spoofed == [200, 200, 429]
    behind_proxy = limited.model_copy(update={"trusted_proxies": "testclient"})
    with client_for(behind_proxy) as client:
        for i in range(3):  # three people behind the proxy
            assert client.get("/v1/files", headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code == 200


def test_healthz_and_event_streams_are_never_counted(settings):
    with client_for(settings.model_copy(update={"rate_limit": "1/minute"})) as client:
        for _ in range(5):
            assert client.get("/healthz").status_code in (200, 503)
            assert client.get("/v1/fine_tuning/jobs/ftjob-x/events/stream").status_code == 404
        assert client.get("/v1/files").status_code == 200  # the one counted request of this minute
        assert client.get("/v1/files").status_code == 429
        assert client.get("/healthz").status_code in (200, 503)


def test_the_setting(tmp_path):
    assert Settings(data_dir=tmp_path, rate_limit="off").rate_limits == []
    assert [str(x) for x in Settings(data_dir=tmp_path, rate_limit="20/second; 600/minute").rate_limits] == [
        "20 per 1 second", "600 per 1 minute"]
    with pytest.raises(ValueError, match="STUDIO_RATE_LIMIT"):
        Settings(data_dir=tmp_path, rate_limit="lots")
    assert Settings(data_dir=tmp_path, rate_limit=Settings.model_fields["rate_limit"].default).rate_limits  # on
