"""Shared fixtures: an isolated data dir and tiny models built from a config (never from the hub)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Nothing loads from the Hugging Face hub in tests: its address is a closed loopback port (a request is
# refused in milliseconds) and the cache is private and empty (tests fill it with snapshot folders; a test
# of offline mode sets HF_HUB_OFFLINE itself). Set before anything imports huggingface_hub.
os.environ.setdefault("HF_ENDPOINT", "http://127.0.0.1:9")
os.environ.setdefault("HF_HUB_CACHE", tempfile.mkdtemp(prefix="studio-hf-cache-"))
# TestClient (and schemathesis) send `Host: testserver`, which the studio refuses like any name it was not
# given (DNS rebinding; tests/api/test_guards.py). Tests measure behaviour, not throughput: no rate limit
# unless a test sets its own (tests/api/test_rate_limit.py; tests/e2e/test_docs_offline.py keeps the default).
os.environ.setdefault("STUDIO_ALLOWED_HOSTS", "testserver")
os.environ.setdefault("STUDIO_RATE_LIMIT", "off")
REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "data"


@pytest.fixture(scope="session", autouse=True)
def studio_data_dir(tmp_path_factory) -> Path:
    """Every test session gets its own STUDIO_DATA_DIR, so nothing leaks between runs."""
    path = tmp_path_factory.mktemp("studio-data")
    os.environ["STUDIO_DATA_DIR"] = str(path)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return path


@pytest.fixture(scope="session")
def tiny_model(studio_data_dir) -> str:
    """A 2-layer Llama (hidden 64) with the demo tokenizer, saved where local models may load from.

    Its linear layers' out_features are multiples of 32 so bitsandbytes' CPU 4-bit kernels run. The wider
    init (0.1) lets a frozen random head still express confident predictions, so LoRA's loss can fall.
    """
    from worker.finetune.models import build_demo_model

    folder = studio_data_dir / "models" / "tiny-llama"
    if not (folder / "config.json").exists():
        build_demo_model(folder, seed=0, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         initializer_range=0.1)
    return str(folder)


@pytest.fixture(scope="session")
def chat_file(tmp_path_factory) -> str:
    """The first 48 rows of the bundled chat dataset (small enough for 2-core CI)."""
    rows = (EXAMPLES / "chat.jsonl").read_text().splitlines()[:48]
    path = tmp_path_factory.mktemp("data") / "chat48.jsonl"
    path.write_text("\n".join(rows) + "\n")
    return str(path)
