"""The artifact folder a run leaves behind, loadable without the studio.

- adapter methods: the PEFT folder (`adapter_config.json` + `adapter_model.safetensors`), whose
  `base_model_name_or_path` is a path or hub id plain transformers loads;
- `adapter` (bottleneck): `bottleneck_config.json` + `bottleneck_model.safetensors`;
- `full` / `freeze`: a transformers model folder;
- always: the tokenizer, `README.md` (a model card in the Hub's conventions), `studio.json` (lineage:
  resolved spec, seed, base model + revision, dataset sha256, library versions, metrics, sha256 of
  every file) and `metrics.jsonl` (written during the run by the reporter).
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from .hashing import file_sha256
from .methods import BOTTLENECK, FULL, PEFT, Method
from .models import ResolvedModel

LINEAGE_FILE = "studio.json"
LIBRARIES = ("torch", "transformers", "peft", "trl", "accelerate", "bitsandbytes", "datasets", "tokenizers",
             "safetensors", "finetuning-studio")
# Folders inside the output dir that are not part of the artifact.
NOT_ARTIFACT = ("checkpoints",)


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def save_weights(model: Any, tokenizer: Any, method: Method, output_dir: Path) -> None:
    if method.artifact == PEFT:
        model.save_pretrained(output_dir, safe_serialization=True)
    elif method.artifact == BOTTLENECK:
        from .bottleneck import save_bottleneck_adapters

        save_bottleneck_adapters(model, output_dir)
    elif method.artifact == FULL:
        model.config.use_cache = True
        model.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)


def artifact_files(output_dir: Path) -> dict[str, str]:
    """sha256 of every file of the artifact (the lineage file itself excluded)."""
    hashes = {}
    for path in sorted(p for p in output_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(output_dir).as_posix()
        if rel == LINEAGE_FILE or rel.split("/", 1)[0] in NOT_ARTIFACT:
            continue
        hashes[rel] = file_sha256(path)
    return hashes


def lineage(*, spec: Any, resolved: ResolvedModel, data: Any, result: Any, method: Method) -> dict[str, Any]:
    datasets = [{"role": "training", "file": spec.training_file, "sha256": data.train.sha256,
                 "format": data.train.format.value, "num_examples": data.train.num_examples}]
    if data.valid is not None:
        datasets.append({"role": "validation", "file": spec.validation_file, "sha256": data.valid.sha256,
                         "format": data.valid.format.value, "num_examples": data.valid.num_examples})
    return {
        "schema": "studio.lineage/1",
        "created_at": int(time.time()),
        "spec": json.loads(spec.model_dump_json()),
        "plan": asdict(result.plan),
        "seed": result.plan.seed,
        "base_model": {"name": resolved.name, "path": resolved.path, "source": resolved.source,
                       "revision": resolved.revision},
        "datasets": datasets,
        "method": {"type": spec.tuning.type, "artifact": method.artifact, "mergeable": method.mergeable,
                   "trainable_params": result.trainable_params, "total_params": result.total_params},
        "libraries": library_versions(),
        "metrics": {**result.metrics, "global_step": result.global_step},
        "data": result.data,
        "warnings": list(getattr(result, "warnings", [])),  # [{code, message}], e.g. loss_diverged
    }


def save_artifacts(*, model: Any, tokenizer: Any, method: Method, spec: Any, resolved: ResolvedModel, data: Any,
                   result: Any, output_dir: Path) -> dict[str, Any]:
    """Write weights, model card and lineage; return the lineage dict."""
    save_weights(model, tokenizer, method, output_dir)
    record = lineage(spec=spec, resolved=resolved, data=data, result=result, method=method)
    quant = _quantization_config(model)
    (output_dir / "README.md").write_text(model_card(record, quant), encoding="utf-8")
    record["files"] = artifact_files(output_dir)
    (output_dir / LINEAGE_FILE).write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    return record


def _quantization_config(model: Any) -> dict[str, Any] | None:
    config = getattr(getattr(model, "config", None), "quantization_config", None)
    if config is None:
        base = getattr(model, "get_base_model", None)
        config = getattr(getattr(base(), "config", None), "quantization_config", None) if base else None
    if config is None:
        return None
    return config.to_dict() if hasattr(config, "to_dict") else dict(config)


def model_card(record: dict[str, Any], quantization: dict[str, Any] | None) -> str:
    """A Hub-style model card: YAML front matter, then procedure, hyperparameters and results."""
    spec, plan, method, metrics = record["spec"], record["plan"], record["method"], record["metrics"]
    library = "peft" if method["artifact"] == PEFT else "transformers"
    base = record["base_model"]["path"] if record["base_model"]["source"] == "hub" else record["base_model"]["name"]
    lines = [
        "---", f"base_model: {base}", f"library_name: {library}", "pipeline_tag: text-generation",
        "tags:", "- finetuning-studio", f"- {method['type']}", f"- {spec['method']['type']}", "---", "",
        f"# {spec.get('suffix') or base + '-' + method['type']}", "",
        f"Fine-tuned from `{base}` with **{method['type']}** ({spec['method']['type']}) by Fine-tuning Studio.",
        "", "## Training procedure", "",
        f"- Stage: {spec['method']['type']}",
        f"- Tuning: `{json.dumps(spec['tuning'])}`",
        f"- Trainable parameters: {method['trainable_params']:,} of {method['total_params']:,}",
        f"- Precision: {plan['precision']} on {plan['device']}; optimizer {plan['optimizer']}",
    ]
    if quantization:
        lines.append(f"- Quantization (bitsandbytes): `{json.dumps(_short_quant(quantization))}`")
    lines += ["", "### Hyperparameters", "", "| name | value |", "|---|---|"]
    hyper = {"n_epochs": plan["n_epochs"], "batch_size": plan["batch_size"], "learning_rate": plan["learning_rate"],
             "total_steps": plan["total_steps"], "seed": plan["seed"], **spec["training"]}
    if plan.get("beta") is not None:
        hyper["beta"] = plan["beta"]
    lines += [f"| {k} | {v} |" for k, v in hyper.items()]
    lines += ["", "## Results", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in metrics.items() if v is not None]
    lines += ["", "## Data", ""]
    lines += [f"- {d['role']}: `{Path(str(d['file'])).name}` ({d['format']}, {d['num_examples']} examples, "
              f"sha256 `{d['sha256'][:16]}…`)" for d in record["datasets"]]
    lines += ["", "## Use", "", _usage(method["artifact"], record["base_model"]["path"]), "",
              "## Framework versions", ""]
    lines += [f"- {k}: {v}" for k, v in record["libraries"].items() if v]
    return "\n".join(lines) + "\n"


def _short_quant(config: dict[str, Any]) -> dict[str, Any]:
    keep = ("load_in_4bit", "load_in_8bit", "bnb_4bit_quant_type", "bnb_4bit_use_double_quant", "bnb_4bit_compute_dtype")
    return {k: config[k] for k in keep if k in config}


def _usage(artifact: str, base: str) -> str:
    if artifact == PEFT:
        return ("```python\nfrom peft import AutoPeftModelForCausalLM\n"
                "model = AutoPeftModelForCausalLM.from_pretrained(\"path/to/this/folder\")\n```")
    if artifact == BOTTLENECK:
        return ("```python\nfrom transformers import AutoModelForCausalLM\n"
                "from worker.finetune.bottleneck import load_bottleneck_adapters\n"
                f"model = AutoModelForCausalLM.from_pretrained({base!r})\n"
                "model = load_bottleneck_adapters(model, \"path/to/this/folder\")\n```")
    return ("```python\nfrom transformers import AutoModelForCausalLM\n"
            "model = AutoModelForCausalLM.from_pretrained(\"path/to/this/folder\")\n```")
