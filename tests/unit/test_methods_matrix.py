"""Every tuning type x {trains with finite loss, saves, reloads with identical logits, merges}.

One parametrised matrix, PEFT-style: adding a method = one row in CASES.
"""

from __future__ import annotations

import math

import pytest
import torch

from tests.helpers import job
from worker.finetune.methods import METHODS
from worker.finetune.spec import parse_spec
from worker.finetune.train import run

CASES = {
    "lora": {"r": 4},
    "dora": {"r": 4},
    "qlora": {"r": 4},
    "adalora": {"r": 2, "init_r": 4},
    "ia3": {},
    "prefix_tuning": {"num_virtual_tokens": 4, "encoder_hidden_size": 32},
    "p_tuning_v2": {"num_virtual_tokens": 4},
    "prompt_tuning": {"num_virtual_tokens": 4, "init_text": "Answer briefly"},
    "p_tuning": {"num_virtual_tokens": 4, "encoder_hidden_size": 32},
    "loha": {"r": 4},
    "lokr": {"r": 4},
    "adapter": {"bottleneck_size": 8},
    "freeze": {"trainable_layers": 1},
    "full": {},
}


def test_matrix_covers_every_registered_method():
    assert set(CASES) == set(METHODS)


def probe_inputs(tokenizer) -> dict[str, torch.Tensor]:
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Reverse the word 'cat'."}],
                                         tokenize=False, add_generation_prompt=True)
    return tokenizer([text], return_tensors="pt")


def logits(model, inputs) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(**inputs).logits.float()


def reload(kind: str, out: str, base: str):
    from transformers import AutoModelForCausalLM

    if kind == "full":
        return AutoModelForCausalLM.from_pretrained(out)
    if kind == "bottleneck":
        from worker.finetune.bottleneck import load_bottleneck_adapters

        return load_bottleneck_adapters(AutoModelForCausalLM.from_pretrained(base), out)
    from peft import PeftModel

    base_kwargs = {}
    if kind == "qlora":
        from worker.finetune.models import quantization_config

        base_kwargs = {"quantization_config": quantization_config("nf4", torch.float32), "device_map": {"": "cpu"}}
    return PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, **base_kwargs), out)


@pytest.mark.parametrize("tuning_type", list(CASES))
def test_method_trains_saves_reloads_and_merges(tuning_type, tiny_model, chat_file, tmp_path):
    from transformers import AutoTokenizer

    spec = parse_spec(job(tiny_model, chat_file, tuning={"type": tuning_type, **CASES[tuning_type]}))
    out = tmp_path / "artifact"
    result = run(spec, output_dir=out)

    assert result.status == "succeeded" and result.global_step == 3
    losses = [h["train_loss"] for h in result_history(out)]
    assert len(losses) >= 2 and all(math.isfinite(x) for x in losses)
    assert 0 < result.trainable_params <= result.total_params

    method = METHODS[tuning_type]
    tokenizer = AutoTokenizer.from_pretrained(out)
    inputs = probe_inputs(tokenizer)
    trained = logits(result.model, inputs)
    kind = "qlora" if tuning_type == "qlora" else method.artifact
    reloaded_model = reload(kind, str(out), tiny_model)
    reloaded = logits(reloaded_model, inputs)
    assert torch.allclose(trained, reloaded, atol=1e-5), f"{tuning_type}: reloaded logits differ"

    if method.mergeable and tuning_type != "qlora":  # a 4-bit base is re-quantized on merge: not exact
        merged = reloaded_model.merge_and_unload()
        assert torch.allclose(logits(merged, inputs), reloaded, atol=1e-4), f"{tuning_type}: merge changed logits"


def result_history(out):
    import json

    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()] if (
        out / "metrics.jsonl").exists() else []
