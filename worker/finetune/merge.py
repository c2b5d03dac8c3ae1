"""Export a registry version as a full model: the adapter merged into its base (`merge_and_unload`).

The merged folder is a plain transformers model (safetensors + tokenizer) that `AutoModelForCausalLM`
loads with no peft installed, plus a `studio.json` naming what it was merged from. It is written to a
temporary folder and renamed into place, so a crash never leaves half a model where the registry looks.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from .artifacts import LINEAGE_FILE, artifact_files, library_versions
from .models import ModelError, load_model, load_tokenizer, resolve_model


def merge_adapter(*, base: str, adapter_dir: str | Path, output_dir: str | Path) -> dict[str, Any]:
    """Merge the PEFT adapter in `adapter_dir` into base model `base`; returns the written lineage."""
    import torch
    from peft import PeftModel

    adapter_dir, output_dir = Path(adapter_dir), Path(output_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise ModelError(f"{adapter_dir} is not a PEFT adapter folder (no adapter_config.json)")
    resolved = resolve_model(base)
    model = load_model(resolved, dtype=torch.float32)  # merge in full precision, store as the base's dtype
    dtype = getattr(model.config, "dtype", None) or torch.float32
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    tmp = output_dir.with_name(output_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    merged.to(dtype if isinstance(dtype, torch.dtype) else torch.float32)
    merged.config.use_cache = True
    merged.save_pretrained(tmp, safe_serialization=True)
    tokenizer_source = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else None
    tokenizer = load_tokenizer(resolve_model(base)) if tokenizer_source is None else _tokenizer(tokenizer_source)
    tokenizer.save_pretrained(tmp)
    source = _read_lineage(adapter_dir)
    record = {"schema": "studio.merged/1", "created_at": int(time.time()),
              "merged_from": {"adapter": str(adapter_dir), "lineage": source},
              "base_model": {"name": resolved.name, "path": resolved.path, "source": resolved.source,
                             "revision": resolved.revision},
              "libraries": library_versions()}
    record["files"] = artifact_files(tmp)
    (tmp / LINEAGE_FILE).write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    shutil.rmtree(output_dir, ignore_errors=True)
    tmp.rename(output_dir)
    return record


def _tokenizer(folder: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)


def _read_lineage(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / LINEAGE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
