"""DESIGN §1: the training core never imports the web, queue or database layers."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import REPO

FORBIDDEN = ("celery", "fastapi", "sqlalchemy", "redis", "starlette", "kombu", "backend")
CORE = REPO / "worker" / "finetune"


def imported_packages(path) -> set[str]:
    """Top-level packages a module imports (anywhere in it, lazy imports included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_core_modules_import_no_service_layer():
    """Our own imports only: third-party libraries (peft pulls in redis when it is installed) are theirs."""
    offenders = {path.name: sorted(imported_packages(path) & set(FORBIDDEN)) for path in CORE.rglob("*.py")}
    assert {name: bad for name, bad in offenders.items() if bad} == {}
    assert len(offenders) >= 12  # the scan really saw the core


def test_spec_and_data_are_torch_free():
    """The API validates jobs and uploads with these; they must not drag in torch."""
    code = ("import sys, worker.finetune.spec, worker.finetune.data\n"
            "print([m for m in ('torch', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
