"""`studio train` / `studio estimate` as a user runs them: one clear line on bad input, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import EXAMPLES, REPO
from tests.helpers import job


def studio(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "worker.finetune", *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ}, timeout=300)


def write(tmp_path: Path, body: dict) -> Path:
    path = tmp_path / "job.json"
    path.write_text(json.dumps(body))
    return path


def test_train_writes_the_artifact_and_prints_a_summary(tiny_model, chat_file, tmp_path):
    body = job(tiny_model, chat_file, training={"max_steps": 2})
    out = tmp_path / "out"
    proc = studio("train", str(write(tmp_path, body)), "--output-dir", str(out), "--events", str(tmp_path / "ev.jsonl"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("succeeded: 2 steps")
    assert (out / "adapter_model.safetensors").exists() and len((out / "metrics.jsonl").read_text().splitlines()) == 2
    events = [json.loads(line) for line in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert {"message", "metrics"} <= {e["type"] for e in events}
    assert "Traceback" not in proc.stderr


def test_relative_training_file_is_relative_to_the_job_file(tiny_model, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "rows.jsonl").write_text((EXAMPLES / "alpaca.jsonl").read_text())
    body = job(tiny_model, "d/rows.jsonl", training={"max_steps": 1})
    proc = studio("train", str(write(tmp_path, body)), "-o", str(tmp_path / "o"), "-q")
    assert proc.returncode == 0, proc.stderr


def bad(tmp_path, body) -> str:
    proc = studio("train", str(write(tmp_path, body)), "-o", str(tmp_path / "o"), "-q")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    return proc.stderr


def test_bad_spec_is_one_clear_line(tiny_model, chat_file, tmp_path):
    assert "tuning.r: Input should be greater than or equal to 1 (got 0)" in bad(
        tmp_path, job(tiny_model, chat_file, tuning={"type": "lora", "r": 0}))
    assert "training.lora_r: unknown field" in bad(tmp_path, job(tiny_model, chat_file, training={"lora_r": 8}))


def test_bad_data_names_line_and_field(tiny_model, tmp_path):
    err = bad(tmp_path, job(tiny_model, str(EXAMPLES / "bad" / "unknown_role.jsonl")))
    assert "line 2" in err and "messages[1].role" in err and "'bot'" in err
    assert "line 3" in bad(tmp_path, job(tiny_model, str(EXAMPLES / "bad" / "truncated_line.jsonl")))


def test_unknown_model_and_paths_outside_model_dirs(chat_file, tmp_path):
    assert "Model 'nope' was not found or is not allowed" in bad(tmp_path, job("nope", chat_file))
    assert "Model '/etc' was not found or is not allowed" in bad(tmp_path, job("/etc", chat_file))


def test_unknown_target_module_lists_valid_names(tiny_model, chat_file, tmp_path):
    err = bad(tmp_path, job(tiny_model, chat_file, tuning={"type": "lora", "target_modules": ["c_attn"]}))
    assert "c_attn" in err and "q_proj" in err and "down_proj" in err


def test_not_json(tmp_path):
    path = tmp_path / "job.json"
    path.write_text("{nope")
    proc = studio("train", str(path))
    assert proc.returncode == 2 and "is not valid JSON" in proc.stderr and "Traceback" not in proc.stderr


def test_estimate_prints_parameters_and_memory(tmp_path):
    body = {"model": "studio-tiny-llama", "training_file": "unused.jsonl", "tuning": {"type": "qlora", "r": 8}}
    proc = studio("estimate", str(write(tmp_path, body)), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert 0 < result["trainable_params"] < result["total_params"]
    assert set(result["memory"]) == {"weights", "adapter", "gradients", "optimizer", "activations", "total"}


def test_the_readme_65b_example_estimates_65b_under_48_gb():
    """examples/qlora_65b_estimate.json prices LLaMA-65B from the config shipped in examples/models."""
    proc = subprocess.run([sys.executable, "-m", "worker.finetune", "estimate", "examples/qlora_65b_estimate.json",
                           "--json"], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "STUDIO_MODEL_DIRS": "examples/models"})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert 65.0e9 < result["total_params"] < 65.5e9
    assert result["memory"]["total"] < 48e9
