"""Settings: defaults, the STUDIO_ prefix, and refusing an unsafe auth setting."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from backend.settings import Settings, get_settings, is_loopback


def test_defaults(tmp_path):
    s = Settings(data_dir=tmp_path)
    assert s.database_url == f"sqlite:///{tmp_path / 'studio.db'}"
    assert s.redis_url is None and s.host == "127.0.0.1" and s.port == 8000
    assert s.auth == "off" and not s.auth_enabled
    assert s.max_upload_bytes == 512 * 1024 * 1024 and s.max_job_attempts == 3
    assert s.files_dir == tmp_path / "files" and s.jobs_dir == tmp_path / "jobs"


def test_data_dir_default_is_home(monkeypatch):
    monkeypatch.delenv("STUDIO_DATA_DIR", raising=False)
    monkeypatch.delenv("STUDIO_DATABASE_URL", raising=False)
    assert Settings().data_dir == Path("~/.studio").expanduser().resolve()


def test_reads_studio_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STUDIO_REDIS_URL", "redis://r:6379/0")
    monkeypatch.setenv("STUDIO_PORT", "9000")
    monkeypatch.setenv("STUDIO_MODEL_DIRS", os.pathsep.join(["/models/a", "", "/models/b"]))
    monkeypatch.setenv("STUDIO_MAX_UPLOAD_BYTES", "1024")
    s = Settings()
    assert s.data_dir == tmp_path and s.redis_url == "redis://r:6379/0" and s.port == 9000
    assert s.model_dir_list == [Path("/models/a"), Path("/models/b")] and s.max_upload_bytes == 1024


def test_auth_defaults_on_for_a_public_host(tmp_path):
    assert Settings(data_dir=tmp_path, host="0.0.0.0").auth == "on"
    assert Settings(data_dir=tmp_path, host="::1").auth == "off"
    assert Settings(data_dir=tmp_path, host="localhost", auth="on").auth_enabled


def test_auth_off_on_a_public_host_is_refused(tmp_path):
    with pytest.raises(ValidationError, match="STUDIO_AUTH=off is refused"):
        Settings(data_dir=tmp_path, host="0.0.0.0", auth="off")


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.8.0.1", True), ("::1", True),
                                            ("[::1]", True), ("localhost", True), ("0.0.0.0", False),
                                            ("10.0.0.5", False), ("studio.example.com", False)])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_get_settings_is_cached():
    assert get_settings() is get_settings()
