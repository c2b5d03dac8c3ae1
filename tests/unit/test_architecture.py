"""DESIGN §1: the training core never imports the web, queue or database layers."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

FORBIDDEN = ("celery", "fastapi", "sqlalchemy", "redis", "starlette", "backend")
CORE = ("spec", "data", "models", "methods", "batching", "train", "trainer", "artifacts", "estimate", "bottleneck",
        "reporting", "cli")


def test_core_modules_import_no_service_layer():
    code = ("import sys\n" + "".join(f"import worker.finetune.{m}\n" for m in CORE) +
            f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\nprint(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_spec_and_data_are_torch_free():
    """The API validates jobs and uploads with these; they must not drag in torch."""
    code = ("import sys, worker.finetune.spec, worker.finetune.data\n"
            "print([m for m in ('torch', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
