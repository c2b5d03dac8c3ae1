"""Team mode isolation: two teams and an admin, with real keys. Another team's files, jobs, events (list
and SSE), checkpoints, adapters, versions, downloads, aliases, merges, models and chat references answer
404 and are left out of lists; the admin sees everything; the audit log names who did what."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from backend.app import create_app
from backend.db.models import AuditEvent
from backend.services import auth
from backend.services.relay import relay_once
from backend.services.verifier import verify_pending
from tests.api.conftest import _empty_tables
from tests.api.jobs_support import *  # noqa: F403 — fixtures (redis, worker, db, job_settings)
from tests.api.jobs_support import FakeWorker, error_of
from tests.conftest import EXAMPLES
from tests.helpers import job as job_body

JOBS, FILES, ADAPTERS = "/v1/fine_tuning/jobs", "/v1/files", "/v1/adapters"


def fake_artifact(folder: Path) -> None:
    """The smallest folder the registry accepts as a ready LoRA version (files match the lineage's sha256)."""
    folder.mkdir(parents=True)
    config = json.dumps({"peft_type": "LORA", "r": 4, "base_model_name_or_path": "studio-tiny-llama"})
    (folder / "adapter_config.json").write_text(config)
    lineage = {"files": {"adapter_config.json": hashlib.sha256(config.encode()).hexdigest()},
               "method": {"artifact": "peft", "mergeable": True, "type": "lora"}, "datasets": []}
    (folder / "studio.json").write_text(json.dumps(lineage))


class Team:
    """One caller: its key's headers on every request."""

    def __init__(self, client: TestClient, key: str):
        self.client, self.key = client, key
        self.headers = {"Authorization": f"Bearer {key}"}

    def get(self, path: str, **kwargs):
        return self.client.get(path, headers=self.headers, **kwargs)

    def post(self, path: str, **kwargs):
        return self.client.post(path, headers=self.headers, **kwargs)

    def put(self, path: str, **kwargs):
        return self.client.put(path, headers=self.headers, **kwargs)

    def delete(self, path: str):
        return self.client.delete(path, headers=self.headers)

    def upload(self, name: str = "chat.jsonl") -> str:
        response = self.post(FILES, files={"file": (name, (EXAMPLES / name).read_bytes())},
                             data={"purpose": "fine-tune"})
        assert response.status_code == 200, response.text
        return response.json()["id"]

    def create_job(self, file_id: str, **overrides) -> dict:
        response = self.post(JOBS, json=job_body("studio-tiny-llama", file_id, **overrides))
        assert response.status_code == 200, response.text
        return response.json()

    def ids(self, path: str, **params) -> set[str]:
        response = self.get(path, params={"limit": 100, **params})
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["data"]}


@pytest.fixture
def teams(job_settings, redis, db):
    """(alice in team a, bob in team b, root the admin, the app's settings)."""
    settings = job_settings.model_copy(update={"auth": "on"})
    _empty_tables(settings.database_url)
    with db.session() as session:
        keys = [auth.create_key(session=session, user=user, team=team, is_admin=admin)[1]
                for user, team, admin in (("alice", "a", False), ("bob", "b", False), ("root", None, True))]
    with TestClient(create_app(settings, migrate=False)) as client:
        yield (*(Team(client, key) for key in keys), settings)


def succeed(team: Team, file_id: str, settings, db, redis, **overrides) -> dict:
    """A job of `team` that a fake worker 'trained': its version is registered and ready."""
    created = team.create_job(file_id, **overrides)
    output = settings.jobs_dir / created["id"] / "output"
    fake_artifact(output)
    worker = FakeWorker(redis)
    worker.status(created["id"], "running")
    worker.metrics(created["id"], 1, total=2)
    worker.checkpoint(created["id"], 1, str(settings.jobs_dir / created["id"] / "checkpoints" / "checkpoint-1"))
    worker.status(created["id"], "succeeded", result=worker.success_result(str(output), steps=2))
    with db.session() as session:
        relay_once(session, redis, created["id"], data_dir=settings.data_dir)
    verify_pending(db=db, settings=settings)
    done = team.get(f"{JOBS}/{created['id']}").json()
    assert done["status"] == "succeeded", done
    return done


def test_files_are_seen_by_their_team_only(teams):
    alice, bob, root, _settings = teams
    a_file, b_file = alice.upload(), bob.upload()
    assert alice.ids(FILES) == {a_file} and bob.ids(FILES) == {b_file}
    assert root.ids(FILES) == {a_file, b_file}
    assert alice.get(f"{FILES}/{a_file}").json()["team"] == "a"
    assert alice.get(f"{FILES}/{a_file}").json()["owner"] == "alice"
    for response in (bob.get(f"{FILES}/{a_file}"), bob.get(f"{FILES}/{a_file}/content"),
                     bob.delete(f"{FILES}/{a_file}")):
        assert error_of(response, 404)["code"] == "file_not_found"
    assert alice.get(f"{FILES}/{a_file}/content").status_code == 200  # bob's delete changed nothing
    # a job or an estimate cannot use another team's file either
    refused = bob.post(JOBS, json=job_body("studio-tiny-llama", a_file))
    assert error_of(refused, 404)["param"] == "training_file"
    estimate = bob.post("/v1/estimate", json=job_body("studio-tiny-llama", a_file))
    assert error_of(estimate, 404)["code"] == "file_not_found"
    # the admin may delete anyone's file
    assert root.delete(f"{FILES}/{b_file}").status_code == 200 and bob.ids(FILES) == set()


def test_jobs_events_and_checkpoints_are_seen_by_their_team_only(teams, db, redis):
    alice, bob, root, settings = teams
    a_job = succeed(alice, alice.upload(), settings, db, redis, suffix="bot")
    b_job = bob.create_job(bob.upload())
    assert a_job["owner"] == "alice" and a_job["team"] == "a" and b_job["team"] == "b"
    assert alice.ids(JOBS) == {a_job["id"]} and bob.ids(JOBS) == {b_job["id"]}
    assert bob.ids(JOBS, status="succeeded") == set() and alice.ids(JOBS, status="succeeded") == {a_job["id"]}
    assert root.ids(JOBS) == {a_job["id"], b_job["id"]}
    a = a_job["id"]
    for response in (bob.get(f"{JOBS}/{a}"), bob.get(f"{JOBS}/{a}/events"), bob.get(f"{JOBS}/{a}/checkpoints"),
                     bob.get(f"{JOBS}/{a}/events/stream"),
                     bob.get(f"{JOBS}/{a}/events/stream", params={"api_key": bob.key}),
                     bob.post(f"{JOBS}/{a}/cancel"), bob.post(f"{JOBS}/{a}/pause"), bob.post(f"{JOBS}/{a}/resume")):
        assert error_of(response, 404)["code"] == "fine-tuning_job_not_found"
    assert len(alice.get(f"{JOBS}/{a}/events").json()["data"]) == 4
    assert [c["step_number"] for c in alice.get(f"{JOBS}/{a}/checkpoints").json()["data"]] == [1]
    stream = alice.client.get(f"{JOBS}/{a}/events/stream", params={"api_key": alice.key})  # EventSource's way
    assert stream.status_code == 200 and stream.text.rstrip().endswith('data: {"status": "succeeded"}')
    assert root.get(f"{JOBS}/{a}/events").status_code == 200
    # an Idempotency-Key another team used is not a way to read their job
    first = alice.client.post(JOBS, json=job_body("studio-tiny-llama", alice.upload()),
                              headers={**alice.headers, "Idempotency-Key": "k1"})
    assert first.status_code == 200
    again = bob.client.post(JOBS, json=job_body("studio-tiny-llama", bob.upload()),
                            headers={**bob.headers, "Idempotency-Key": "k1"})
    assert error_of(again, 409)["code"] == "idempotency_key_reused" and first.json()["id"] not in again.text


def test_adapters_downloads_aliases_and_models_are_seen_by_their_team_only(teams, db, redis):
    alice, bob, root, settings = teams
    a_job = succeed(alice, alice.upload(), settings, db, redis, suffix="support-bot")
    b_job = succeed(bob, bob.upload(), settings, db, redis, suffix="support-bot")
    # the same suffix in two teams: two adapters, each under its team's name, neither aware of the other
    assert a_job["fine_tuned_model"] == "a.support-bot:1" and b_job["fine_tuned_model"] == "b.support-bot:1"
    assert alice.ids(ADAPTERS) == {"a.support-bot"} and bob.ids(ADAPTERS) == {"b.support-bot"}
    assert root.ids(ADAPTERS) == {"a.support-bot", "b.support-bot"}
    assert alice.get(f"{ADAPTERS}/a.support-bot").json()["team"] == "a"
    assert alice.put(f"{ADAPTERS}/a.support-bot/aliases/prod", json={"version": 1}).status_code == 200

    name = "a.support-bot"
    for response in (bob.get(f"{ADAPTERS}/{name}"), bob.get(f"{ADAPTERS}/{name}/versions/1"),
                     bob.get(f"{ADAPTERS}/{name}/versions/1/download"),
                     bob.client.get(f"{ADAPTERS}/{name}/versions/1/download", params={"api_key": bob.key}),
                     bob.get(f"{ADAPTERS}/{name}/aliases/history"),
                     bob.put(f"{ADAPTERS}/{name}/aliases/prod", json={"version": 1}),
                     bob.delete(f"{ADAPTERS}/{name}/aliases/prod"), bob.post(f"{ADAPTERS}/{name}/versions/1/merge"),
                     bob.delete(f"{ADAPTERS}/{name}/versions/1"), bob.delete(f"{ADAPTERS}/{name}")):
        assert error_of(response, 404)["code"] == "adapter_not_found"
    assert alice.get(f"{ADAPTERS}/{name}").json()["aliases"] == {"prod": 1}  # bob changed nothing
    download = alice.client.get(f"{ADAPTERS}/{name}/versions/1/download", params={"api_key": alice.key})
    assert download.status_code == 200 and len(download.content) > 100

    # models: bob's list has no trace of team a; a model reference to it is unknown to him
    bob_models = bob.ids("/v1/models")
    assert {"b.support-bot", "b.support-bot:1", "studio-tiny-llama"} <= bob_models
    assert not any(m.startswith("a.") for m in bob_models)
    assert {"a.support-bot", "a.support-bot:1", "a.support-bot@prod"} <= alice.ids("/v1/models")
    assert {"a.support-bot@prod", "b.support-bot:1"} <= root.ids("/v1/models")
    for ref in ("a.support-bot", "a.support-bot:1", "a.support-bot@prod"):
        assert error_of(bob.get(f"/v1/models/{ref}"), 404)["code"] == "model_not_found"
        chat = bob.post("/v1/chat/completions", json={"model": ref, "messages": [{"role": "user", "content": "hi"}]})
        assert error_of(chat, 404)["code"] == "model_not_found"
        completion = bob.post("/v1/completions", json={"model": ref, "prompt": "hi"})
        assert error_of(completion, 404)["code"] == "model_not_found"
    # alice's own reference resolves (and then waits for an inference worker, which this test has none of)
    mine = alice.post("/v1/chat/completions", json={"model": "a.support-bot@prod",
                                                    "messages": [{"role": "user", "content": "hi"}]})
    assert error_of(mine, 503)["code"] == "no_inference_worker"

    # the admin may act on any team's adapter
    assert root.delete(f"{ADAPTERS}/b.support-bot/versions/1").status_code == 200


def test_the_audit_log_names_who_did_what_and_each_team_reads_its_own(teams, db, redis):
    alice, bob, root, settings = teams
    a_file = alice.upload()
    a_job = succeed(alice, a_file, settings, db, redis, suffix="bot")
    assert alice.put(f"{ADAPTERS}/a.bot/aliases/prod", json={"version": 1}).status_code == 200
    assert root.delete(f"{ADAPTERS}/a.bot/aliases/prod").status_code == 200
    assert alice.post(f"{JOBS}/{a_job['id']}/cancel").status_code == 400  # already succeeded: no audit row
    b_job = bob.create_job(bob.upload())
    assert bob.post(f"{JOBS}/{b_job['id']}/cancel").json()["status"] == "cancelled"
    assert root.delete(f"{ADAPTERS}/a.bot/versions/1").status_code == 200
    assert alice.delete(f"{FILES}/{a_file}").status_code == 200

    with db.session() as session:
        rows = [(r.actor, r.team, r.action, r.resource_id) for r in
                session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    b_file = b_job["training_file"]
    assert rows == [
        ("alice", "a", "file.create", a_file), ("alice", "a", "job.create", a_job["id"]),
        ("alice", "a", "adapter.alias.set", "a.bot@prod"), ("root", "a", "adapter.alias.remove", "a.bot@prod"),
        ("bob", "b", "file.create", b_file), ("bob", "b", "job.create", b_job["id"]),
        ("bob", "b", "job.cancel", b_job["id"]), ("root", "a", "adapter.version.delete", "a.bot:1"),
        ("alice", "a", "file.delete", a_file)]
    moves = alice.get("/v1/audit_events", params={"resource_id": "a.bot@prod"}).json()["data"]
    assert [e["actor"] for e in moves] == ["root", "alice"]
    assert {e["team"] for e in alice.get("/v1/audit_events", params={"limit": 100}).json()["data"]} == {"a"}
    assert {e["team"] for e in bob.get("/v1/audit_events", params={"limit": 100}).json()["data"]} == {"b"}
    everything = root.get("/v1/audit_events", params={"limit": 5}).json()
    assert len(everything["data"]) == 5 and everything["has_more"] is True
    rest = root.get("/v1/audit_events", params={"after": everything["last_id"], "limit": 100}).json()["data"]
    assert len(rest) == len(rows) - 5
    # the registry's own alias history names the users too
    history = alice.get(f"{ADAPTERS}/a.bot/aliases/history").json()["data"]
    assert [(e["actor"], e["version"]) for e in history] == [("alice", 1), ("root", None)]


def test_without_auth_everything_is_owned_by_local_and_visible(jobs_client, chat_file_id):
    file = jobs_client.get(f"{FILES}/{chat_file_id}").json()
    assert file["owner"] == "local" and file["team"] is None


def test_workers_show_members_only_their_own_teams_jobs(teams, redis):
    from worker.registry import Heartbeat, job_started

    alice, bob, root, _settings = teams
    a_job, b_job = alice.create_job(alice.upload())["id"], bob.create_job(bob.upload())["id"]
    for name, job_id in (("gpu-0@box", a_job), ("gpu-1@box", b_job)):
        Heartbeat(redis, name=name, queues=["gpu"], slots=1, prefix="studio", gpus=[]).beat()
        job_started(redis, name, job_id, 1, prefix="studio")

    def seen(team):
        return {w["id"]: (w["status"], w["current_job"]) for w in team.get("/v1/workers").json()["data"]}

    assert seen(alice) == {"gpu-0@box": ("busy", a_job), "gpu-1@box": ("busy", None)}
    assert seen(bob) == {"gpu-0@box": ("busy", None), "gpu-1@box": ("busy", b_job)}
    assert seen(root) == {"gpu-0@box": ("busy", a_job), "gpu-1@box": ("busy", b_job)}
