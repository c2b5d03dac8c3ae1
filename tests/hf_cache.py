"""Put a model into the test session's Hugging Face cache (`HF_HUB_CACHE`, set in tests/conftest.py) in
the hub's own layout — `models--org--name/refs/<rev>` naming a commit, `snapshots/<commit>/<files>` — so
huggingface_hub finds it offline exactly as it would a downloaded one. Nothing touches the network."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path


def cache_hub_model(repo_id: str, source: Path | None = None, *, config: str | None = None,
                    revision: str = "main") -> Path:
    """Copy the files of model folder `source` (or write just `config` as config.json) into the cache as
    `repo_id` at `revision`; returns the snapshot folder."""
    from huggingface_hub import constants

    repo = Path(constants.HF_HUB_CACHE) / ("models--" + repo_id.replace("/", "--"))
    commit = hashlib.sha1(f"{repo_id}@{revision}".encode()).hexdigest()
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    if source is not None:
        for file in Path(source).iterdir():
            if file.is_file():
                shutil.copy(file, snapshot / file.name)
    if config is not None:
        (snapshot / "config.json").write_text(config)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / revision).write_text(commit)
    return snapshot
