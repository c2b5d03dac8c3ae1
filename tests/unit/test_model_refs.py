"""What a job's `model` names is decided from its text (worker/finetune/model_refs): a relative folder is
never loaded, whatever suffix it carries; hub ids load from their HF cache snapshot; estimates need only a
config.json. Real tiny models, the real HF cache layout (tests/hf_cache.py), no network."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import torch

from tests.hf_cache import cache_hub_model
from worker.finetune.estimate import estimate
from worker.finetune.models import ModelError, load_model, resolve_model
from worker.finetune.spec import parse_spec


@pytest.fixture
def relative_model(tiny_model, tmp_path, monkeypatch) -> str:
    """A real model folder at `examples/some-model`, relative to the working directory."""
    shutil.copytree(tiny_model, tmp_path / "examples" / "some-model")
    monkeypatch.chdir(tmp_path)
    return "examples/some-model"


@pytest.mark.parametrize("suffix", ["@main", "", "@v1.0"])
def test_a_relative_folder_is_never_loaded_whatever_its_suffix(relative_model, suffix):
    def load(ref: str):
        return load_model(resolve_model(ref), dtype=torch.float32)

    with pytest.raises(ModelError) as caught:
        load(relative_model + suffix)
    assert "not in the cache" in str(caught.value)  # looked up as a hub id, never as the folder
    for ref in ("./" + relative_model, "../" + Path.cwd().name + "/" + relative_model):
        with pytest.raises(ModelError, match="relative path is never loaded"):
            load(ref)


def test_a_cached_hub_id_loads_from_its_snapshot_not_a_same_named_folder(tiny_model, relative_model):
    """`examples/some-model` exists in the working dir AND in the HF cache: the cache's copy is loaded."""
    snapshot = cache_hub_model("examples/some-model", Path(tiny_model))
    resolved = resolve_model("examples/some-model@main")
    assert resolved.source == "hub" and Path(resolved.path) == snapshot.resolve()
    assert resolved.revision == snapshot.name  # the commit, for the lineage
    model = load_model(resolved, dtype=torch.float32)
    assert model.config.hidden_size == 64
    assert model.name_or_path == "examples/some-model"  # what an adapter records: portable, no cache path


def test_offline_an_uncached_hub_id_fails_in_seconds(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE") as caught:
        resolve_model("acme/not-downloaded")
    assert time.monotonic() - started < 2
    assert "hf download acme/not-downloaded" in str(caught.value)


def test_online_an_unreachable_hub_fails_in_seconds_too():
    started = time.monotonic()  # tests/conftest.py points HF_ENDPOINT at a closed port
    with pytest.raises(ModelError, match="could not be reached"):
        resolve_model("acme/not-downloaded")
    assert time.monotonic() - started < 5


def test_missing_and_forbidden_folders_get_the_same_answer(tiny_model, tmp_path):
    def message(ref: str) -> str:
        with pytest.raises(ModelError) as caught:
            resolve_model(ref)
        return str(caught.value).replace(ref, "<ref>")

    outside = tmp_path / "outside"
    shutil.copytree(tiny_model, outside)  # a real model, but not in an allowed dir
    inside_missing = str(Path(tiny_model).parent / "missing")
    answers = {message(str(outside)), message("/etc"), message(inside_missing), message("no-such-model")}
    assert len(answers) == 1, answers
    assert str(Path(tiny_model).parent) not in answers.pop()


def test_estimates_need_only_the_config_training_needs_weights(tiny_model, studio_data_dir):
    folder = studio_data_dir / "models" / "config-only"
    folder.mkdir(exist_ok=True)
    shutil.copy(Path(tiny_model) / "config.json", folder / "config.json")
    spec = parse_spec({"model": "config-only", "training_file": "t.jsonl", "tuning": {"type": "lora", "r": 8}})
    est = estimate(spec)
    assert 0 < est.trainable_params < est.total_params
    with pytest.raises(ModelError, match="no .safetensors weights"):
        resolve_model("config-only")


def test_studio_estimate_refuses_a_rank_above_the_width_in_one_line(tiny_model, tmp_path):
    """`studio estimate` has no API in front: the core refuses the same sizes (tiny_model is 64 wide)."""
    import json
    import os
    import subprocess
    import sys

    body = tmp_path / "job.json"
    body.write_text(json.dumps({"model": tiny_model, "training_file": "t.jsonl", "tuning": {"type": "lora", "r": 1024}}))
    proc = subprocess.run([sys.executable, "-m", "worker.finetune", "estimate", str(body)], capture_output=True,
                          text=True, env={**os.environ}, timeout=300, check=False)
    assert proc.returncode == 2 and "tuning.r is 1024" in proc.stderr and "64" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_load_failure_does_not_name_the_server_folder(tiny_model, studio_data_dir):
    """Job errors reach members: a broken model folder is named as the job named it, never by its path."""
    folder = studio_data_dir / "models" / "broken-weights"
    shutil.copytree(tiny_model, folder, dirs_exist_ok=True)
    (folder / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelError) as caught:
        load_model(resolve_model("broken-weights"), dtype=torch.float32)
    assert "broken-weights" in str(caught.value)
    assert str(studio_data_dir) not in str(caught.value), str(caught.value)
