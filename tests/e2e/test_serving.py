"""The backend serves the dashboard's build: index.html at / and for client-side routes, hashed assets
under /assets, and never shadows the API (an unknown /v1 path is still the JSON error envelope)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.api import home
from backend.app import create_app
from backend.settings import Settings

REPO = Path(__file__).resolve().parents[2]
INDEX = "<!doctype html><title>Fine-tuning Studio</title><div id=root></div>"


@pytest.fixture()
def client(tmp_path, monkeypatch):
    build = tmp_path / "dist"
    (build / "assets").mkdir(parents=True)
    (build / "index.html").write_text(INDEX)
    (build / "assets" / "index-abc123.js").write_text("console.log('ui')")
    (tmp_path / "secret.txt").write_text("outside the build")
    monkeypatch.setattr(home, "FRONTEND_BUILD", build)
    settings = Settings(data_dir=tmp_path / "data", relay_enabled=False)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.mark.parametrize("path", ["/", "/jobs", "/jobs/new", "/jobs/ftjob-01ABC", "/registry/my-adapter", "/datasets/f/",
                                  "/playground?model=a%3A1", "/compare?runs=a,b"])
def test_client_routes_get_the_app(client, path):
    response = client.get(path)
    assert response.status_code == 200, path
    assert response.text == INDEX
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-cache"


def test_assets_are_served_with_long_caching(client):
    response = client.get("/assets/index-abc123.js")
    assert response.status_code == 200 and "console.log" in response.text
    assert "immutable" in response.headers["cache-control"]


@pytest.mark.parametrize("path", ["/assets/missing.js", "/assets/..%2Fsecret.txt", "/assets/%2e%2e%2fsecret.txt",
                                  "/assets/", "/assets/.hidden"])
def test_assets_never_leave_the_build(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "outside the build" not in response.text


def test_dot_segments_are_resolved_before_routing(client):
    response = client.get("/assets/../secret.txt")  # the URL is /secret.txt: a client route, not a file
    assert "outside the build" not in response.text


@pytest.mark.parametrize("path", ["/v1/no-such-thing", "/v1", "/healthz/x", "/openapi.json/x", "/jobsx", "/no/page"])
def test_other_paths_are_never_the_app(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.text != INDEX
    assert "error" in response.json() or "detail" in response.json()


def test_routes_added_later_are_not_shadowed(client):
    @client.app.get("/later")
    def later():
        return {"ok": True}

    assert client.get("/later").json() == {"ok": True}


def test_every_top_level_page_of_the_app_is_served():
    router = (REPO / "frontend" / "src" / "routes" / "router.tsx").read_text()
    sections = {p.split("/")[0] for p in re.findall(r'path: "([^"*]+)"', router)}
    assert sections == set(home.CLIENT_SECTIONS)


def test_api_docs_and_schema_still_answer(client):
    assert client.get("/openapi.json").json()["info"]["title"] == "Fine-tuning Studio"
    assert "swagger" in client.get("/docs").text.lower()
    assert client.get("/v1/files").json()["object"] == "list"


def test_plain_page_until_built(client, tmp_path, monkeypatch):
    monkeypatch.setattr(home, "FRONTEND_BUILD", tmp_path / "not-built")
    for path in ("/", "/jobs"):
        response = client.get(path)
        assert response.status_code == 200 and "make install" in response.text
