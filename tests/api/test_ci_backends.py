"""Under CI an unreachable PostgreSQL fails the API tests instead of silently skipping their half."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import free_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run_healthz_on_postgres(ci: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    # A port nothing listens on: the PostgreSQL backend is unreachable.
    env["STUDIO_TEST_POSTGRES_URL"] = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/api/test_app.py", "-q", "-p", "no:cacheprovider",
         "-k", "test_healthz and postgresql and not unreachable"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_unreachable_postgres_fails_under_ci_and_skips_elsewhere():
    under_ci = _run_healthz_on_postgres("true")
    assert under_ci.returncode != 0, under_ci.stdout[-2000:]
    assert "CI must run the PostgreSQL half" in under_ci.stdout
    outside = _run_healthz_on_postgres(None)
    assert outside.returncode == 0, outside.stdout[-2000:]
    assert "skipped" in outside.stdout
