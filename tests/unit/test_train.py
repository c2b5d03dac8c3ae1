"""Whole runs of the core: loss falls, stages, stop hook, exact resume, artifacts and lineage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import EXAMPLES
from tests.helpers import job
from worker.finetune.hashing import file_sha256
from worker.finetune.reporting import ListReporter
from worker.finetune.spec import parse_spec
from worker.finetune.train import run

LEARNING = {"lora": 3e-3, "dora": 3e-3, "full": 1e-3}


def losses(out: Path) -> list[float]:
    return [r["train_loss"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
            if r.get("train_loss") is not None]


@pytest.mark.parametrize("tuning_type", ["lora", "dora", "full"])
def test_loss_falls_over_30_steps(tuning_type, tiny_model, chat_file, tmp_path):
    spec = parse_spec(job(tiny_model, chat_file, tuning={"type": tuning_type},
                          training={"max_steps": 30, "learning_rate": LEARNING[tuning_type]}))
    run(spec, output_dir=tmp_path)
    curve = losses(tmp_path)
    assert len(curve) == 30
    assert sum(curve[-5:]) / 5 < 0.9 * sum(curve[:5]) / 5, curve


def test_events_artifacts_and_lineage(tiny_model, chat_file, tmp_path):
    valid = str(EXAMPLES / "valid_chat.jsonl")
    spec = parse_spec(job(tiny_model, chat_file, validation_file=valid, suffix="unit-demo",
                          training={"max_steps": 4, "eval_steps": 2, "save_steps": 2}))
    reporter = ListReporter()
    run(spec, output_dir=tmp_path, reporter=reporter)

    metrics = [e["data"] for e in reporter.of_type("metrics")]
    assert [m["step"] for m in metrics if "train_loss" in m] == [1, 2, 3, 4]
    assert all(m["total_steps"] == 4 and m["tokens_per_second"] > 0 for m in metrics if "train_loss" in m)
    assert [m["step"] for m in metrics if "valid_loss" in m] == [2, 4]
    assert [e["data"]["step_number"] for e in reporter.of_type("checkpoint")] == [2, 4]

    names = {p.name for p in tmp_path.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md", "studio.json", "metrics.jsonl"} <= names
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(Path(tiny_model).resolve())
    lineage = json.loads((tmp_path / "studio.json").read_text())
    assert lineage["seed"] == 7 and lineage["spec"]["suffix"] == "unit-demo"
    assert lineage["datasets"][0]["sha256"] == file_sha256(Path(chat_file))
    assert lineage["datasets"][1]["role"] == "validation"
    assert lineage["libraries"]["transformers"] and lineage["libraries"]["peft"]
    assert lineage["base_model"]["revision"]  # a local model's revision is its weights' hash
    for name, digest in lineage["files"].items():
        assert file_sha256(tmp_path / name) == digest, name
    assert "checkpoints/" not in " ".join(lineage["files"])
    card = (tmp_path / "README.md").read_text()
    assert card.startswith("---\nbase_model:") and "library_name: peft" in card and "| learning_rate |" in card


def test_stop_hook_cancels_and_pauses(tiny_model, chat_file, tmp_path):
    spec = parse_spec(job(tiny_model, chat_file, training={"max_steps": 10}))
    calls = iter(range(100))
    result = run(spec, output_dir=tmp_path / "c", stop=lambda: "cancel" if next(calls) >= 1 else None)
    assert result.status == "cancelled" and result.global_step == 2
    assert not (tmp_path / "c" / "adapter_model.safetensors").exists()

    calls = iter(range(100))
    result = run(spec, output_dir=tmp_path / "p", stop=lambda: "pause" if next(calls) >= 2 else None)
    assert result.status == "paused" and result.global_step == 3
    assert result.checkpoint and (Path(result.checkpoint) / "optimizer.pt").exists()


def test_resume_equals_an_uninterrupted_run(tiny_model, chat_file, tmp_path):
    """Pause at step 3, resume from the checkpoint: same losses and same final weights as one run."""
    from safetensors.torch import load_file

    spec = parse_spec(job(tiny_model, chat_file, training={"max_steps": 6, "save_steps": 100}))
    run(spec, output_dir=tmp_path / "full")
    calls = iter(range(100))
    paused = run(spec, output_dir=tmp_path / "split", stop=lambda: "pause" if next(calls) >= 2 else None)
    assert paused.status == "paused" and paused.global_step == 3
    resumed = run(spec, output_dir=tmp_path / "split", resume_from=paused.checkpoint)
    assert resumed.status == "succeeded" and resumed.global_step == 6

    assert losses(tmp_path / "split") == pytest.approx(losses(tmp_path / "full"), abs=1e-5)
    a = load_file(tmp_path / "full" / "adapter_model.safetensors")
    b = load_file(tmp_path / "split" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_packing_trains_with_validation(tiny_model, chat_file, tmp_path):
    spec = parse_spec(job(tiny_model, chat_file, validation_file=str(EXAMPLES / "valid_chat.jsonl"),
                          training={"packing": True, "max_steps": 2, "eval_steps": 2}))
    reporter = ListReporter()
    result = run(spec, output_dir=tmp_path, reporter=reporter)
    assert result.status == "succeeded" and result.metrics["valid_loss"] is not None
    # on CPU packed rows train with segment attention (tests/unit/test_batching.py), then the model is back on sdpa
    assert any("attention per packed example" in e["message"] for e in reporter.of_type("message"))
    assert result.model.get_base_model().config._attn_implementation == "sdpa"
    # packed rows hold several examples: two steps of 4 rows see more tokens than 8 examples would
    assert result.trained_tokens > 8 * result.data["token_stats"]["mean"]


def test_continued_pretraining_on_text(tiny_model, tmp_path):
    spec = parse_spec(job(tiny_model, str(EXAMPLES / "pretrain.jsonl"), method={"type": "pretraining"},
                          training={"max_steps": 2}))
    result = run(spec, output_dir=tmp_path)
    assert result.status == "succeeded" and result.metrics["train_loss"] > 0


def test_dpo_on_preference_pairs(tiny_model, tmp_path):
    rows = (EXAMPLES / "preference.jsonl").read_text().splitlines()[:16]
    data = tmp_path / "pref.jsonl"
    data.write_text("\n".join(rows) + "\n")
    spec = parse_spec(job(tiny_model, str(data), method={"type": "dpo", "dpo": {"hyperparameters": {
        "batch_size": 4, "beta": 0.2}}}, training={"max_steps": 2}))
    reporter = ListReporter()
    result = run(spec, output_dir=tmp_path / "out", reporter=reporter)
    assert result.status == "succeeded" and result.plan.beta == 0.2
    assert len([e for e in reporter.of_type("metrics") if "train_loss" in e["data"]]) == 2
    assert (tmp_path / "out" / "adapter_model.safetensors").exists()


def test_stage_and_format_must_fit(tiny_model, chat_file, tmp_path):
    from worker.finetune.data import DataValidationError

    spec = parse_spec(job(tiny_model, chat_file, method={"type": "dpo"}))
    with pytest.raises(DataValidationError, match="needs preference rows"):
        run(spec, output_dir=tmp_path)


def test_unknown_target_module_lists_the_real_ones(tiny_model, chat_file, tmp_path):
    from worker.finetune.methods import MethodError

    spec = parse_spec(job(tiny_model, chat_file, tuning={"type": "lora", "target_modules": ["q_proj", "qkv"]}))
    with pytest.raises(MethodError, match=r"unknown target module\(s\) qkv.*q_proj.*v_proj"):
        run(spec, output_dir=tmp_path)


def test_lora_on_an_int8_base(tiny_model, chat_file, tmp_path):
    """LLM.int8() through BitsAndBytesConfig: the base loads in 8 bits and LoRA trains on top."""
    spec = parse_spec(job(tiny_model, chat_file, tuning={"type": "lora", "quantization": "int8"},
                          training={"max_steps": 2}))
    result = run(spec, output_dir=tmp_path)
    assert result.status == "succeeded" and result.plan.quantization == "int8"
    assert type(result.model.base_model.model.model.layers[0].self_attn.q_proj.base_layer).__name__ == "Linear8bitLt"
    lineage = json.loads((tmp_path / "studio.json").read_text())
    assert "load_in_8bit" in (tmp_path / "README.md").read_text() and lineage["plan"]["quantization"] == "int8"


def diverged_events(reporter: ListReporter) -> list[dict]:
    return [e for e in reporter.of_type("message") if e["data"].get("code") == "loss_diverged"]


def test_a_healthy_run_has_no_divergence_warning(tiny_model, chat_file, tmp_path):
    spec = parse_spec(job(tiny_model, chat_file, training={"max_steps": 8, "learning_rate": 3e-3}))
    reporter = ListReporter()
    run(spec, output_dir=tmp_path, reporter=reporter)
    assert not diverged_events(reporter)
    assert json.loads((tmp_path / "studio.json").read_text())["warnings"] == []


def test_an_exploding_loss_is_flagged_in_events_and_studio_json(tiny_model, chat_file, tmp_path):
    """A full fine-tune at learning rate 1: the loss climbs several-fold; the run still succeeds, with a word."""
    spec = parse_spec(job(tiny_model, chat_file, tuning={"type": "full"},
                          training={"max_steps": 8, "learning_rate": 1.0}))
    reporter = ListReporter()
    result = run(spec, output_dir=tmp_path, reporter=reporter)
    curve = losses(tmp_path)
    assert result.status == "succeeded" and max(curve) > 3 * curve[0], curve
    [event] = diverged_events(reporter)
    assert event["level"] == "warn" and "learning rate" in event["message"]
    lineage = json.loads((tmp_path / "studio.json").read_text())
    assert lineage["warnings"] == [{"code": "loss_diverged", "message": event["message"]}]


def test_a_nan_loss_is_flagged_though_the_trainers_log_hides_it(tiny_model, chat_file, tmp_path):
    """A base with one NaN weight in its head: every step's loss is NaN; transformers' logging filter
    reports a finite number for such steps, so the warning must come from the steps themselves."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    with torch.no_grad():
        model.lm_head.weight[5, 0] = float("nan")
    folder = Path(tiny_model).parent / "tiny-llama-nan"
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(folder)
    spec = parse_spec(job(str(folder), chat_file, training={"max_steps": 3}))
    reporter = ListReporter()
    run(spec, output_dir=tmp_path, reporter=reporter)
    [event] = diverged_events(reporter)
    assert "nan" in event["message"].lower()
    assert json.loads((tmp_path / "studio.json").read_text())["warnings"][0]["code"] == "loss_diverged"
