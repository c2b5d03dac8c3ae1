"""DESIGN §5: base models load with `trust_remote_code=False` (a model repository's own Python never runs).

transformers defaults to False, so the rule checked here is that no call anywhere in the studio passes
anything else: every `trust_remote_code=` keyword (or dict key) in worker/ and backend/ is the constant
False.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        values = []
        if isinstance(node, ast.keyword) and node.arg == "trust_remote_code":
            values.append(node.value)
        elif isinstance(node, ast.Dict):
            values += [v for k, v in zip(node.keys, node.values, strict=True)
                       if isinstance(k, ast.Constant) and k.value == "trust_remote_code"]
        for value in values:
            if not (isinstance(value, ast.Constant) and value.value is False):
                found.append(f"{path.relative_to(REPO)}:{value.lineno}: trust_remote_code={ast.unparse(value)}")
    return found


def test_remote_code_is_never_trusted():
    files = [p for folder in ("worker", "backend") for p in (REPO / folder).rglob("*.py")]
    assert len(files) > 20
    assert [o for path in files for o in offences(path)] == []
    # and the loaders do say it, so a change of transformers' default cannot turn it on
    models = (REPO / "worker" / "finetune" / "models.py").read_text(encoding="utf-8")
    assert models.count("trust_remote_code=False") >= 3


def test_hub_kernels_are_never_loaded():
    """transformers 5 swaps layers for kernels downloaded from the hub unless told not to (remote code)."""
    import torch

    from worker.finetune.models import load_model, resolve_model

    model = load_model(resolve_model("studio-tiny-llama"), dtype=torch.float32)
    assert model.use_kernels is False
