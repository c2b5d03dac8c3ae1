"""`/v1/fine_tuning/jobs`: create (every refusal), idempotency, queue position, list, cancel/pause/resume."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from backend.api.errors import APIError
from backend.db.models import Job
from backend.db.session import Database
from backend.services.relay import relay_once
from tests.api.jobs_support import *  # noqa: F401,F403 (fixtures)
from tests.api.jobs_support import dispatch, error_of, job, sent_tasks
from tests.hf_cache import cache_hub_model

JOBS = "/v1/fine_tuning/jobs"
JOB_FIELDS = {"id", "object", "status", "model", "fine_tuned_model", "created_at", "finished_at", "error",
              "trained_tokens", "hyperparameters", "method", "training_file", "validation_file", "suffix", "seed",
              "metadata", "tuning", "training", "priority", "queue_position", "attempt", "progress",
              "trainable_params", "adapter", "estimated_finish", "owner", "team"}


def relay(settings, redis, job_id: str) -> None:
    database = Database(settings.database_url)
    with database.session() as session:
        relay_once(session, redis, job_id, data_dir=settings.data_dir)
    database.dispose()


def test_create_commits_a_queued_job_and_the_scheduler_sends_it(jobs_client, job_app, create, chat_file_id, redis,
                                                                 job_settings):
    body = create(suffix="demo", metadata={"team": "nlp"})
    assert set(body) == JOB_FIELDS
    assert body["id"].startswith("ftjob-") and body["object"] == "fine_tuning.job"
    assert body["status"] == "queued" and body["queue_position"] == 1 and body["attempt"] == 1
    assert body["model"] == "studio-tiny-llama" and body["training_file"] == chat_file_id
    assert body["suffix"] == "demo" and body["seed"] == 7 and body["metadata"] == {"team": "nlp"}
    assert body["method"]["type"] == "supervised"
    assert body["method"]["supervised"]["hyperparameters"] == body["hyperparameters"]
    assert body["hyperparameters"] == {"n_epochs": 1, "batch_size": 4, "learning_rate_multiplier": "auto"}
    assert body["tuning"]["type"] == "lora" and body["tuning"]["r"] == 16
    assert body["training"]["max_steps"] == 3
    assert body["progress"] == {"step": 0, "total_steps": None, "eta_seconds": None}
    assert body["fine_tuned_model"] is None and body["error"] is None and body["adapter"] is None
    assert body["estimated_finish"] is None and body["finished_at"] is None
    assert jobs_client.get(f"{JOBS}/{body['id']}").json() == body
    assert sent_tasks(redis) == []  # it waits in the DB until a worker slot is free

    assert dispatch(job_app, capacity=0) == [] and sent_tasks(redis) == []
    assert dispatch(job_app, capacity=1) == [body["id"]]
    [task] = sent_tasks(redis)
    assert task["task"] == "studio.train"
    kwargs = task["kwargs"]
    assert set(kwargs) == {"job_id", "attempt", "spec", "output_dir", "checkpoint_dir", "resume_from", "dispatch"}
    assert kwargs["job_id"] == body["id"] and kwargs["attempt"] == 1 and kwargs["resume_from"] is None
    assert kwargs["dispatch"].startswith("1:") and redis.get(f"studio:jobs:{body['id']}:dispatch") == kwargs["dispatch"]
    dispatched = jobs_client.get(f"{JOBS}/{body['id']}").json()
    assert dispatched["status"] == "queued" and dispatched["queue_position"] == 1
    assert dispatch(job_app, capacity=1) == [] and len(sent_tasks(redis)) == 1  # the slot is taken
    jobs_dir = job_settings.jobs_dir / body["id"]
    assert kwargs["output_dir"] == str(jobs_dir / "output") and kwargs["checkpoint_dir"] == str(jobs_dir / "checkpoints")
    training_path = Path(kwargs["spec"]["training_file"])
    assert training_path.is_absolute() and training_path.is_file() and training_path.name.startswith(chat_file_id)
    assert kwargs["spec"]["model"] == "studio-tiny-llama" and kwargs["spec"]["tuning"]["type"] == "lora"


def test_queue_position_orders_by_priority_then_age(jobs_client, create):
    low = create()["id"]
    high = create(priority=5)["id"]
    later = create()["id"]
    positions = {j: jobs_client.get(f"{JOBS}/{j}").json()["queue_position"] for j in (low, high, later)}
    assert positions == {high: 1, low: 2, later: 3}
    jobs_client.post(f"{JOBS}/{high}/cancel")
    assert jobs_client.get(f"{JOBS}/{high}").json()["queue_position"] is None
    listed = {j["id"]: j["queue_position"] for j in jobs_client.get(JOBS).json()["data"]}
    assert listed == {high: None, low: 1, later: 2}


@pytest.mark.parametrize("overrides, param, needle", [
    ({"tuning": {"type": "lora", "r": 0}}, "tuning.r", "greater than or equal to 1"),
    ({"tuning": {"type": "lora", "lora_r": 8}}, "tuning.lora_r", "unknown field"),
    ({"tuning": {"type": "lorax"}}, "tuning", "unknown tuning type"),
    ({"training": {"learning_rate": -1}}, "training.learning_rate", "greater than 0"),
    ({"method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 0}}}},
     "method.supervised.hyperparameters.n_epochs", "n_epochs"),
    ({"seed": "seven"}, "seed", "seed"),
    ({"suffix": "../x"}, "suffix", "suffix"),
    ({"model": ""}, "model", "model"),
])
def test_bad_spec_field_is_400_naming_it(jobs_client, chat_file_id, redis, overrides, param, needle):
    body = {**job("studio-tiny-llama", chat_file_id), **overrides}
    response = jobs_client.post(JOBS, json=body)
    error = error_of(response, 400)
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_value"
    assert error["param"] == param and needle in error["message"], error
    assert jobs_client.get(JOBS).json()["data"] == [] and sent_tasks(redis) == []


@pytest.mark.parametrize("metadata", ['{"k": "\\ud800"}', '{"\\udfff": "v"}'])
def test_metadata_with_a_lone_surrogate_is_400_and_nothing_stored(jobs_client, chat_file_id, redis, metadata):
    """A JSON escape like \\ud800 cannot be stored as UTF-8: the value was a 500, the key came back garbled."""
    body = json.dumps(job("studio-tiny-llama", chat_file_id))[:-1] + f', "metadata": {metadata}}}'
    response = jobs_client.post(JOBS, content=body.encode(), headers={"content-type": "application/json"})
    error = error_of(response, 400)
    assert error["param"] == "metadata" and "surrogate" in error["message"], error
    assert jobs_client.get(JOBS).json()["data"] == [] and sent_tasks(redis) == []


@pytest.mark.parametrize("raw", [b"[1, 2]", b"null", b"{not json"])
def test_body_must_be_a_json_object(jobs_client, raw):
    response = jobs_client.post(JOBS, content=raw, headers={"content-type": "application/json"})
    assert response.status_code in (400, 422), response.text
    error_of(response, response.status_code)


@pytest.mark.parametrize("path", [JOBS, "/v1/estimate", "/v1/completions"])
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_json_body_sent_with_another_content_type_says_which_to_send(jobs_client, chat_file_id, path,
                                                                       content_type):
    """The body is a JSON object; only the header is wrong, so 'must be a JSON object' alone misleads."""
    body = json.dumps({**job("studio-tiny-llama", chat_file_id), "prompt": "a"})
    error = error_of(jobs_client.post(path, content=body, headers={"content-type": content_type}), 400)
    assert "Content-Type: application/json" in error["message"], error


@pytest.mark.parametrize("path", [JOBS, "/v1/estimate"])
@pytest.mark.parametrize("model", ["support-bot:1", "teama.support-bot@production", "support-bot:2:ckpt-step-15",
                                   "ft:studio-tiny-llama:lora:01M912NYNY8C101ZD48JZTY3A4:ckpt-step-2"])
def test_an_adapter_name_as_base_says_to_use_its_base(jobs_client, chat_file_id, path, model):
    """GET /v1/models lists adapters, and 'Unknown model …: use a model from GET /v1/models' contradicted it."""
    error = error_of(jobs_client.post(path, json=job(model, chat_file_id)), 400)
    assert error["param"] == "model" and "adapter" in error["message"] and "parent" in error["message"], error
    assert "GET /v1/models," not in error["message"]


@pytest.mark.parametrize("path, cursor", [(JOBS, "file-01M9131CT87SCMQF46P1D2ZVMG"), (JOBS, "ftjob-nope"),
                                          ("/v1/files", "ftjob-01M9131CT87SCMQF46P1D2ZVMG"), ("/v1/files", "x")])
def test_a_cursor_that_is_not_an_id_of_the_list_is_a_400(jobs_client, create, path, cursor):
    """`WHERE id < after` took any text: another kind's id listed nothing, a typo listed from the start."""
    create()
    error = error_of(jobs_client.get(path, params={"after": cursor}), 400)
    assert error["param"] == "after" and cursor in error["message"], error
    last = jobs_client.get(path, params={"limit": 1}).json()["data"][0]["id"]
    assert jobs_client.get(path, params={"after": last}).status_code == 200  # a real id still pages


def test_missing_training_file_field_names_it(jobs_client):
    error = error_of(jobs_client.post(JOBS, json={"model": "studio-tiny-llama"}), 400)
    assert error["param"] == "training_file" and "Field required" in error["message"]


@pytest.mark.parametrize("field", ["training_file", "validation_file"])
def test_unknown_file_is_404_naming_the_param(jobs_client, chat_file_id, redis, field):
    body = {**job("studio-tiny-llama", chat_file_id), field: "file-nope"}
    error = error_of(jobs_client.post(JOBS, json=body), 404)
    assert error["param"] == field and error["code"] == "file_not_found" and "file-nope" in error["message"]
    assert sent_tasks(redis) == []


@pytest.mark.parametrize("stage, fixture_file, fmt", [
    ("supervised", "preference.jsonl", "preference"),
    ("dpo", "chat.jsonl", "chat"),
    ("pretraining", "alpaca.jsonl", "alpaca"),
])
def test_file_format_must_fit_the_stage(jobs_client, upload_file, redis, stage, fixture_file, fmt):
    file_id = upload_file(fixture_file)
    body = job("studio-tiny-llama", file_id, method={"type": stage})
    error = error_of(jobs_client.post(JOBS, json=body), 400)
    assert error["param"] == "training_file" and error["code"] == "invalid_training_file"
    assert f"'{fmt}'" in error["message"] and stage in error["message"], error["message"]
    assert sent_tasks(redis) == []


def test_validation_file_format_must_fit_the_stage(jobs_client, chat_file_id, upload_file):
    text_file = upload_file("pretrain.jsonl")
    error = error_of(jobs_client.post(JOBS, json=job("studio-tiny-llama", chat_file_id, validation_file=text_file)), 400)
    assert error["param"] == "validation_file" and "'text'" in error["message"]


def test_each_stage_accepts_its_format(create, upload_file, jobs_client):
    for stage, name in (("dpo", "preference.jsonl"), ("pretraining", "pretrain.jsonl"), ("supervised", "alpaca.jsonl")):
        response = jobs_client.post(JOBS, json=job("studio-tiny-llama", upload_file(name), method={"type": stage}))
        assert response.status_code == 200, response.text
        assert response.json()["method"]["type"] == stage


@pytest.mark.parametrize("model, needle", [
    ("no-such-model", "Model 'no-such-model' was not found or is not allowed"),
    ("/etc", "Model '/etc' was not found or is not allowed"),
    ("../../etc", "a relative path is never loaded"),
    ("examples/uncached-model@main", "not in the cache"),
    ("no-weights", "no .safetensors"),
    ("not a model!", "Unknown model"),
])
def test_unknown_model_is_400(jobs_client, chat_file_id, redis, model, needle, model_dir, job_settings):
    error = error_of(jobs_client.post(JOBS, json=job(model, chat_file_id)), 400)
    assert error["param"] == "model" and needle in error["message"], error["message"]
    assert str(model_dir) not in error["message"] and str(job_settings.data_dir) not in error["message"]
    assert sent_tasks(redis) == []


def test_local_models_and_cached_hub_ids_are_accepted(create, model_dir):
    assert create("my-llama")["model"] == "my-llama"
    assert create(str(model_dir / "my-gpt2"))["model"] == str(model_dir / "my-gpt2")
    snapshot = cache_hub_model("Qwen/Qwen2.5-0.5B", model_dir / "my-llama")
    assert create("Qwen/Qwen2.5-0.5B")["model"] == "Qwen/Qwen2.5-0.5B"
    assert create(f"Qwen/Qwen2.5-0.5B@{snapshot.name}")["status"] == "queued"


@pytest.mark.parametrize("offline", [True, False])
def test_an_uncached_hub_id_is_refused_in_seconds(jobs_client, chat_file_id, redis, monkeypatch, offline):
    """A typo'd hub id must not hold a training worker: offline (HF_HUB_OFFLINE) the cache alone decides;
    online a hub that cannot be reached (tests/conftest.py: a closed port) is said so at once."""
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    error = error_of(jobs_client.post(JOBS, json=job("acme/llama-typo", chat_file_id)), 400)
    assert time.monotonic() - started < 5
    assert error["param"] == "model" and error["code"] == "model_not_found"
    assert ("HF_HUB_OFFLINE" if offline else "could not be reached") in error["message"], error["message"]
    assert sent_tasks(redis) == []


def test_offline_a_hub_model_cached_without_weights_is_refused_for_training(jobs_client, chat_file_id, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache_hub_model("acme/config-only", config=json.dumps({"model_type": "llama", "hidden_size": 64}))
    error = error_of(jobs_client.post(JOBS, json=job("acme/config-only", chat_file_id)), 400)
    assert "weights are not in this machine's Hugging Face cache" in error["message"], error["message"]


@pytest.mark.parametrize("model", ["studio-tiny-llama", "my-llama"])
def test_unknown_target_module_is_400_listing_valid_ones(jobs_client, chat_file_id, create, model):
    body = job(model, chat_file_id, tuning={"type": "lora", "target_modules": ["q_proj", "c_attn"]})
    error = error_of(jobs_client.post(JOBS, json=body), 400)
    assert error["param"] == "tuning.target_modules" and "c_attn" in error["message"]
    for name in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"):
        assert name in error["message"]
    good = create(model, tuning={"type": "dora", "target_modules": ["q_proj", "self_attn.v_proj"]})
    assert good["tuning"]["target_modules"] == ["q_proj", "self_attn.v_proj"]


def test_target_modules_of_other_families_are_left_to_the_worker(create):
    assert create("my-gpt2", tuning={"type": "lora", "target_modules": ["c_attn"]})["status"] == "queued"


def test_idempotency_key_returns_the_same_job_and_sends_once(jobs_client, job_app, chat_file_id, redis):
    body = job("studio-tiny-llama", chat_file_id)
    first = jobs_client.post(JOBS, json=body, headers={"Idempotency-Key": "k-1"})
    again = jobs_client.post(JOBS, json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    dispatch(job_app)
    assert len(sent_tasks(redis)) == 1 and len(jobs_client.get(JOBS).json()["data"]) == 1
    other = jobs_client.post(JOBS, json=body, headers={"Idempotency-Key": "k-2"})
    dispatch(job_app)
    assert other.json()["id"] != first.json()["id"] and len(sent_tasks(redis)) == 2
    changed = jobs_client.post(JOBS, json={**body, "seed": 8}, headers={"Idempotency-Key": "k-1"})
    assert error_of(changed, 409)["code"] == "idempotency_key_reused"


def test_list_paginates_newest_first_and_filters_by_status(jobs_client, create):
    ids = [create()["id"] for _ in range(5)]
    page1 = jobs_client.get(JOBS, params={"limit": 2}).json()
    assert page1["object"] == "list" and [j["id"] for j in page1["data"]] == ids[::-1][:2] and page1["has_more"]
    page2 = jobs_client.get(JOBS, params={"limit": 2, "after": page1["last_id"]}).json()
    assert [j["id"] for j in page2["data"]] == ids[::-1][2:4] and page2["has_more"]
    page3 = jobs_client.get(JOBS, params={"limit": 2, "after": page2["last_id"]}).json()
    assert [j["id"] for j in page3["data"]] == ids[:1] and not page3["has_more"]
    jobs_client.post(f"{JOBS}/{ids[1]}/cancel")
    cancelled = jobs_client.get(JOBS, params={"status": "cancelled"}).json()["data"]
    assert [j["id"] for j in cancelled] == [ids[1]]
    assert len(jobs_client.get(JOBS, params={"status": "queued"}).json()["data"]) == 4
    assert error_of(jobs_client.get(JOBS, params={"status": "done"}), 422)["param"] == "status"
    assert error_of(jobs_client.get(JOBS, params={"limit": 101}), 422)["param"] == "limit"


@pytest.mark.parametrize("action", ["", "/cancel", "/pause", "/resume", "/events", "/checkpoints", "/events/stream"])
def test_unknown_job_is_404(jobs_client, action):
    method = jobs_client.post if action in ("/cancel", "/pause", "/resume") else jobs_client.get
    error = error_of(method(f"{JOBS}/ftjob-nope{action}"), 404)
    assert error["param"] == "fine_tuning_job_id" and "ftjob-nope" in error["message"]


@pytest.mark.parametrize("field", ["training_file", "validation_file"])
def test_a_file_an_unfinished_job_uses_cannot_be_deleted(jobs_client, chat_file_id, upload_file, create, field):
    """Deleting it let the job fail later with 'file not found: <server path>'; after the job ends it may go."""
    other = upload_file("chat.jsonl")
    job_id = create(**({"validation_file": other} if field == "validation_file" else {}))["id"]
    file_id = other if field == "validation_file" else chat_file_id
    error = error_of(jobs_client.delete(f"/v1/files/{file_id}"), 409)
    assert error["code"] == "file_in_use" and error["param"] == "file_id"
    assert job_id in error["message"] and "cancel" in error["message"]
    assert jobs_client.get(f"/v1/files/{file_id}/content").status_code == 200  # nothing lost
    assert jobs_client.post(f"{JOBS}/{job_id}/cancel").json()["status"] == "cancelled"
    assert jobs_client.delete(f"/v1/files/{file_id}").json()["deleted"] is True


def test_cancel_a_queued_job_at_once(jobs_client, create, redis):
    job_id = create()["id"]
    body = jobs_client.post(f"{JOBS}/{job_id}/cancel").json()
    assert body["status"] == "cancelled" and body["finished_at"] is not None and body["queue_position"] is None
    assert redis.get(f"studio:jobs:{job_id}:control") == "cancel"  # a task still queued stops at its first step
    error = error_of(jobs_client.post(f"{JOBS}/{job_id}/cancel"), 400)
    assert "already cancelled" in error["message"] and error["code"] == "invalid_job_state"
    for action in ("pause", "resume"):
        error_of(jobs_client.post(f"{JOBS}/{job_id}/{action}"), 400)


def test_pause_and_resume_a_running_job(jobs_client, job_app, create, redis, worker, job_settings):
    job_id = create()["id"]
    dispatch(job_app)
    assert "only running jobs" in error_of(jobs_client.post(f"{JOBS}/{job_id}/pause"), 400)["message"]
    assert "only paused jobs" in error_of(jobs_client.post(f"{JOBS}/{job_id}/resume"), 400)["message"]
    worker.status(job_id, "running")
    worker.metrics(job_id, 4)
    relay(job_settings, redis, job_id)
    assert jobs_client.get(f"{JOBS}/{job_id}").json()["status"] == "running"

    body = jobs_client.post(f"{JOBS}/{job_id}/pause").json()
    assert body["status"] == "running" and redis.get(f"studio:jobs:{job_id}:control") == "pause"
    ckpt = str(job_settings.jobs_dir / job_id / "checkpoints" / "checkpoint-4")
    worker.checkpoint(job_id, 4, ckpt)
    worker.status(job_id, "paused", result={"checkpoint": ckpt, "global_step": 4, "output_dir": "x"})
    relay(job_settings, redis, job_id)
    paused = jobs_client.get(f"{JOBS}/{job_id}").json()
    assert paused["status"] == "paused" and paused["progress"]["step"] == 4 and paused["queue_position"] is None

    (Path(ckpt)).mkdir(parents=True)  # where the run resumes from must exist on disk
    resumed = jobs_client.post(f"{JOBS}/{job_id}/resume").json()
    assert resumed["status"] == "queued" and resumed["attempt"] == 2 and resumed["queue_position"] == 1
    assert redis.get(f"studio:jobs:{job_id}:control") is None
    assert len(sent_tasks(redis)) == 1 and dispatch(job_app) == [job_id]
    first, second = sent_tasks(redis)
    assert first["kwargs"]["attempt"] == 1 and first["kwargs"]["resume_from"] is None
    assert second["task"] == "studio.train" and second["kwargs"]["job_id"] == job_id
    assert second["kwargs"]["attempt"] == 2 and second["kwargs"]["resume_from"] == ckpt
    assert second["kwargs"]["output_dir"] == first["kwargs"]["output_dir"]

    worker.status(job_id, "running", attempt=2)
    relay(job_settings, redis, job_id)
    assert jobs_client.get(f"{JOBS}/{job_id}").json()["status"] == "running"


def test_cancel_a_running_job_is_cooperative(jobs_client, create, redis, worker, job_settings):
    job_id = create()["id"]
    worker.status(job_id, "running")
    relay(job_settings, redis, job_id)
    body = jobs_client.post(f"{JOBS}/{job_id}/cancel").json()
    assert body["status"] == "cancelling" and redis.get(f"studio:jobs:{job_id}:control") == "cancel"
    assert jobs_client.post(f"{JOBS}/{job_id}/cancel").json()["status"] == "cancelling"  # asking again is fine
    error_of(jobs_client.post(f"{JOBS}/{job_id}/pause"), 400)
    worker.metrics(job_id, 2)
    relay(job_settings, redis, job_id)
    assert jobs_client.get(f"{JOBS}/{job_id}").json()["status"] == "cancelling"
    worker.status(job_id, "cancelled")
    relay(job_settings, redis, job_id)
    final = jobs_client.get(f"{JOBS}/{job_id}").json()
    assert final["status"] == "cancelled" and final["finished_at"] is not None


def test_cancel_wins_over_a_pause_in_flight(jobs_client, create, redis, worker, job_settings):
    job_id = create()["id"]
    worker.status(job_id, "running")
    relay(job_settings, redis, job_id)
    jobs_client.post(f"{JOBS}/{job_id}/pause")
    jobs_client.post(f"{JOBS}/{job_id}/cancel")
    worker.status(job_id, "paused", result={"checkpoint": "/tmp/ckpt", "global_step": 1})
    relay(job_settings, redis, job_id)
    assert jobs_client.get(f"{JOBS}/{job_id}").json()["status"] == "cancelled"


def test_cancel_a_paused_job(jobs_client, create, redis, worker, job_settings):
    job_id = create()["id"]
    worker.status(job_id, "running")
    worker.status(job_id, "paused", result={"checkpoint": "/tmp/ckpt", "global_step": 1})
    relay(job_settings, redis, job_id)
    assert jobs_client.post(f"{JOBS}/{job_id}/cancel").json()["status"] == "cancelled"


def test_terminal_jobs_refuse_transitions(jobs_client, create, redis, worker, job_settings):
    job_id = create()["id"]
    worker.status(job_id, "running")
    worker.status(job_id, "succeeded", result=worker.success_result("/out"))
    relay(job_settings, redis, job_id)
    for action in ("cancel", "pause", "resume"):
        error = error_of(jobs_client.post(f"{JOBS}/{job_id}/{action}"), 400)
        assert "already succeeded" in error["message"], error["message"]


def test_unreachable_queue_keeps_the_job_queued_until_redis_is_back(job_settings, chat_file_id, jobs_client, db):
    """The DB is the source of truth: with Redis down the job is stored and waits; a dispatch that cannot
    reach Redis puts it back to waiting instead of losing or failing it."""
    from fastapi.testclient import TestClient

    from backend.app import create_app
    from backend.services.queue import QueueUnavailable
    from tests.api.jobs_support import free_port

    dead = job_settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    app = create_app(dead, migrate=False)
    with TestClient(app) as client:
        created = client.post(JOBS, json=job("studio-tiny-llama", chat_file_id))
        assert created.status_code == 200 and created.json()["status"] == "queued"
        with pytest.raises(QueueUnavailable):
            dispatch(app, capacity=1)
        [waiting] = client.get(JOBS).json()["data"]
    assert waiting["status"] == "queued" and waiting["queue_position"] == 1 and waiting["error"] is None
    with db.session() as session:
        assert session.get(Job, waiting["id"]).dispatched_at is None


def test_cancel_looks_again_when_the_relay_moved_the_job(job_app, create, redis, worker, job_settings, db):
    """The job is read as running, then the worker's `succeeded` lands before the cancel writes."""
    from backend.services.jobs import cancel_job

    job_id = create()["id"]
    worker.status(job_id, "running")
    relay(job_settings, redis, job_id)
    with db.session() as session:
        stale = session.get(Job, job_id)
        assert stale.status == "running"
        worker.status(job_id, "succeeded", result=worker.success_result("/out"))
        relay(job_settings, redis, job_id)
        with pytest.raises(APIError, match="already succeeded"):
            cancel_job(session=session, queue=job_app.state.queue, job=stale)
        assert session.get(Job, job_id).status == "succeeded"
