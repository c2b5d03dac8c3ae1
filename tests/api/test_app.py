"""The app shell: health, the error envelope on every path, stable operation ids."""

from __future__ import annotations

from fastapi.testclient import TestClient

from backend.app import create_app
from backend.settings import Settings


def _envelope(response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def test_healthz(client):
    response = client.get("/healthz")
    body = response.json()
    assert body["database"] == "ok" and body["redis"] in ("ok", "unavailable") and body["workers"] == 0
    # healthy exactly when every dependency is; with no Redis reachable the service is degraded (503)
    assert (response.status_code, body["status"]) == ((200, "ok") if body["redis"] == "ok" else (503, "degraded"))


def test_healthz_reports_an_unreachable_database(tmp_path):
    settings = Settings(data_dir=tmp_path, database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    with TestClient(create_app(settings, migrate=False)) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "degraded" and response.json()["database"] == "unavailable"


def test_unknown_route_is_404_envelope(client):
    error = _envelope(client.get("/v1/nothing-here"), 404)
    assert error["type"] == "invalid_request_error" and "/v1/nothing-here" in error["message"]


def test_wrong_method_is_405_envelope(client):
    response = client.put("/v1/files")
    error = _envelope(response, 405)
    assert error["code"] == "method_not_allowed" and "GET" in error["message"] and "POST" in error["message"]
    assert "POST" in response.headers["allow"]
    _envelope(client.post("/v1/files/file-x"), 405)


def test_validation_error_is_422_envelope_naming_the_field(client):
    error = _envelope(client.get("/v1/files", params={"limit": 500}), 422)
    assert error["type"] == "invalid_request_error" and error["param"] == "limit"
    assert "'limit'" in error["message"]


def test_unexpected_error_is_500_without_traceback(app):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internal detail /etc/shadow")

    with TestClient(app, raise_server_exceptions=False) as client:
        error = _envelope(client.get("/boom"), 500)
    assert error["type"] == "server_error"
    assert "secret" not in error["message"] and "Traceback" not in error["message"]


def test_api_error_keeps_its_fields(app):
    from backend.api.errors import APIError

    @app.get("/teapot")
    def teapot():
        raise APIError(418, "short and stout", param="spout", code="teapot")

    with TestClient(app) as client:
        error = _envelope(client.get("/teapot"), 418)
    assert error == {"message": "short and stout", "type": "invalid_request_error", "param": "spout",
                     "code": "teapot"}


def test_openapi_has_stable_operation_ids_and_error_schema(client):
    spec = client.get("/openapi.json").json()
    ids = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {"files-create_file", "files-list_files", "files-get_file", "files-get_file_content",
            "files-delete_file", "health-healthz"} <= ids
    upload = spec["paths"]["/v1/files"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert upload["responses"]["4XX"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")


def test_root_serves_a_page_until_the_dashboard_is_built(client):
    response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "Fine-tuning Studio" in response.text and "/docs" in response.text
