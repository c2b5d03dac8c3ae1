"""The dashboard's API types (frontend/src/api/schema.d.ts) are generated from the backend's OpenAPI schema
and never edited by hand: this fails when they are stale. Fix with `cd frontend && npm run gen:api`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO

FRONTEND = REPO / "frontend"


def test_generated_api_types_match_the_backend():
    node = shutil.which("node")
    if node is None or not (FRONTEND / "node_modules" / "openapi-typescript").is_dir():
        pytest.fail("the frontend's packages are not installed (node_modules); run `make install`")
    result = subprocess.run([node, "scripts/gen-api.mjs", "--check"], cwd=FRONTEND, capture_output=True, text=True,
                            env={**os.environ, "STUDIO_PYTHON": sys.executable}, timeout=300)
    assert result.returncode == 0, result.stderr or result.stdout
