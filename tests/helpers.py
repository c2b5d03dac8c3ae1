"""Helpers shared by tests."""

from __future__ import annotations

import json

from backend.embedded import free_port as free_port  # the studio's own, so tests pick ports as it does


def job(model: str, training_file: str, **overrides) -> dict:
    """A job body with small, fast settings; `overrides` merge one level deep (`method` replaces)."""
    body = {
        "model": model, "training_file": training_file, "seed": 7,
        "method": {"type": "supervised", "supervised": {"hyperparameters": {"batch_size": 4, "n_epochs": 1}}},
        "tuning": {"type": "lora"},
        "training": {"max_seq_length": 128, "max_steps": 3, "logging_steps": 1, "warmup_ratio": 0.0},
    }
    for key, value in overrides.items():
        if key != "method" and isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value
    return json.loads(json.dumps(body))
