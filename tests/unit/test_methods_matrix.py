"""Every tuning type x {learns a repetitive task (trainable weights move, loss falls), saves, reloads with
identical logits, is served by the playground's generation path exactly as its own forward decodes it,
merges where it can}.

One parametrised matrix, PEFT-style: adding a method = one row in CASES.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from tests.helpers import job
from worker.finetune import methods as methods_
from worker.finetune.generate import (
    ModelCache,
    SamplingParams,
    Served,
    encode,
    end_ids,
    stream_generate,
)
from worker.finetune.methods import METHODS
from worker.finetune.spec import parse_spec
from worker.finetune.train import run

# tuning type -> (tuning fields, learning rate that learns the task below in STEPS steps)
CASES = {
    "lora": ({"r": 4}, 1e-2),
    "dora": ({"r": 4}, 1e-2),
    "qlora": ({"r": 4}, 1e-2),
    "adalora": ({"r": 2, "init_r": 4}, 3e-2),
    "ia3": ({}, 1e-1),
    "prefix_tuning": ({"num_virtual_tokens": 4, "encoder_hidden_size": 32}, 3e-2),
    "p_tuning_v2": ({"num_virtual_tokens": 4}, 1e-1),
    "prompt_tuning": ({"num_virtual_tokens": 4, "init_text": "Answer briefly"}, 3e-2),
    "p_tuning": ({"num_virtual_tokens": 4, "encoder_hidden_size": 32}, 3e-2),
    "loha": ({"r": 4}, 1e-1),
    "lokr": ({"r": 4}, 3e-2),
    "adapter": ({"bottleneck_size": 8}, 3e-2),
    "freeze": ({"trainable_layers": 1}, 3e-3),
    "full": ({}, 3e-3),
}
STEPS = 20
# The last steps' loss is at least 10% under the first steps' (virtual-token methods on this 2-layer random
# model level off around -15%; the others fall 30-50%). A method whose weights never reach the forward stays flat.
FALL = 0.9
QUESTION = [{"role": "user", "content": "What is the secret word?"}]
ANSWER = "The secret word is pineapple, of course."
NEW_TOKENS = 12


def test_matrix_covers_every_registered_method():
    assert set(CASES) == set(METHODS)


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory) -> str:
    """A task any method can learn in a few steps: one question, always the same answer."""
    path = tmp_path_factory.mktemp("learnable") / "secret.jsonl"
    row = {"messages": [*QUESTION, {"role": "assistant", "content": ANSWER}]}
    path.write_text("".join(json.dumps(row) + "\n" for _ in range(16)))
    return str(path)


@pytest.fixture(scope="module")
def base_answer(tiny_model) -> str:
    return served_text(ModelCache(size=1), Served(base=tiny_model))


def served_text(cache: ModelCache, served: Served) -> str:
    """What the playground answers at temperature 0 (the chat path the inference worker runs)."""
    out = list(stream_generate(cache, served, messages=QUESTION,
                               params=SamplingParams(temperature=0, max_tokens=NEW_TOKENS)))
    return "".join(d for d in out if isinstance(d, str))


def reference_text(model, tokenizer) -> str:
    """Greedy decoding by hand: the whole sequence through the model's own forward at every step (no KV
    cache), so virtual tokens and prefixes are applied exactly as in training."""
    ids = torch.tensor([encode(tokenizer, messages=QUESTION)])
    ends, generated = end_ids(model, tokenizer), []
    model.eval()
    with torch.no_grad():
        for _ in range(NEW_TOKENS):
            token = int(model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0, -1].argmax())
            if token in ends:
                break
            generated.append(token)
            ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    return tokenizer.decode(generated, skip_special_tokens=True)


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


def trainable(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().float().clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.fixture
def initial_weights(monkeypatch) -> dict[str, torch.Tensor]:
    """The trainable tensors as the method built them, before the first step (the real builder runs)."""
    snapshot: dict[str, torch.Tensor] = {}
    real = methods_.apply_method

    def apply_and_record(*args, **kwargs):
        model = real(*args, **kwargs)
        snapshot.update(trainable(model))
        return model

    monkeypatch.setattr(methods_, "apply_method", apply_and_record)
    return snapshot


def pruned(tuning_type: str, name: str, value: torch.Tensor) -> bool:
    """AdaLoRA's budget zeroes the singular values of the triplets it prunes (their initial value): a whole
    module's `lora_E` can end where it started by design."""
    return tuning_type == "adalora" and ".lora_E." in name and not value.any()


def mean(values) -> float:
    return sum(values) / len(values)


@pytest.mark.parametrize("tuning_type", list(CASES))
def test_method_learns_saves_reloads_serves_and_merges(tuning_type, tiny_model, secret_file, base_answer,
                                                        initial_weights, tmp_path):
    from transformers import AutoTokenizer

    fields, learning_rate = CASES[tuning_type]
    spec = parse_spec(job(tiny_model, secret_file, tuning={"type": tuning_type, **fields},
                          training={"max_steps": STEPS, "learning_rate": learning_rate}))
    out = tmp_path / "artifact"
    result = run(spec, output_dir=out)

    assert result.status == "succeeded" and result.global_step == STEPS
    assert 0 < result.trainable_params <= result.total_params
    losses = [h["train_loss"] for h in result_history(out) if h.get("train_loss") is not None]
    assert len(losses) == STEPS and all(math.isfinite(x) for x in losses)
    assert mean(losses[-3:]) < FALL * mean(losses[:3]), f"{tuning_type}: loss did not fall: {losses}"
    moved = trainable(result.model)
    assert initial_weights and moved.keys() == initial_weights.keys()
    still = [n for n in moved if torch.equal(moved[n], initial_weights[n]) and not pruned(tuning_type, n, moved[n])]
    assert not still, f"{tuning_type}: trainable tensors that never moved: {still}"

    method = METHODS[tuning_type]
    tokenizer = AutoTokenizer.from_pretrained(out)
    inputs = probe_inputs(tokenizer)
    trained = logits(result.model, inputs)
    kind = "qlora" if tuning_type == "qlora" else method.artifact
    reloaded_model = reload(kind, str(out), tiny_model)
    reloaded = logits(reloaded_model, inputs)
    assert torch.allclose(trained, reloaded, atol=1e-5), f"{tuning_type}: reloaded logits differ"

    # the playground serves the artifact as its forward decodes it (the server loads a 4-bit base unquantized)
    served = (Served(base=str(out), artifact="full") if method.artifact == "full" else
              Served(base=tiny_model, artifact=method.artifact, adapter_path=str(out), adapter_key=tuning_type))
    answer = served_text(ModelCache(size=1), served)
    expected = reference_text(reloaded_model if tuning_type != "qlora" else reload("peft", str(out), tiny_model),
                              tokenizer)
    assert answer == expected, f"{tuning_type}: served {answer!r}, its forward decodes {expected!r}"
    assert answer != base_answer, f"{tuning_type}: served text is the base model's: {answer!r}"

    if method.mergeable and tuning_type != "qlora":  # a 4-bit base is re-quantized on merge: not exact
        merged = reloaded_model.merge_and_unload()
        assert torch.allclose(logits(merged, inputs), reloaded, atol=1e-4), f"{tuning_type}: merge changed logits"


def result_history(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()] if (
        out / "metrics.jsonl").exists() else []
