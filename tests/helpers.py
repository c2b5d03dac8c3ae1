"""Helpers shared by tests."""

from __future__ import annotations

import json
import socket


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


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
