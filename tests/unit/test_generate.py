"""Inference core: decoding knobs (greedy, seed, stop, max_tokens) and the model cache's promise that
adapters of one base share one loaded base, with base-only answers equal to a fresh base's."""

from __future__ import annotations

import pytest

from worker.finetune.generate import (
    Finished,
    GenerationError,
    ModelCache,
    SamplingParams,
    Served,
    sampling_config,
    stream_generate,
)

BASE = Served(base="tiny-llama")
HELLO = [{"role": "user", "content": "Hello there"}]


def run(cache: ModelCache, served: Served = BASE, **params) -> tuple[list[str], Finished]:
    kind = {"prompt": params.pop("prompt")} if "prompt" in params else {"messages": params.pop("messages", HELLO)}
    out = list(stream_generate(cache, served, params=SamplingParams(**params), **kind))
    assert isinstance(out[-1], Finished) and all(isinstance(d, str) for d in out[:-1])
    return out[:-1], out[-1]


def text(cache: ModelCache, served: Served = BASE, **params) -> str:
    return "".join(run(cache, served, **params)[0])


@pytest.fixture(scope="module")
def cache(tiny_model) -> ModelCache:
    return ModelCache(size=4)


def lora_adapter(base_path: str, folder, seed: int) -> str:
    """A LoRA with random (nonzero) B, so its answers differ from the base's."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_path)
    config = LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj", "down_proj"],
                        init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def adapters(tiny_model, tmp_path_factory) -> list[Served]:
    root = tmp_path_factory.mktemp("adapters")
    return [Served(base="tiny-llama", artifact="peft", adapter_key=f"demo:{i}", id=f"demo:{i}",
                   adapter_path=lora_adapter(tiny_model, root / f"a{i}", seed=i)) for i in (1, 2)]


def test_greedy_is_deterministic(cache):
    first, finished = run(cache, temperature=0, max_tokens=16)
    assert "".join(first) and run(cache, temperature=0, max_tokens=16)[0] == first
    assert finished.prompt_tokens > 0 and finished.usage["total_tokens"] == finished.prompt_tokens + finished.completion_tokens


def test_seed_makes_sampling_repeatable(cache):
    answers = {seed: text(cache, prompt="The cat", temperature=1.0, top_p=0.95, max_tokens=16, seed=seed)
               for seed in (1, 2, 3)}
    assert text(cache, prompt="The cat", temperature=1.0, top_p=0.95, max_tokens=16, seed=1) == answers[1]
    assert len(set(answers.values())) > 1  # the seed is what made them equal


def test_sampling_is_temperature_and_top_p_only(cache):
    """transformers fills an unset top_k with 50; OpenAI has no top-k (checked on the merged config)."""
    text(cache, max_tokens=1)
    model = next(iter(cache.entries.values())).model
    sampled = model._prepare_generation_config(sampling_config(SamplingParams(temperature=0.7, top_p=0.9), 8, {1}, 0))[0]
    assert (sampled.do_sample, sampled.temperature, sampled.top_p, sampled.top_k) == (True, 0.7, 0.9, 0)
    assert not sampling_config(SamplingParams(temperature=0), 8, {1}, 0).do_sample


def test_stop_string_cuts_the_text_and_is_never_emitted(cache):
    full = text(cache, temperature=0, max_tokens=24)
    stop = full[len(full) // 2: len(full) // 2 + 3]
    deltas, finished = run(cache, temperature=0, max_tokens=24, stop=(stop, "never-there"))
    assert "".join(deltas) == full[:full.find(stop)]
    assert finished.finish_reason == "stop" and not any(stop in d for d in deltas)


def test_max_tokens_ends_with_length(cache):
    _deltas, finished = run(cache, temperature=0, max_tokens=5)
    assert finished.finish_reason == "length" and finished.completion_tokens == 5


def test_completion_prompt_is_raw_text(cache):
    assert text(cache, prompt="Once upon a time", temperature=0, max_tokens=8) != text(cache, temperature=0, max_tokens=8)


def test_prompt_longer_than_the_context_is_refused(cache):
    with pytest.raises(GenerationError) as caught:
        run(cache, prompt="word " * 600, max_tokens=4)
    assert caught.value.code == "context_length_exceeded"


def test_two_adapters_share_one_base(tiny_model, adapters):
    cache = ModelCache(size=2)
    base_first = text(cache, temperature=0, max_tokens=16)
    answers = [text(cache, adapter, temperature=0, max_tokens=16) for adapter in adapters]
    assert (cache.base_loads, cache.adapter_loads) == (1, 2)
    assert base_first not in answers and answers[0] != answers[1]
    # switching back and forth reuses what is loaded
    assert text(cache, adapters[0], temperature=0, max_tokens=16) == answers[0]
    base_after = text(cache, temperature=0, max_tokens=16)
    assert (cache.base_loads, cache.adapter_loads) == (1, 2)
    assert base_after == base_first == text(ModelCache(), temperature=0, max_tokens=16)


def test_bottleneck_and_full_artifacts(tiny_model, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from worker.finetune.bottleneck import (
        BottleneckConfig,
        add_bottleneck_adapters,
        save_bottleneck_adapters,
    )

    torch.manual_seed(0)
    model = add_bottleneck_adapters(AutoModelForCausalLM.from_pretrained(tiny_model),
                                    BottleneckConfig(target_modules=["o_proj", "down_proj"]))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "adapter" in name:
                param.normal_(0, 0.5)
    save_bottleneck_adapters(model, tmp_path / "bottleneck")
    full = AutoModelForCausalLM.from_pretrained(tiny_model)
    full.save_pretrained(tmp_path / "full")
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(tmp_path / "full")

    cache = ModelCache(size=1)
    base = text(cache, temperature=0, max_tokens=12)
    bottleneck = Served(base="tiny-llama", artifact="bottleneck", adapter_path=str(tmp_path / "bottleneck"))
    assert text(cache, bottleneck, temperature=0, max_tokens=12) != base
    assert text(cache, Served(base=str(tmp_path / "full"), artifact="full"), temperature=0, max_tokens=12) == base
    assert (cache.base_loads, len(cache.entries)) == (3, 1)  # size 1: each kind evicted the one before


def test_served_and_params_from_dicts():
    served = Served.from_dict({"id": "x", "base": "tiny-llama", "adapter_path": None, "adapter_key": None,
                               "artifact": "base"})
    assert served == Served(base="tiny-llama", id="x")
    with pytest.raises(GenerationError):
        Served.from_dict({"base": "b", "artifact": "peft"})
    assert SamplingParams.from_dict({"stop": "END", "seed": None, "max_tokens": 3}).stop == ("END",)


def test_a_base_request_beside_a_prefix_adapter_answers_as_the_base(tiny_model, tmp_path):
    """Prompt-learning adapters join their base's entry; a base-only request then bypasses the prefix."""
    import torch
    from peft import PrefixTuningConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model),
                           PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4))
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.normal_(0, 1.0)
    model.save_pretrained(tmp_path / "prefix")
    cache = ModelCache(size=2)
    prefix = Served(base="tiny-llama", artifact="peft", adapter_path=str(tmp_path / "prefix"), adapter_key="p:1")
    with_prefix = text(cache, prefix, temperature=0, max_tokens=12)
    base = text(cache, temperature=0, max_tokens=12)
    assert (cache.base_loads, cache.adapter_loads) == (1, 1)
    assert base == text(ModelCache(), temperature=0, max_tokens=12) != with_prefix
