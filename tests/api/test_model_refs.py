"""Model references over HTTP (issue 9): long names are a clear 4xx everywhere, sizes above the model's
width are refused before queueing, a typed hub id or folder can be checked with GET /v1/models/{id},
and no answer names a server path. Real Redis and app (tests/api/jobs_support.py), no network."""

from __future__ import annotations

import json

import pytest

from tests.api.jobs_support import *
from tests.api.jobs_support import error_of, job, sent_tasks
from tests.hf_cache import cache_hub_model

JOBS = "/v1/fine_tuning/jobs"
LONG_NAMES = ["a" * 300, "org/" + "b" * 300, "/" + "c" * 300, "d" * 300 + "@main", "e" * 300 + ":3"]


@pytest.mark.parametrize("name", LONG_NAMES)
def test_a_300_character_model_name_is_a_clear_4xx_everywhere(jobs_client, chat_file_id, redis, name):
    answers = {
        "get": (jobs_client.get(f"/v1/models/{name}"), 404),
        "job": (jobs_client.post(JOBS, json=job(name, chat_file_id)), 400),
        "estimate": (jobs_client.post("/v1/estimate", json={"model": name}), 400),
        "chat": (jobs_client.post("/v1/chat/completions",
                                  json={"model": name, "messages": [{"role": "user", "content": "hi"}]}), None),
    }
    for route, (response, status) in answers.items():
        assert 400 <= response.status_code < 500, (route, response.status_code, response.text[:300])
        assert status is None or response.status_code == status, (route, response.status_code)
        error = response.json()["error"]
        assert error["param"] == "model" and "Traceback" not in error["message"], (route, error)
    assert sent_tasks(redis) == []


@pytest.mark.parametrize("tuning, field", [
    ({"type": "lora", "r": 2048}, "tuning.r"),
    ({"type": "adapter", "bottleneck_size": 4096}, "tuning.bottleneck_size"),
])
def test_a_rank_above_the_models_width_is_refused_before_queueing(jobs_client, chat_file_id, redis, tuning, field):
    """The demo is 256 wide: r=2048 would train ~8x the model's own size ("1104 % trainable")."""
    for body in (job("studio-tiny-llama", chat_file_id, tuning=tuning),
                 {"model": "studio-tiny-llama", "tuning": tuning}):
        path = JOBS if "training_file" in body else "/v1/estimate"
        error = error_of(jobs_client.post(path, json=body), 400)
        assert error["param"] == field and "256" in error["message"], error
    assert sent_tasks(redis) == []


def test_get_model_checks_a_typed_hub_id_or_folder(jobs_client, model_dir, monkeypatch):
    """What the new-job form calls as a user types: a cached hub id answers with its modules, an uncached
    one (offline) with what to do, a relative path with why not."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache_hub_model("acme/tiny-chat", model_dir / "my-llama",  # its (empty) safetensors, and this config
                    config=json.dumps({"model_type": "qwen2", "hidden_size": 64}))
    found = jobs_client.get("/v1/models/acme/tiny-chat")
    assert found.status_code == 200, found.text
    assert found.json()["owned_by"] == "hub" and "q_proj" in found.json()["modules"]
    missing = error_of(jobs_client.get("/v1/models/acme/not-cached"), 404)
    assert "HF_HUB_OFFLINE" in missing["message"] and "hf download acme/not-cached" in missing["message"]
    relative = error_of(jobs_client.get("/v1/models/..%2Fmodels%2Fmy-llama"), 404)  # not normalised away
    assert "relative path is never loaded" in relative["message"] and str(model_dir) not in relative["message"]
    assert jobs_client.get(f"/v1/models/{model_dir / 'my-llama'}").status_code == 200


def test_missing_and_forbidden_folders_answer_alike(jobs_client, chat_file_id, model_dir, tmp_path, job_settings):
    """A member cannot tell which server folders exist: same message, never a server path."""
    (tmp_path / "secret-model").mkdir()
    (tmp_path / "secret-model" / "config.json").write_text("{}")
    (tmp_path / "secret-model" / "model.safetensors").write_bytes(b"")
    refs = [str(tmp_path / "secret-model"), str(tmp_path / "nothing-here"), str(model_dir / "absent"), "absent",
            "/etc", "/proc/self"]
    messages = set()
    for ref in refs:
        for response, status in ((jobs_client.post(JOBS, json=job(ref, chat_file_id)), 400),
                                 (jobs_client.get(f"/v1/models/{ref}"), 404)):
            error = error_of(response, status)
            messages.add(error["message"].replace(ref, "<ref>"))
            assert str(model_dir) not in error["message"].replace(ref, "")
            assert str(job_settings.data_dir) not in error["message"]
    assert len(messages) == 1, messages


def test_estimates_take_a_folder_with_config_json_alone(jobs_client, chat_file_id, model_dir):
    """Planning a 70B run needs its config only; training the same folder is refused (no weights)."""
    (model_dir / "plan-70b").mkdir()
    (model_dir / "plan-70b" / "config.json").write_text(json.dumps(
        {"model_type": "llama", "hidden_size": 8192, "num_hidden_layers": 80}))
    too_wide = {"model": "plan-70b", "tuning": {"type": "adapter", "bottleneck_size": 16384}}
    # the model check passed and read the config: what is refused is the size it knows from it
    error = error_of(jobs_client.post("/v1/estimate", json=too_wide), 400)
    assert error["param"] == "tuning.bottleneck_size" and "8192" in error["message"], error
    refused = error_of(jobs_client.post(JOBS, json=job("plan-70b", chat_file_id)), 400)
    assert "no .safetensors weights" in refused["message"]


def test_offline_chat_with_an_uncached_hub_id_is_404_at_once(jobs_client, monkeypatch):
    """No inference worker is asked (none runs here): the API's cache lookup answers."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    chat = {"model": "acme/never-downloaded", "messages": [{"role": "user", "content": "hi"}]}
    error = error_of(jobs_client.post("/v1/chat/completions", json=chat), 404)
    assert error["code"] == "model_not_found" and error["param"] == "model"
