"""The HTTP front door (issue 9): host names (DNS rebinding), the Origin check's scheme, `?api_key=` never
logged nor redirected, the key checked before the body is read, frame/CSP headers, and X-Forwarded-For
trusted only from configured proxies — in-process for the rules, and through a real `studio api` (uvicorn,
its access log) for what a log reader would see."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from backend.app import create_app
from backend.settings import Settings
from tests.api.conftest import _empty_tables
from tests.api.test_auth import bearer, error_of
from tests.conftest import EXAMPLES, REPO
from tests.helpers import free_port

SECRET = "sk-studio-thisIsASecretThatMustNeverBeLogged0123456789abcd"
CHAT = (EXAMPLES / "chat.jsonl").read_bytes()


def client_for(settings: Settings, base_url: str, **kwargs) -> TestClient:
    _empty_tables(settings.database_url)
    return TestClient(create_app(settings, migrate=False), base_url=base_url, **kwargs)


@pytest.fixture
def laptop(settings) -> Settings:
    """The laptop default: loopback, auth off, no STUDIO_ALLOWED_HOSTS (the tests' env names `testserver`)."""
    return settings.model_copy(update={"allowed_hosts": ""})


def test_a_page_rebound_to_loopback_cannot_upload_list_or_delete(laptop):
    own, rebound = "http://127.0.0.1:8000", "http://attacker.example:8000"
    with client_for(laptop, own) as client:
        file_id = client.post("/v1/files", files={"file": ("chat.jsonl", CHAT)},
                              data={"purpose": "fine-tune"}).json()["id"]
        # attacker.example's page, rebound to 127.0.0.1: for the browser its requests are same-origin
        origin = {"Origin": rebound}
        for response in (client.get(f"{rebound}/v1/files"), client.get(f"{rebound}/v1/files/{file_id}/content"),
                         client.post(f"{rebound}/v1/files", files={"file": ("x.jsonl", CHAT)},
                                     data={"purpose": "fine-tune"}, headers=origin),
                         client.delete(f"{rebound}/v1/files/{file_id}", headers=origin), client.get(f"{rebound}/")):
            error = error_of(response, 400)
            assert error["code"] == "invalid_host" and "STUDIO_ALLOWED_HOSTS" in error["message"]
            assert "chat.jsonl" not in response.text
        listed = client.get("http://localhost:8000/v1/files").json()["data"]
        assert [f["id"] for f in listed] == [file_id]  # nothing added, nothing deleted


@pytest.mark.parametrize("base", ["http://localhost:8000", "http://127.0.0.1:8000", "http://[::1]:8000",
                                  "http://localhost", "http://127.0.0.1:51234"])
def test_loopback_names_are_accepted_on_any_port(laptop, base):
    with client_for(laptop, base) as client:
        assert client.get("/v1/files").status_code == 200


def test_configured_host_names_are_accepted_and_others_refused(settings):
    team = settings.model_copy(update={"allowed_hosts": "studio.example.com, *.corp.example"})
    for base, ok in (("https://studio.example.com", True), ("http://gpu1.corp.example:8000", True),
                     ("http://corp.example", False), ("http://studio.example.com.evil.example", False),
                     ("http://evil.example", False), ("http://localhost:8000", True)):
        with client_for(team, base) as client:
            response = client.get("/v1/files")
            assert (response.status_code == 200) is ok, (base, response.text)


def test_the_bound_address_is_accepted(settings):
    # STUDIO_HOST names the studio: its own name works without repeating it in STUDIO_ALLOWED_HOSTS
    named = settings.model_copy(update={"allowed_hosts": "", "host": "studio.internal", "auth": "on"})
    with client_for(named, "http://studio.internal:8000") as client:
        assert error_of(client.get("/v1/files"), 401)["code"] == "missing_api_key"  # past the host check
    # bound to every address (0.0.0.0, docker compose): an IP address in Host cannot come from DNS rebinding
    wildcard = settings.model_copy(update={"allowed_hosts": "", "host": "0.0.0.0", "auth": "on"})
    for base, status in (("http://10.1.2.3:8000", 401), ("http://0.0.0.0:8000", 401), ("http://[fd00::5]:8000", 401),
                         ("http://gpu-box.lan:8000", 400)):
        with client_for(wildcard, base) as client:
            assert client.get("/v1/files").status_code == status, base


def test_any_host_is_refused_without_auth(tmp_path):
    with pytest.raises(ValueError, match="STUDIO_ALLOWED_HOSTS"):
        Settings(data_dir=tmp_path, allowed_hosts="*")
    assert Settings(data_dir=tmp_path, allowed_hosts="*", auth="on").allowed_host_list == ["*"]


def test_the_origin_check_compares_the_scheme_and_the_port(laptop):
    with client_for(laptop, "http://localhost:8000") as client:
        cancel = "/v1/fine_tuning/jobs/ftjob-x/cancel"
        for origin in ("https://localhost:8000", "http://localhost", "http://localhost:8001"):
            assert error_of(client.post(cancel, headers={"Origin": origin}), 403)["code"] == "cross_origin_refused"
        assert client.post(cancel, headers={"Origin": "http://localhost:8000"}).status_code == 404  # the route
    with client_for(laptop, "https://localhost") as client:  # https on its default port
        assert client.post(cancel, headers={"Origin": "https://localhost:443"}).status_code == 404
        assert client.post(cancel, headers={"Origin": "http://localhost"}).status_code == 403


@pytest.mark.parametrize("path", ["/v1/fine_tuning/jobs/ftjob-x/events/stream/", "/v1/adapters/a/versions/1/download/",
                                  "/v1/files/", "/v1/fine_tuning/jobs/"])
def test_a_url_with_a_key_is_never_redirected(settings, path):
    for auth, status in (("off", 404), ("on", 401)):  # with auth on, the key check answers first
        with client_for(settings.model_copy(update={"auth": auth}), "http://localhost:8000",
                        follow_redirects=False) as client:
            response = client.get(path, params={"api_key": SECRET, "limit": 2})
            error = error_of(response, status)
            assert "location" not in response.headers and SECRET not in response.text
            if auth == "off":  # Starlette would redirect to the path without its slash
                assert error["code"] == "unknown_url" and "api_key" in error["message"]
                assert client.get(path, params={"limit": 2}).status_code == 307  # without a key it still does


def test_the_key_is_checked_before_the_body(settings):
    auth = settings.model_copy(update={"auth": "on", "max_request_bytes": 1000})
    with client_for(auth, "http://localhost:8000") as client:
        for response in (
            client.post("/v1/fine_tuning/jobs", content=b"{not json", headers={"Content-Type": "application/json"}),
            client.post("/v1/chat/completions", json={"model": 5, "messages": "nope"}),
            client.post("/v1/estimate", content=b"[" * 5000, headers={"Content-Type": "application/json"}),
            client.post("/v1/files", content=b"--x\r\nnot multipart", headers={"Content-Type": "multipart/form-data"}),
            client.put("/v1/adapters/a/aliases/prod", content=b"{", headers=bearer("sk-studio-wrong")),
        ):
            assert error_of(response, 401)["code"] in ("missing_api_key", "invalid_api_key"), response.request.url


def test_pages_cannot_be_framed_and_carry_a_csp(settings):
    with client_for(settings, "http://localhost:8000") as client:
        for path in ("/", "/jobs", "/docs", "/redoc", "/v1/files", "/openapi.json", "/nope"):
            headers = client.get(path).headers
            assert headers["x-frame-options"] == "DENY", path
            assert "frame-ancestors 'none'" in headers["content-security-policy"], path
            assert headers["x-content-type-options"] == "nosniff", path
        csp = client.get("/").headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe" not in csp


# --- a real `studio api`: uvicorn's own access log and its client addresses ------------------------------


def studio_api(tmp_path, **env) -> tuple[subprocess.Popen, str]:
    """`studio api` on a free port (its output in `tmp_path/api.log`), as a person would run it."""
    port = free_port()
    full = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_")}
    full.update(STUDIO_DATA_DIR=str(tmp_path / "data"), STUDIO_REDIS_URL="redis://127.0.0.1:9/0",
                STUDIO_RELAY_ENABLED="false", STUDIO_SCHEDULER_ENABLED="false", **env)
    with open(tmp_path / "api.log", "w") as log:  # the child keeps its own copy of the file
        proc = subprocess.Popen([sys.executable, "-m", "backend.cli", "api", "--port", str(port)], cwd=REPO,
                                env=full, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        assert proc.poll() is None, (tmp_path / "api.log").read_text()
        try:
            httpx.get(f"{base}/healthz", timeout=2)
            return proc, base
        except httpx.HTTPError:
            assert time.time() < deadline, "studio api did not start"
            time.sleep(0.2)


def stop(proc: subprocess.Popen, tmp_path) -> str:
    """Stop the server; its whole log."""
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return (tmp_path / "api.log").read_text()


def test_keys_never_reach_the_access_log_and_forwarded_for_needs_a_trusted_proxy(tmp_path):
    proc, base = studio_api(tmp_path, STUDIO_RATE_LIMIT="3/minute")
    try:
        with httpx.Client(base_url=base, timeout=10, follow_redirects=False) as http:
            for path in ("/v1/files", "/v1/files/", "/v1/fine_tuning/jobs/ftjob-x/events/stream/",
                         "/v1/adapters/a/versions/1/download/", "/docs", "/v1/fine_tuning/jobs/ftjob-x/events/stream"):
                response = http.get(path, params={"api_key": SECRET, "keep": "me"})
                assert SECRET not in response.text and SECRET not in str(response.headers)
            # a spoofed X-Forwarded-For neither hides the caller in the log nor buys a fresh rate budget
            answers = [http.get("/v1/files", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
                       for i in range(4)]
    finally:
        text = stop(proc, tmp_path)
    assert "GET /v1/files?keep=me HTTP/1.1" in text, text[-3000:]  # the access log is on, the key is gone
    assert SECRET not in text and "api_key" not in text
    assert "203.0.113." not in text and "127.0.0.1:" in text
    assert answers[-1] == 429, answers  # /v1/files was called 2x above + 4 here against 3/minute


def test_forwarded_for_is_used_from_a_configured_proxy(tmp_path):
    proc, base = studio_api(tmp_path, STUDIO_TRUSTED_PROXIES="127.0.0.1")
    try:
        with httpx.Client(base_url=base, timeout=10) as http:
            assert http.get("/v1/files", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 200
    finally:
        text = stop(proc, tmp_path)
    assert '203.0.113.7:0 - "GET /v1/files HTTP/1.1" 200' in text, text[-3000:]


@pytest.mark.parametrize("query", [b"api_key=SECRET&keep=me", b"keep=me&api%5Fkey=SECRET", b"%61pi_key=SECRET&keep=me"])
def test_the_key_is_scrubbed_however_it_is_spelled(query):
    import asyncio

    from backend.api.guards import QueryKey

    async def app(scope, receive, send):
        pass

    scope = {"type": "http", "method": "GET", "path": "/v1/files", "query_string": query, "headers": []}
    asyncio.run(QueryKey(app)(scope, None, None))
    assert scope["query_string"] == b"keep=me"  # in place: uvicorn's access log reads this dict


def test_forwarded_host_and_scheme_count_only_from_a_trusted_proxy(laptop):
    # a TLS proxy in front: the browser's page is https://studio.example.com, the proxy speaks http to us
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "studio.example.com",
                 "Origin": "https://studio.example.com"}
    cancel = "/v1/fine_tuning/jobs/ftjob-x/cancel"
    with client_for(laptop.model_copy(update={"trusted_proxies": "testclient"}), "http://localhost:8000") as client:
        assert client.post(cancel, headers=forwarded).status_code == 404  # same origin: on to the route
    with client_for(laptop, "http://localhost:8000") as client:  # anyone else's X-Forwarded-* count for nothing
        assert error_of(client.post(cancel, headers=forwarded), 403)["code"] == "cross_origin_refused"
