"""Parameter counts and memory estimates from configs alone (meta device, no weights, no hub)."""

from __future__ import annotations

import time

import pytest
from transformers import LlamaConfig

from worker.finetune.estimate import (
    Estimate,
    activation_bytes,
    estimate_from_config,
    format_estimate,
    quantized_bytes,
)
from worker.finetune.spec import TUNING_TYPES, parse_spec

HIDDEN, INTER, LAYERS, HEADS, KV_HEADS, VOCAB = 64, 128, 2, 4, 2, 256


def tiny() -> LlamaConfig:
    return LlamaConfig(
        vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=INTER, num_hidden_layers=LAYERS,
        num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, tie_word_embeddings=False,
    )


def llama_65b() -> LlamaConfig:
    return LlamaConfig(
        hidden_size=8192, intermediate_size=22016, num_hidden_layers=80, num_attention_heads=64,
        num_key_value_heads=64, vocab_size=32000,
    )


def spec(tuning: dict, **training) -> object:
    hyper = training.pop("batch_size", "auto")
    return parse_spec({
        "model": "studio-tiny-llama", "training_file": "train.jsonl", "tuning": tuning,
        "training": training, "method": {"type": "supervised", "supervised": {"hyperparameters": {"batch_size": hyper}}},
    })


def base_params(cfg: LlamaConfig) -> int:
    h, i, kv = cfg.hidden_size, cfg.intermediate_size, cfg.num_key_value_heads * (cfg.hidden_size // cfg.num_attention_heads)
    per_layer = 2 * h * h + 2 * h * kv + 3 * h * i + 2 * h  # q,o + k,v + gate,up,down + 2 norms
    return cfg.num_hidden_layers * per_layer + 2 * cfg.vocab_size * h + h


# --------------------------------------------------------------------------------------------------
# Parameter counts


def test_lora_trainable_is_r_times_in_plus_out_over_targeted_linears():
    r, kv = 8, KV_HEADS * (HIDDEN // HEADS)
    shapes = [(HIDDEN, HIDDEN), (HIDDEN, kv), (HIDDEN, kv), (HIDDEN, HIDDEN),  # q, k, v, o
              (HIDDEN, INTER), (HIDDEN, INTER), (INTER, HIDDEN)]  # gate, up, down
    expected = LAYERS * sum(r * (n_in + n_out) for n_in, n_out in shapes)
    est = estimate_from_config(tiny(), spec({"type": "lora", "r": r}))
    assert est.trainable_params == expected
    assert est.total_params == base_params(tiny())

    only_qv = estimate_from_config(tiny(), spec({"type": "lora", "r": r, "target_modules": ["q_proj", "v_proj"]}))
    assert only_qv.trainable_params == LAYERS * r * ((HIDDEN + HIDDEN) + (HIDDEN + kv))


def test_full_trains_everything_and_freeze_only_the_top_blocks():
    full = estimate_from_config(tiny(), spec({"type": "full"}))
    assert full.trainable_params == full.total_params == base_params(tiny())
    assert full.memory.adapter == 0

    freeze = estimate_from_config(tiny(), spec({"type": "freeze", "trainable_layers": 1}))
    assert freeze.trainable_params == (base_params(tiny()) - 2 * VOCAB * HIDDEN - HIDDEN) // LAYERS
    assert freeze.memory.adapter == 0


def test_prompt_tuning_trains_virtual_tokens_times_hidden():
    est = estimate_from_config(tiny(), spec({"type": "prompt_tuning", "num_virtual_tokens": 10}))
    assert est.trainable_params == 10 * HIDDEN
    assert est.total_params == base_params(tiny())  # the base, not base + soft prompt
    with_text = estimate_from_config(tiny(), spec({"type": "prompt_tuning", "num_virtual_tokens": 10,
                                                   "init_text": "Classify the sentiment"}))
    assert with_text.trainable_params == 10 * HIDDEN  # no tokenizer needed to count


def test_p_tuning_v2_trains_a_prefix_per_layer_for_keys_and_values():
    est = estimate_from_config(tiny(), spec({"type": "p_tuning_v2", "num_virtual_tokens": 5}))
    kv = KV_HEADS * (HIDDEN // HEADS)
    assert est.trainable_params == 5 * LAYERS * 2 * kv  # peft sizes the prefix by key/value heads


@pytest.mark.parametrize("kind", TUNING_TYPES)
def test_every_tuning_type_estimates_on_the_meta_device(kind):
    est = estimate_from_config(tiny(), spec({"type": kind}))
    assert est.total_params == base_params(tiny())
    assert est.trainable_params > 0
    m = est.memory
    assert m.total == m.weights + m.adapter + m.gradients + m.optimizer + m.activations
    assert m.optimizer == 8 * est.trainable_params


# --------------------------------------------------------------------------------------------------
# Memory


def test_bf16_weights_are_half_of_fp32():
    bf16 = estimate_from_config(tiny(), spec({"type": "lora"}, precision="bf16"))
    fp32 = estimate_from_config(tiny(), spec({"type": "lora"}, precision="fp32"))
    assert 2 * bf16.memory.weights == fp32.memory.weights == 4 * base_params(tiny())
    assert 2 * bf16.memory.gradients == fp32.memory.gradients


def test_auto_precision_is_bf16_on_gpu_and_fp32_on_cpu():
    s = spec({"type": "lora"})
    assert estimate_from_config(tiny(), s).assumptions["precision"] == "bf16"
    assert estimate_from_config(tiny(), s, device="cpu").assumptions["precision"] == "fp32"


def test_quantized_weights_are_smaller():
    lora = estimate_from_config(tiny(), spec({"type": "lora"}))
    int8 = estimate_from_config(tiny(), spec({"type": "lora", "quantization": "int8"}))
    qlora = estimate_from_config(tiny(), spec({"type": "qlora"}))
    assert qlora.memory.weights < int8.memory.weights < lora.memory.weights
    assert qlora.trainable_params == lora.trainable_params  # same adapter, smaller base


def test_quantized_bytes_match_the_qlora_paper():
    n = 64 * 256 * 100
    assert quantized_bytes(n, 1, "nf4") == n // 2 + 4 * n // 64  # 0.5 bit per weight of constants
    assert quantized_bytes(n, 1, "nf4", double_quant=True) == n // 2 + n // 64 + 4 * 100  # 0.127 bit
    assert quantized_bytes(n, 128, "int8") == n + 4 * 128


def test_gradient_checkpointing_lowers_activations():
    off = estimate_from_config(tiny(), spec({"type": "lora"}, max_seq_length=256, batch_size=4))
    on = estimate_from_config(tiny(), spec({"type": "lora"}, max_seq_length=256, batch_size=4,
                                          gradient_checkpointing=True))
    assert on.memory.activations < off.memory.activations
    assert on.memory.weights == off.memory.weights


def test_activations_follow_korthikanti():
    cfg = tiny()
    s, b = 128, 2
    per_layer = s * b * HIDDEN * (34 + 5 * HEADS * s / HIDDEN)
    logits = b * s * VOCAB * 4
    got = activation_bytes(cfg, batch=b, seq=s, bytes_per_value=2, checkpointing=False, layers=LAYERS)
    assert got == LAYERS * per_layer + logits
    got_ckpt = activation_bytes(cfg, batch=b, seq=s, bytes_per_value=2, checkpointing=True, layers=LAYERS)
    assert got_ckpt == LAYERS * 2 * s * b * HIDDEN + per_layer + logits


def test_auto_batch_size_uses_the_default_and_is_recorded():
    from worker.finetune.estimate import DEFAULT_BATCH_SIZE

    est = estimate_from_config(tiny(), spec({"type": "lora"}))
    assert est.assumptions["batch_size"] == DEFAULT_BATCH_SIZE and est.assumptions["batch_size_auto"]
    assert estimate_from_config(tiny(), spec({"type": "lora"}, batch_size=3)).assumptions["batch_size"] == 3


# --------------------------------------------------------------------------------------------------
# The seeds' figures: LLaMA-65B


def test_llama_65b_full_fine_tuning_needs_about_780_gb():
    """bf16 weights + bf16 gradients + fp32 Adam m, v = 12 bytes per parameter (~65.3B)."""
    start = time.perf_counter()
    est = estimate_from_config(llama_65b(), spec({"type": "full"}, precision="bf16"))
    assert time.perf_counter() - start < 10  # meta device: no weights allocated
    assert est.total_params == est.trainable_params == base_params(llama_65b())
    assert 65.0e9 < est.total_params < 65.5e9
    m = est.memory
    static = m.weights + m.adapter + m.gradients + m.optimizer
    assert static == 12 * est.total_params
    assert abs(static - 780e9) <= 0.05 * 780e9


def test_llama_65b_qlora_fits_a_48_gb_gpu():
    s = spec({"type": "qlora", "r": 64, "target_modules": "all-linear", "quantization": "nf4", "double_quant": True},
             batch_size=1, max_seq_length=512, gradient_checkpointing=True)
    est = estimate_from_config(llama_65b(), s)
    m = est.memory
    assert 33e9 <= m.weights <= 35e9
    h, i, layers = 8192, 22016, 80
    assert est.trainable_params == layers * 64 * (4 * (h + h) + 3 * (h + i))
    assert m.total < 48e9
    assert est.assumptions["optimizer"] == "paged AdamW 32-bit"


def test_to_dict_and_format():
    est = estimate_from_config(tiny(), spec({"type": "lora"}))
    assert isinstance(est, Estimate)
    d = est.to_dict()
    assert set(d) == {"total_params", "trainable_params", "memory", "assumptions"}
    assert set(d["memory"]) == {"weights", "adapter", "gradients", "optimizer", "activations", "total"}
    text = format_estimate(est)
    assert "trainable" in text and "total" in text and "GB" in text
