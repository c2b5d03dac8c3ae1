"""docker-compose.yml cannot run here (no Docker engine); check its services and wiring instead."""

from __future__ import annotations

import yaml

from backend.settings import Settings
from tests.conftest import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def env(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in SERVICES[service]["environment"].items()}


def test_services_and_health_checks():
    assert set(SERVICES) == {"postgres", "redis", "api", "worker"}
    assert all("healthcheck" in spec for spec in SERVICES.values())


def test_settings_wiring_matches_the_settings_class():
    fields = {f"STUDIO_{name.upper()}" for name in Settings.model_fields}
    for service in ("api", "worker"):
        assert set(k for k in env(service) if k.startswith("STUDIO_")) <= fields, service
    api = env("api")
    assert api["STUDIO_DATABASE_URL"].startswith("postgresql+psycopg://") and "@postgres:5432/" in api["STUDIO_DATABASE_URL"]
    assert api["STUDIO_REDIS_URL"] == env("worker")["STUDIO_REDIS_URL"] == "redis://redis:6379/0"
    assert api["STUDIO_AUTH"] == "on"  # not loopback: auth must be on
    settings = Settings(**{k.removeprefix("STUDIO_").lower(): v for k, v in api.items()})
    assert settings.auth_enabled


def test_api_and_worker_share_storage_and_wait_for_their_dependencies():
    mounts = {service: {v.split(":")[1] for v in SERVICES[service]["volumes"]} for service in ("api", "worker")}
    assert env("api")["STUDIO_DATA_DIR"] in mounts["api"] and env("worker")["STUDIO_DATA_DIR"] in mounts["worker"]
    assert [v for v in SERVICES["api"]["volumes"] if v.endswith(":/data")] == [
        v for v in SERVICES["worker"]["volumes"] if v.endswith(":/data")]
    assert SERVICES["api"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert SERVICES["worker"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "8000:8000" in SERVICES["api"]["ports"]


def test_worker_reserves_a_gpu():
    devices = SERVICES["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "--gpus" in SERVICES["worker"]["command"]
