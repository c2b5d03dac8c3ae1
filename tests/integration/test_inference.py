"""Chat and completions end to end with real parts: embedded Redis, a `studio worker --queues inference`
process, the API as its own process, and the official `openai` SDK pointed at it."""

from __future__ import annotations

import json
import time

import pytest
import redis

from tests.integration.stack import Stack

openai = pytest.importorskip("openai")
CHAT = {"model": "tiny-llama", "messages": [{"role": "user", "content": "Hello there"}], "temperature": 0,
        "max_tokens": 12}


@pytest.fixture(scope="module")
def stack(studio_data_dir, tiny_model, tmp_path_factory):
    with Stack(studio_data_dir, tmp_path_factory.mktemp("inference-logs"), worker_queues=("inference",)) as stack:
        client = redis.Redis.from_url(stack.env["STUDIO_REDIS_URL"])
        deadline = time.time() + 30
        while not client.zcard("studio:inference:workers"):  # its heartbeat: the API checks it
            assert time.time() < deadline, stack.log_tail()
            time.sleep(0.1)
        client.close()
        yield stack


@pytest.fixture(scope="module")
def http(stack):
    with stack.client(timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def sdk(stack):
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key="unused-on-loopback", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def greedy_answer(http) -> dict:
    response = http.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 200, response.text
    return response.json()


def test_chat_completion(http, greedy_answer):
    choice = greedy_answer["choices"][0]
    assert greedy_answer["object"] == "chat.completion" and greedy_answer["model"] == "tiny-llama"
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"]
    assert choice["finish_reason"] in ("stop", "length")
    usage = greedy_answer["usage"]
    assert usage["prompt_tokens"] > 0 and 1 <= usage["completion_tokens"] <= 12
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    again = http.post("/v1/chat/completions", json=CHAT).json()  # greedy: the same answer, from a warm cache
    assert again["choices"][0]["message"]["content"] == choice["message"]["content"] and again["id"] != greedy_answer["id"]


def test_chat_completion_streamed(http, greedy_answer):
    chunks = []
    with http.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                chunks.append(line.removeprefix("data: "))
    assert chunks[-1] == "[DONE]"
    frames = [json.loads(c) for c in chunks[:-1]]
    assert frames[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(f["choices"][0]["delta"].get("content") or "" for f in frames)
    assert text == greedy_answer["choices"][0]["message"]["content"]
    assert frames[-1]["choices"][0]["finish_reason"] == greedy_answer["choices"][0]["finish_reason"]


def test_unknown_model_is_404(http):
    response = http.post("/v1/chat/completions", json={**CHAT, "model": "no-such-model"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


def test_openai_sdk_chat(sdk, greedy_answer):
    answer = sdk.chat.completions.create(model="tiny-llama", messages=CHAT["messages"], temperature=0, max_tokens=12)
    assert answer.choices[0].message.content == greedy_answer["choices"][0]["message"]["content"]
    assert answer.usage.completion_tokens == greedy_answer["usage"]["completion_tokens"]

    stream = sdk.chat.completions.create(model="tiny-llama", messages=CHAT["messages"], temperature=0,
                                         max_tokens=12, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == answer.choices[0].message.content
    assert chunks[-1].usage.total_tokens == answer.usage.total_tokens

    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.create(model="no-such-model", messages=CHAT["messages"])
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(model="tiny-llama", messages=CHAT["messages"], n=2)


def test_openai_sdk_completion(sdk):
    first = sdk.completions.create(model="tiny-llama", prompt="Once upon a time", max_tokens=6, temperature=0.9,
                                   seed=11)
    second = sdk.completions.create(model="tiny-llama", prompt="Once upon a time", max_tokens=6, temperature=0.9,
                                    seed=11)
    assert first.object == "text_completion" and first.choices[0].text == second.choices[0].text
    assert first.choices[0].finish_reason in ("stop", "length") and first.usage.completion_tokens <= 6


def test_prompt_longer_than_the_context_is_400(http):
    response = http.post("/v1/completions", json={"model": "tiny-llama", "prompt": "word " * 600, "max_tokens": 2})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "context_length_exceeded"


@pytest.fixture
def relative_model(tiny_model):
    """A real model folder at `examples/<name>` relative to the worker's working directory (the repo)."""
    import shutil
    import uuid

    from tests.integration.stack import REPO

    name = f"tmp-model-{uuid.uuid4().hex[:8]}"
    shutil.copytree(tiny_model, REPO / "examples" / name)
    try:
        yield f"examples/{name}"
    finally:
        shutil.rmtree(REPO / "examples" / name, ignore_errors=True)


@pytest.mark.parametrize("suffix", ["@main", ""])
def test_chat_never_loads_a_relative_folder(http, relative_model, suffix):
    """Issue 9: `examples/x@main` was taken as a hub id and transformers loaded the relative folder (200)."""
    response = http.post("/v1/chat/completions", json={**CHAT, "model": relative_model + suffix})
    assert response.status_code != 200 and response.status_code < 600, response.text
    error = response.json()["error"]
    assert "cache" in error["message"] and "Traceback" not in error["message"], error
