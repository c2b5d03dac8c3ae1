"""The adapter registry over REST, with a real trained artifact: a succeeded job becomes a version whose
files match its lineage; download, aliases (with history), /v1/models, model references, deletion."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from backend.services import registry
from backend.services.relay import relay_once
from backend.services.verifier import verify_pending
from tests.api.jobs_support import *  # noqa: F403 — fixtures
from tests.api.test_isolation import teams  # noqa: F401 — fixture (two teams, an admin, real keys)
from tests.helpers import job as job_body

ADAPTERS = "/v1/adapters"


@pytest.fixture(scope="module")
def lora_artifact(tiny_model, chat_file, tmp_path_factory) -> Path:
    """A real LoRA artifact (r=4, 2 steps) on the tiny local Llama, trained once for the module."""
    from worker.finetune.spec import parse_spec
    from worker.finetune.train import run

    out = tmp_path_factory.mktemp("artifact") / "output"
    spec = parse_spec(job_body(tiny_model, chat_file, tuning={"type": "lora", "r": 4},
                               training={"max_steps": 2, "save_steps": 1}))  # checkpoints 1 and 2 in ckpt/
    assert run(spec, output_dir=out, checkpoint_dir=out.parent / "ckpt").status == "succeeded"
    return out


@pytest.fixture
def succeed(jobs_client, create, db, redis, worker, job_settings, lora_artifact):
    """`succeed(**job_overrides)` → the job after its worker 'trained' it (the real artifact copied in place)."""

    def _succeed(artifact: Path | None = lora_artifact, checkpoints: tuple[int, ...] = (), **overrides) -> dict:
        created = create(**overrides)
        output = job_settings.jobs_dir / created["id"] / "output"
        if artifact is not None:
            shutil.copytree(artifact, output)
        worker.status(created["id"], "running")
        for step in checkpoints:  # the run's real checkpoints, where a worker writes them
            folder = job_settings.jobs_dir / created["id"] / "checkpoints" / f"checkpoint-{step}"
            shutil.copytree(lora_artifact.parent / "ckpt" / f"checkpoint-{step}", folder)
            worker.checkpoint(created["id"], step, str(folder))
        worker.status(created["id"], "succeeded", result=worker.success_result(str(output)))
        with db.session() as session:
            relay_once(session, redis, created["id"], data_dir=job_settings.data_dir)
        verify_pending(db=db, settings=job_settings)
        return jobs_client.get(f"/v1/fine_tuning/jobs/{created['id']}").json()

    return _succeed


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_succeeded_job_becomes_a_ready_version_with_its_lineage(jobs_client, succeed, chat_file_id):
    done = succeed(suffix="support-bot")
    assert done["fine_tuned_model"] == "support-bot:1"
    assert done["adapter"] == {"name": "support-bot", "version": 1, "status": "ready", "model": "support-bot:1"}
    version = jobs_client.get(f"{ADAPTERS}/support-bot/versions/1").json()
    assert version["status"] == "ready" and version["artifact"] == "peft" and version["method"] == "lora"
    lineage = version["lineage"]
    assert lineage["job_id"] == done["id"] and lineage["seed"] == 7
    assert lineage["datasets"][0]["file_id"] == chat_file_id and len(lineage["datasets"][0]["sha256"]) == 64
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= set(lineage["files"])
    assert lineage["libraries"]["peft"] and lineage["base_model"]["revision"]
    assert version["flags"]["peft_type"] == "LORA" and version["flags"]["rank"] == 4
    assert version["flags"]["adapter_servable"] is True and version["flags"]["rank_above_max"] is False

    second = succeed(suffix="support-bot")
    assert second["fine_tuned_model"] == "support-bot:2"
    adapter = jobs_client.get(f"{ADAPTERS}/support-bot").json()
    assert [v["version"] for v in adapter["versions"]] == [1, 2] and adapter["latest_version"] == 2
    listed = jobs_client.get(ADAPTERS).json()
    assert [a["name"] for a in listed["data"]] == ["support-bot"] and listed["data"][0]["versions"][0]["lineage"] is None


def test_download_streams_the_artifact_and_its_hashes_match_the_lineage(jobs_client, succeed, tiny_model):
    succeed(suffix="dl")
    lineage = jobs_client.get(f"{ADAPTERS}/dl/versions/1").json()["lineage"]
    response = jobs_client.get(f"{ADAPTERS}/dl/versions/1/download")
    assert response.status_code == 200 and response.headers["content-type"] == "application/gzip"
    assert 'filename="dl-v1.tar.gz"' in response.headers["content-disposition"]
    with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as archive:
        files = {m.name.removeprefix("dl-v1/"): archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}
    assert {name: sha256(data) for name, data in files.items() if name in lineage["files"]} == lineage["files"]
    assert json.loads(files["studio.json"])["files"] == lineage["files"]

    zipped = jobs_client.get(f"{ADAPTERS}/dl/versions/1/download", params={"format": "zip"})
    assert zipped.status_code == 200
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
        assert sha256(archive.read("dl-v1/adapter_model.safetensors")) == lineage["files"]["adapter_model.safetensors"]


def test_a_downloaded_version_loads_with_plain_peft(jobs_client, succeed, tiny_model, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    succeed(suffix="plain")
    data = jobs_client.get(f"{ADAPTERS}/plain/versions/1/download").content
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        archive.extractall(tmp_path, filter="data")
    folder = tmp_path / "plain-v1"
    config = json.loads((folder / "adapter_config.json").read_text())
    assert Path(config["base_model_name_or_path"]).resolve() == Path(tiny_model).resolve()
    base = AutoModelForCausalLM.from_pretrained(config["base_model_name_or_path"])
    ids = torch.tensor([[5, 17, 33, 2, 9]])
    with torch.no_grad():
        before = base(ids).logits
        model = PeftModel.from_pretrained(base, str(folder))
        after = model(ids).logits
        with model.disable_adapter():
            assert torch.equal(model(ids).logits, before)
    assert torch.isfinite(after).all() and after.shape == before.shape


def test_a_corrupted_artifact_makes_the_version_failed(jobs_client, succeed, lora_artifact, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(lora_artifact, broken)
    (broken / "adapter_model.safetensors").write_bytes(b"not the trained weights")
    succeed(artifact=broken, suffix="broken")
    version = jobs_client.get(f"{ADAPTERS}/broken/versions/1").json()
    assert version["status"] == "failed" and version["error"]["code"] == "artifact_corrupt"
    assert "adapter_model.safetensors" in version["error"]["message"]
    error = jobs_client.get(f"{ADAPTERS}/broken/versions/1/download").json()["error"]
    assert error["code"] == "adapter_version_not_ready"

    succeed(artifact=None, suffix="missing")
    assert jobs_client.get(f"{ADAPTERS}/missing/versions/1").json()["error"]["code"] == "artifact_missing"


def test_aliases_move_and_keep_an_append_only_history(jobs_client, succeed):
    succeed(suffix="bot")
    succeed(suffix="bot")
    put = jobs_client.put(f"{ADAPTERS}/bot/aliases/production", json={"version": 1})
    assert put.status_code == 200 and put.json() == {"object": "adapter.alias", "name": "bot", "alias": "production",
                                                      "version": 1, "model": "bot@production"}
    assert jobs_client.put(f"{ADAPTERS}/bot/aliases/production", json={"version": 2}).status_code == 200
    assert jobs_client.get(f"{ADAPTERS}/bot").json()["aliases"] == {"production": 2}
    assert jobs_client.get(f"{ADAPTERS}/bot/versions/2").json()["aliases"] == ["production"]
    history = jobs_client.get(f"{ADAPTERS}/bot/aliases/history").json()["data"]
    assert [(e["alias"], e["previous_version"], e["version"]) for e in history] == [
        ("production", None, 1), ("production", 1, 2)]

    missing = jobs_client.put(f"{ADAPTERS}/bot/aliases/staging", json={"version": 9})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "adapter_version_not_found"
    bad = jobs_client.put(f"{ADAPTERS}/bot/aliases/1st", json={"version": 1})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "alias"
    wrong_type = jobs_client.put(f"{ADAPTERS}/bot/aliases/staging", json={"version": "two"})
    assert wrong_type.status_code in (400, 422) and "error" in wrong_type.json()
    nobody = jobs_client.put(f"{ADAPTERS}/nobody/aliases/production", json={"version": 1})
    assert nobody.status_code == 404 and nobody.json()["error"]["code"] == "adapter_not_found"

    assert jobs_client.delete(f"{ADAPTERS}/bot/aliases/production").status_code == 200
    assert jobs_client.get(f"{ADAPTERS}/bot").json()["aliases"] == {}
    assert jobs_client.get(f"{ADAPTERS}/bot/aliases/history").json()["data"][-1]["version"] is None
    assert jobs_client.delete(f"{ADAPTERS}/bot/aliases/production").json()["error"]["code"] == "alias_not_found"


def test_models_list_bases_and_ready_adapters_with_their_parent(jobs_client, succeed):
    succeed(suffix="helper")
    jobs_client.put(f"{ADAPTERS}/helper/aliases/prod", json={"version": 1})
    models = {m["id"]: m for m in jobs_client.get("/v1/models").json()["data"]}
    assert models["studio-tiny-llama"]["kind"] == "base" and models["studio-tiny-llama"]["parent"] is None
    assert "q_proj" in models["studio-tiny-llama"]["modules"]
    assert models["my-llama"]["owned_by"] == "local" and "no-weights" not in models
    for ref in ("helper", "helper:1", "helper@prod"):
        assert models[ref]["parent"] == "studio-tiny-llama" and models[ref]["object"] == "model"
    assert jobs_client.get("/v1/models/helper@prod").json()["adapter"]["version"] == 1
    assert jobs_client.get("/v1/models/my-llama").json()["model_type"] == "llama"
    unknown = jobs_client.get("/v1/models/nope")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"


def test_model_references_resolve_to_what_a_worker_loads(jobs_client, succeed, db, job_settings):
    succeed(suffix="ref")
    succeed(suffix="ref")
    jobs_client.put(f"{ADAPTERS}/ref/aliases/stable", json={"version": 1})
    with db.session() as session:
        def resolve(model):
            return registry.resolve_served_model(session=session, settings=job_settings, model=model)

        assert resolve("ref").adapter_key == "ref:2"  # the newest ready version
        assert resolve("ref:1").adapter_key == "ref:1"
        stable = resolve("ref@stable")
        assert stable.adapter_key == "ref:1" and stable.base == "studio-tiny-llama" and stable.artifact == "peft"
        assert Path(stable.adapter_path, "adapter_config.json").is_file()
        assert resolve("studio-tiny-llama").adapter_path is None
        assert resolve("my-llama").base == "my-llama"
        for bad in ("ref:7", "ref@nope", "not-a-model", "ref:0", "ref:99999999999999999999"):
            with pytest.raises(registry.APIError) as caught:
                resolve(bad)
            assert caught.value.status == 404 and caught.value.code == "model_not_found"
            if bad.startswith("ref:"):
                assert f"has no version {bad[4:]}" in str(caught.value.message)
    huge = jobs_client.get("/v1/models/ref:99999999999999999999")  # past the INTEGER column: 404, not 500
    assert huge.status_code == 404 and huge.json()["error"]["code"] == "model_not_found"


def test_rank_above_the_configured_maximum_is_flagged(jobs_client, succeed, job_settings):
    job_settings.max_lora_rank = 2
    succeed(suffix="wide")
    flags = jobs_client.get(f"{ADAPTERS}/wide/versions/1").json()["flags"]
    assert flags["rank_above_max"] is True and flags["adapter_servable"] is False
    assert any("rank 4" in reason for reason in flags["reasons"])


def test_delete_a_version_then_the_adapter(jobs_client, succeed):
    succeed(suffix="gone")
    succeed(suffix="gone")
    jobs_client.put(f"{ADAPTERS}/gone/aliases/prod", json={"version": 2})
    deleted = jobs_client.delete(f"{ADAPTERS}/gone/versions/2")
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert jobs_client.get(f"{ADAPTERS}/gone/versions/2").status_code == 404
    assert jobs_client.get(f"{ADAPTERS}/gone").json()["aliases"] == {}
    assert jobs_client.get(f"{ADAPTERS}/gone/aliases/history").json()["data"][-1]["version"] is None
    assert jobs_client.delete(f"{ADAPTERS}/gone").status_code == 200
    assert jobs_client.get(f"{ADAPTERS}/gone").json()["error"]["code"] == "adapter_not_found"
    assert "gone" not in {m["id"] for m in jobs_client.get("/v1/models").json()["data"]}


def test_merge_refuses_what_cannot_merge(jobs_client, succeed, lora_artifact, tmp_path):
    prompt = tmp_path / "prompt"
    shutil.copytree(lora_artifact, prompt)
    lineage = json.loads((prompt / "studio.json").read_text())
    lineage["method"].update(type="prompt_tuning", mergeable=False)
    (prompt / "studio.json").write_text(json.dumps(lineage))
    succeed(artifact=prompt, suffix="soft", tuning={"type": "prompt_tuning"})
    refused = jobs_client.post(f"{ADAPTERS}/soft/versions/1/merge")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "not_mergeable"
    assert jobs_client.post(f"{ADAPTERS}/soft/versions/5/merge").status_code == 404
    merged = jobs_client.get(f"{ADAPTERS}/soft/versions/1/download", params={"artifact": "merged"})
    assert merged.status_code == 400 and merged.json()["error"]["code"] == "merge_not_ready"


@pytest.mark.parametrize("lost", ["flushed", "expired_while_running"])
def test_a_merge_whose_redis_state_is_lost_fails_and_can_be_requested_again(jobs_client, succeed, redis, lost):
    """Redis restarted empty (the queued task and its record gone) or the record expired mid-merge: the
    version's merge ends `failed` (merge_lost) instead of `queued`/`running` forever, and a new request
    queues a new merge."""
    from tests.api.jobs_support import sent_tasks

    succeed(suffix="mrg")
    queued = jobs_client.post(f"{ADAPTERS}/mrg/versions/1/merge")
    assert queued.status_code == 202 and queued.json()["merge"]["status"] == "queued"
    [task] = sent_tasks(redis, "inference")
    key = f"studio:merges:{task['kwargs']['version_id']}"
    if lost == "flushed":
        redis.flushall()
    else:
        redis.set(key, json.dumps({"status": "running", "error": None, "path": task["kwargs"]["output_dir"]}))
        assert jobs_client.get(f"{ADAPTERS}/mrg/versions/1").json()["merge"]["status"] == "running"
        redis.delete(key)
    merge = jobs_client.get(f"{ADAPTERS}/mrg/versions/1").json()["merge"]
    assert merge["status"] == "failed" and merge["error"]["code"] == "merge_lost"
    assert "again" in merge["error"]["message"]

    redis.delete("inference")
    again = jobs_client.post(f"{ADAPTERS}/mrg/versions/1/merge")
    assert again.status_code == 202 and again.json()["merge"]["status"] == "queued"
    assert len(sent_tasks(redis, "inference")) == 1


def test_lineage_shows_file_ids_and_hashes_not_server_paths(jobs_client, succeed, chat_file_id, lora_artifact,
                                                            job_settings):
    """The version's lineage (API) and the downloaded studio.json name datasets by file id and sha256; no
    path of the server's disks (data dir, dataset or model folders) reaches a member."""
    raw = json.loads((lora_artifact / "studio.json").read_text())
    server_paths = {raw["datasets"][0]["file"], raw["base_model"]["path"], raw["spec"]["training_file"],
                    str(job_settings.data_dir), str(job_settings.data_dir.resolve())}
    succeed(suffix="clean")
    version = jobs_client.get(f"{ADAPTERS}/clean/versions/1").json()
    shown = json.dumps(version) + json.dumps(jobs_client.get(f"{ADAPTERS}/clean").json())
    assert not [path for path in server_paths if path in shown]
    dataset = version["lineage"]["datasets"][0]
    assert dataset["file_id"] == chat_file_id and dataset["sha256"] == raw["datasets"][0]["sha256"]
    assert "file" not in dataset and version["lineage"]["spec"]["training_file"] == chat_file_id
    assert version["lineage"]["base_model"]["revision"] == raw["base_model"]["revision"]


def test_the_downloaded_studio_json_names_the_job_and_the_registry_version(jobs_client, succeed, lora_artifact,
                                                                           job_settings):
    done = succeed(suffix="named")
    raw = json.loads((lora_artifact / "studio.json").read_text())
    for fmt in ("tar.gz", "zip"):
        data = jobs_client.get(f"{ADAPTERS}/named/versions/1/download", params={"format": fmt}).content
        if fmt == "zip":
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                files = {n.removeprefix("named-v1/"): archive.read(n) for n in archive.namelist()}
        else:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
                files = {m.name.removeprefix("named-v1/"): archive.extractfile(m).read()
                         for m in archive.getmembers() if m.isfile()}
        studio = json.loads(files["studio.json"])
        assert studio["job_id"] == done["id"] and studio["model"] == "named:1" == done["fine_tuned_model"]
        assert studio["files"] == raw["files"]  # and every file still matches its recorded sha256
        assert {name: sha256(files[name]) for name in studio["files"]} == studio["files"]
        assert raw["datasets"][0]["file"] not in files["studio.json"].decode()
        assert str(job_settings.data_dir) not in files["studio.json"].decode()


def test_a_diverged_run_is_a_version_with_its_warning(jobs_client, succeed, lora_artifact, tmp_path):
    """The core writes `warnings` into studio.json when the loss diverged; the version carries them (API
    field and list), and an alias may still point at it."""
    diverged = tmp_path / "diverged"
    shutil.copytree(lora_artifact, diverged)
    lineage = json.loads((diverged / "studio.json").read_text())
    warning = {"code": "loss_diverged", "message": "The training loss rose from 9.0 to 204.6."}
    lineage["warnings"] = [warning]
    (diverged / "studio.json").write_text(json.dumps(lineage))
    succeed(artifact=diverged, suffix="wild")
    succeed(suffix="wild")
    version = jobs_client.get(f"{ADAPTERS}/wild/versions/1").json()
    assert version["status"] == "ready" and version["warnings"] == [warning]
    assert jobs_client.get(f"{ADAPTERS}/wild/versions/2").json()["warnings"] == []
    listed = jobs_client.get(ADAPTERS).json()["data"][0]["versions"]
    assert [v["warnings"] for v in listed] == [[warning], []]
    assert jobs_client.put(f"{ADAPTERS}/wild/aliases/prod", json={"version": 1}).status_code == 200


def test_versions_say_whether_they_can_merge_and_why_not(jobs_client, succeed, lora_artifact, tmp_path):
    succeed(suffix="lora")
    lora = jobs_client.get(f"{ADAPTERS}/lora/versions/1").json()
    assert lora["mergeable"] is True and lora["merge_unavailable_reason"] is None
    for tuning, artifact in (("prompt_tuning", "peft"), ("full", "full")):
        folder = tmp_path / tuning
        shutil.copytree(lora_artifact, folder)
        lineage = json.loads((folder / "studio.json").read_text())
        lineage["method"].update(type=tuning, mergeable=False, artifact=artifact)
        (folder / "studio.json").write_text(json.dumps(lineage))
        succeed(artifact=folder, suffix=tuning.replace("_", "-"), tuning={"type": tuning})
        version = jobs_client.get(f"{ADAPTERS}/{tuning.replace('_', '-')}/versions/1").json()
        assert version["mergeable"] is False and version["merge_unavailable_reason"]
        refused = jobs_client.post(f"{ADAPTERS}/{tuning.replace('_', '-')}/versions/1/merge").json()["error"]
        assert refused["message"] == version["merge_unavailable_reason"]


@pytest.fixture
def generating_worker(redis):
    """A real inference worker's generation (`worker.inference._run`, real model and adapter) answering the
    API's `studio.generate` messages from the real Redis queue, minus Celery; `.served` lists what it loaded."""
    import threading
    import time

    from tests.api.jobs_support import sent_tasks
    from worker.inference import _run, _write

    redis.zadd("studio:inference:workers", {"test@worker": int(redis.time()[0])})
    served, stop = [], threading.Event()

    def loop() -> None:
        while not stop.is_set():
            tasks = [t for t in sent_tasks(redis, "inference") if t["task"] == "studio.generate"]
            if not tasks:
                time.sleep(0.05)
                continue
            redis.delete("inference")
            for task in tasks:
                kwargs = task["kwargs"]
                served.append(kwargs["served"])
                _run(lambda event, key=f"studio:gen:{kwargs['request_id']}": _write(redis, key, event),
                     kwargs["served"], kwargs["kind"], kwargs["params"], kwargs.get("messages"), kwargs.get("prompt"))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    loop.served = served
    yield loop
    stop.set()
    thread.join(timeout=30)


def test_a_checkpoint_name_chats_with_that_checkpoints_adapter(jobs_client, succeed, job_settings, generating_worker,
                                                               tiny_model):
    """`fine_tuned_model_checkpoint` names are models, as at OpenAI: chat loads that checkpoint's adapter."""
    import os

    job_settings.model_dirs += os.pathsep + str(Path(tiny_model).parent)  # the base the artifact was trained on
    done = succeed(suffix="ck", checkpoints=(1, 2), model=Path(tiny_model).name)
    names = {c["step_number"]: c["fine_tuned_model_checkpoint"]
             for c in jobs_client.get(f"/v1/fine_tuning/jobs/{done['id']}/checkpoints").json()["data"]}
    assert names[1] == "ck:1:ckpt-step-1"
    answer = jobs_client.post("/v1/chat/completions", json={
        "model": names[1], "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "temperature": 0})
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == names[1] and answer.json()["usage"]["completion_tokens"] >= 1
    [served] = generating_worker.served
    checkpoint = job_settings.jobs_dir / done["id"] / "checkpoints" / "checkpoint-1"
    assert Path(served["adapter_path"]).resolve() == checkpoint.resolve() and served["artifact"] == "peft"
    assert served["base"] == Path(tiny_model).name
    retrieved = jobs_client.get(f"/v1/models/{names[1]}")  # what the SDK's models.retrieve asks
    assert retrieved.status_code == 200, retrieved.text
    assert retrieved.json()["id"] == names[1] and retrieved.json()["parent"] == Path(tiny_model).name
    assert retrieved.json()["adapter"] == {"job_id": done["id"], "step": 1, "method": "lora"}

    missing = jobs_client.post("/v1/chat/completions", json={
        "model": "ck:1:ckpt-step-9", "messages": [{"role": "user", "content": "Hi"}]})
    assert missing.status_code == 404 and "GET /v1/fine_tuning/jobs" in missing.json()["error"]["message"]
    shutil.rmtree(job_settings.jobs_dir / done["id"] / "checkpoints" / "checkpoint-2")
    gone = jobs_client.post("/v1/chat/completions", json={
        "model": names[2], "messages": [{"role": "user", "content": "Hi"}]})
    assert gone.status_code == 404 and "no longer stored" in gone.json()["error"]["message"]


def test_a_running_jobs_checkpoint_name_resolves_to_its_adapter(jobs_client, create, worker, redis, db,
                                                                job_settings, lora_artifact):
    created = create(suffix="live")
    folder = job_settings.jobs_dir / created["id"] / "checkpoints" / "checkpoint-1"
    shutil.copytree(lora_artifact.parent / "ckpt" / "checkpoint-1", folder)
    worker.status(created["id"], "running")
    worker.checkpoint(created["id"], 1, str(folder))
    with db.session() as session:
        relay_once(session, redis, created["id"], data_dir=job_settings.data_dir)
    [checkpoint] = jobs_client.get(f"/v1/fine_tuning/jobs/{created['id']}/checkpoints").json()["data"]
    name = checkpoint["fine_tuned_model_checkpoint"]
    assert name.startswith("ft:") and name.endswith(":ckpt-step-1")
    with db.session() as session:
        served = registry.resolve_served_model(session=session, settings=job_settings, model=name)
    assert Path(served.adapter_path).resolve() == folder.resolve() and served.artifact == "peft"


def test_a_still_pending_version_is_checked_when_a_request_needs_it(jobs_client, create, worker, redis, db,
                                                                   job_settings, lora_artifact):
    """The verifier thread checks versions soon after the relay registers them; a merge, download or alias
    that comes first checks the version itself instead of refusing it as not ready."""
    for suffix in ("early-merge", "early-download", "early-alias"):
        created = create(suffix=suffix)
        output = job_settings.jobs_dir / created["id"] / "output"
        shutil.copytree(lora_artifact, output)
        worker.status(created["id"], "succeeded", result=worker.success_result(str(output)))
        with db.session() as session:
            relay_once(session, redis, created["id"], data_dir=job_settings.data_dir)
        assert jobs_client.get(f"{ADAPTERS}/{suffix}/versions/1").json()["status"] == "pending"
    assert jobs_client.post(f"{ADAPTERS}/early-merge/versions/1/merge").status_code == 202
    assert jobs_client.get(f"{ADAPTERS}/early-download/versions/1/download").status_code == 200
    assert jobs_client.put(f"{ADAPTERS}/early-alias/aliases/prod", json={"version": 1}).status_code == 200


def test_a_checkpoint_name_is_a_model_only_for_its_team(teams, db, redis):  # noqa: F811 (the fixture)
    from tests.api.test_isolation import succeed as team_succeed

    alice, bob, _root, settings = teams
    done = team_succeed(alice, alice.upload(), settings, db, redis, suffix="bot")
    folder = settings.jobs_dir / done["id"] / "checkpoints" / "checkpoint-1"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    [checkpoint] = alice.get(f"/v1/fine_tuning/jobs/{done['id']}/checkpoints").json()["data"]
    names = (checkpoint["fine_tuned_model_checkpoint"], f"ft:studio-tiny-llama:bot:{done['id'][6:]}:ckpt-step-1")
    assert names[0] == "a.bot:1:ckpt-step-1"
    for name in names:
        body = {"model": name, "messages": [{"role": "user", "content": "hi"}]}
        theirs = bob.post("/v1/chat/completions", json=body)
        assert theirs.status_code == 404 and theirs.json()["error"]["code"] == "model_not_found"
        mine = alice.post("/v1/chat/completions", json=body)  # resolved; no inference worker in this test
        assert mine.status_code == 503 and mine.json()["error"]["code"] == "no_inference_worker"
