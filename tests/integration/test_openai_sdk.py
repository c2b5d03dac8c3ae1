"""The official `openai` SDK against a real `studio up`, unchanged but for `base_url`: upload, fine-tune,
follow events and checkpoints, list the new model and chat with it; the studio's extras go through
`extra_body`. Then what the SDK has no verbs for, over plain HTTP: estimate, aliases in chat, download,
and a merge whose full model gives the adapter's logits."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLES, REPO
from tests.helpers import free_port
from tests.integration.test_studio_up import wait_healthy

openai = pytest.importorskip("openai")


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """`studio up` on a free port with its own data dir and embedded Redis; stopped with SIGTERM."""
    data = tmp_path_factory.mktemp("sdk-studio")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("STUDIO_REDIS_URL", "STUDIO_DATABASE_URL")}
    env.update(STUDIO_DATA_DIR=str(data), STUDIO_PORT=str(port))
    log = open(data / "studio.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "backend.cli", "up"], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while wait_healthy(f"{url}/healthz", proc).get("workers", 0) < 2 and time.time() < deadline:
            time.sleep(0.5)  # the training worker and the inference worker
        yield url, data
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def client(studio):
    url, _ = studio
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused-on-loopback", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def finished_job(client):
    rows = (EXAMPLES / "chat.jsonl").read_text().splitlines()[:64]
    uploaded = client.files.create(file=("chat.jsonl", "\n".join(rows).encode()), purpose="fine-tune")
    assert uploaded.id.startswith("file-") and uploaded.object == "file"
    job = client.fine_tuning.jobs.create(
        model="studio-tiny-llama", training_file=uploaded.id, suffix="sdk-bot", seed=11,
        method={"type": "supervised", "supervised": {"hyperparameters": {"batch_size": 4, "n_epochs": 1,
                                                                         "learning_rate_multiplier": 1}}},
        extra_body={"tuning": {"type": "lora", "r": 8, "target_modules": ["q_proj", "v_proj"]},
                    "training": {"max_steps": 24, "max_seq_length": 128, "save_steps": 8, "learning_rate": 3e-3}})
    assert job.status == "queued" and job.model == "studio-tiny-llama"
    deadline = time.time() + 300
    while (job := client.fine_tuning.jobs.retrieve(job.id)).status not in ("succeeded", "failed", "cancelled"):
        assert time.time() < deadline, f"job still {job.status}"
        time.sleep(1)
    assert job.status == "succeeded", job.error
    return job


def test_the_sdk_fine_tunes_and_follows_the_job(client, finished_job):
    job = finished_job
    assert job.fine_tuned_model == "sdk-bot:1" and job.trained_tokens > 0
    assert job.id in [j.id for j in client.fine_tuning.jobs.list(limit=10).data]
    events = list(client.fine_tuning.jobs.list_events(job.id, limit=10))  # auto-paginates
    steps = [e.data["step"] for e in events if e.type == "metrics" and "train_loss" in (e.data or {})]
    assert steps and steps[-1] == 24
    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert sorted(c.step_number for c in checkpoints)[-1] == 24
    assert checkpoints[0].fine_tuning_job_id == job.id


def test_the_new_model_is_listed_and_answers_in_chat(client, finished_job):
    models = {m.id: m for m in client.models.list().data}
    assert "studio-tiny-llama" in models and finished_job.fine_tuned_model in models
    assert models[finished_job.fine_tuned_model].parent == "studio-tiny-llama"
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    answer = client.chat.completions.create(model=finished_job.fine_tuned_model, messages=messages, max_tokens=12,
                                            temperature=0)
    assert answer.object == "chat.completion" and answer.choices[0].message.role == "assistant"
    assert answer.usage.completion_tokens >= 1 and answer.model == finished_job.fine_tuned_model
    streamed = client.chat.completions.create(model=finished_job.fine_tuned_model, messages=messages,
                                              max_tokens=12, temperature=0, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in streamed if chunk.choices)
    assert text == answer.choices[0].message.content  # greedy: the same answer, streamed
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="no-such-model", messages=messages)
    assert caught.value.body["code"] == "model_not_found"


def test_estimate_and_aliases(studio, client, finished_job):
    url, _ = studio
    body = {"model": "studio-tiny-llama", "tuning": {"type": "lora", "r": 8, "target_modules": "all-linear"}}
    estimate = httpx.post(f"{url}/v1/estimate", json=body, timeout=60).json()
    assert 0 < estimate["trainable_params"] < estimate["total_params"]
    assert estimate["memory"]["total"] == sum(v for k, v in estimate["memory"].items() if k != "total")
    bad = httpx.post(f"{url}/v1/estimate", json={**body, "tuning": {"type": "lora", "r": 0}}, timeout=30)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "tuning.r"

    # Any size: a LLaMA-65B config (no weights; an empty safetensors file marks it as a model folder).
    from transformers import LlamaConfig

    folder = studio[1] / "models" / "llama-65b"
    LlamaConfig(hidden_size=8192, intermediate_size=22016, num_hidden_layers=80, num_attention_heads=64,
                num_key_value_heads=64, vocab_size=32000).save_pretrained(folder)
    (folder / "model.safetensors").write_bytes(b"")
    full = httpx.post(f"{url}/v1/estimate", timeout=60, json={
        "model": "llama-65b", "tuning": {"type": "full"}, "training": {"precision": "bf16"}}).json()
    static = sum(full["memory"][k] for k in ("weights", "adapter", "gradients", "optimizer"))
    assert abs(static - 780e9) < 0.05 * 780e9, full
    qlora = httpx.post(f"{url}/v1/estimate", timeout=60, json={
        "model": "llama-65b", "tuning": {"type": "qlora", "r": 64, "target_modules": "all-linear"},
        "method": {"type": "supervised", "supervised": {"hyperparameters": {"batch_size": 1}}},
        "training": {"max_seq_length": 512, "gradient_checkpointing": True}}).json()
    assert qlora["memory"]["total"] < 48e9, qlora

    assert httpx.put(f"{url}/v1/adapters/sdk-bot/aliases/production", json={"version": 1}).status_code == 200
    messages = [{"role": "user", "content": "Say hello."}]
    by_alias = client.chat.completions.create(model="sdk-bot@production", messages=messages, max_tokens=8, temperature=0)
    by_version = client.chat.completions.create(model="sdk-bot:1", messages=messages, max_tokens=8, temperature=0)
    assert by_alias.choices[0].message.content == by_version.choices[0].message.content


def test_a_merged_version_gives_the_adapters_logits(studio, finished_job, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    url, _ = studio
    version = f"{url}/v1/adapters/sdk-bot/versions/1"
    started = httpx.post(f"{version}/merge", timeout=30)
    assert started.status_code == 202 and started.json()["merge"]["status"] in ("queued", "running", "succeeded")
    deadline = time.time() + 180
    while (merge := httpx.get(version).json()["merge"])["status"] not in ("succeeded", "failed"):
        assert time.time() < deadline, merge
        time.sleep(0.5)
    assert merge["status"] == "succeeded", merge

    def download(**params) -> Path:
        response = httpx.get(f"{version}/download", params=params, timeout=120)
        assert response.status_code == 200, response.text
        with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as archive:
            archive.extractall(tmp_path, filter="data")
            return tmp_path / archive.getnames()[0].split("/")[0]

    adapter_dir, merged_dir = download(), download(artifact="merged")
    assert (merged_dir / "model.safetensors").is_file() and not (merged_dir / "adapter_config.json").exists()
    ids = torch.tensor([[3, 40, 41, 42, 100, 7, 250]])
    merged = AutoModelForCausalLM.from_pretrained(merged_dir)
    base = AutoModelForCausalLM.from_pretrained(json.loads((adapter_dir / "adapter_config.json").read_text())
                                                ["base_model_name_or_path"])
    with torch.no_grad():
        base_logits = base(ids).logits
        adapter_logits = PeftModel.from_pretrained(base, str(adapter_dir))(ids).logits
        merged_logits = merged(ids).logits
    assert not torch.allclose(adapter_logits, base_logits, atol=1e-4)  # the adapter learned something
    torch.testing.assert_close(merged_logits, adapter_logits, atol=1e-4, rtol=1e-4)
