"""Houlsby bottleneck adapters on a tiny, randomly initialised Llama (no hub access)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from worker.finetune.bottleneck import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    AdapterWrapped,
    BottleneckConfig,
    add_bottleneck_adapters,
    bottleneck_state_dict,
    count_bottleneck_parameters,
    load_bottleneck_adapters,
    save_bottleneck_adapters,
)

HIDDEN = 64
LAYERS = 2
B = 8


def tiny_llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=256,
        hidden_size=HIDDEN,
        intermediate_size=128,
        num_hidden_layers=LAYERS,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=128,
    )
    return LlamaForCausalLM(cfg).eval()


def batch() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (2, 16), generator=g)


def logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids).logits


def train(model: torch.nn.Module, ids: torch.Tensor, steps: int = 20) -> list[float]:
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(steps):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    return losses


def test_insertion_is_identity_and_only_adapters_train():
    ids = batch()
    base = tiny_llama()
    expected = logits(base, ids)

    model = add_bottleneck_adapters(tiny_llama(), BottleneckConfig(bottleneck_size=B))
    assert torch.equal(logits(model, ids), expected)

    wrapped = [n for n, m in model.named_modules() if isinstance(m, AdapterWrapped)]
    assert len(wrapped) == LAYERS * 2
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".adapter." in n for n in trainable)
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert n_trainable == LAYERS * 2 * (HIDDEN * B + B + B * HIDDEN + HIDDEN)
    assert count_bottleneck_parameters(model) == n_trainable
    assert "model.layers.0.self_attn.o_proj.adapter.down.weight" in bottleneck_state_dict(model)
    assert "model.layers.1.mlp.down_proj.adapter.up.bias" in bottleneck_state_dict(model)
    assert model.bottleneck_config.bottleneck_size == B


def test_training_lowers_loss_and_base_stays_frozen():
    model = add_bottleneck_adapters(tiny_llama(), BottleneckConfig(bottleneck_size=B))
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    losses = train(model, batch())
    assert losses[-1] < losses[0] - 0.1
    for n, p in model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n


def test_gradient_checkpointing_trains_adapters():
    model = add_bottleneck_adapters(tiny_llama(), BottleneckConfig(bottleneck_size=B))
    model.gradient_checkpointing_enable()
    model.train()
    ids = batch()
    model(input_ids=ids, labels=ids).loss.backward()
    up = model.model.layers[0].self_attn.o_proj.adapter.up.weight
    assert up.grad is not None and up.grad.abs().sum() > 0


def test_save_then_load_reproduces_trained_model(tmp_path):
    ids = batch()
    model = add_bottleneck_adapters(
        tiny_llama(), BottleneckConfig(bottleneck_size=B, non_linearity="silu", base_model_name_or_path="tiny")
    )
    train(model, ids, steps=5)
    trained = logits(model, ids)

    save_bottleneck_adapters(model, tmp_path)
    assert sorted(os.listdir(tmp_path)) == sorted([CONFIG_NAME, WEIGHTS_NAME])
    cfg = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert cfg["bottleneck_size"] == B and cfg["base_model_name_or_path"] == "tiny"

    reloaded = load_bottleneck_adapters(tiny_llama(), tmp_path)
    assert reloaded.bottleneck_config == model.bottleneck_config
    torch.testing.assert_close(logits(reloaded, ids), trained, atol=1e-6, rtol=0)
    assert not torch.equal(trained, logits(tiny_llama(), ids))  # adapters actually changed something


def test_unknown_target_names_valid_modules():
    with pytest.raises(ValueError, match="o_proj") as err:
        add_bottleneck_adapters(tiny_llama(), BottleneckConfig(target_modules=["c_proj"]))
    assert "c_proj" in str(err.value) and "down_proj" in str(err.value)


def test_config_validation_and_roundtrip():
    with pytest.raises(ValueError):
        BottleneckConfig(bottleneck_size=0)
    with pytest.raises(ValueError):
        BottleneckConfig(non_linearity="swish")
    with pytest.raises(ValueError):
        BottleneckConfig.from_dict({"bottleneck_size": 4, "reduction_factor": 16})
    cfg = BottleneckConfig(bottleneck_size=4, dropout=0.1, target_modules=["o_proj"])
    assert BottleneckConfig.from_dict(cfg.to_dict()) == cfg


def test_load_with_mismatched_config_raises(tmp_path):
    model = add_bottleneck_adapters(tiny_llama(), BottleneckConfig(bottleneck_size=B))
    save_bottleneck_adapters(model, tmp_path)

    # Config says a different bottleneck size than the saved weights.
    cfg = json.loads((tmp_path / CONFIG_NAME).read_text())
    cfg["bottleneck_size"] = B * 2
    (tmp_path / CONFIG_NAME).write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="shape_mismatch"):
        load_bottleneck_adapters(tiny_llama(), tmp_path)

    # Config targets fewer modules than the weights hold -> unexpected keys.
    cfg["bottleneck_size"] = B
    cfg["target_modules"] = ["o_proj"]
    (tmp_path / CONFIG_NAME).write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="unexpected=.*down_proj"):
        load_bottleneck_adapters(tiny_llama(), tmp_path)


def test_load_with_missing_weights_raises(tmp_path):
    from safetensors.torch import load_file, save_file

    model = add_bottleneck_adapters(tiny_llama(), BottleneckConfig(bottleneck_size=B))
    save_bottleneck_adapters(model, tmp_path)
    state = load_file(tmp_path / WEIGHTS_NAME)
    state.pop("model.layers.1.mlp.down_proj.adapter.up.weight")
    save_file(state, tmp_path / WEIGHTS_NAME)
    with pytest.raises(ValueError, match="missing=.*layers.1.mlp.down_proj.adapter.up.weight"):
        load_bottleneck_adapters(tiny_llama(), tmp_path)


def test_adding_twice_raises():
    model = add_bottleneck_adapters(tiny_llama(), BottleneckConfig(bottleneck_size=B))
    with pytest.raises(ValueError, match="already"):
        add_bottleneck_adapters(model, BottleneckConfig(bottleneck_size=B))


def test_no_service_imports():
    code = (
        "import sys, worker.finetune.bottleneck; "
        "bad = [m for m in ('celery', 'fastapi', 'sqlalchemy', 'redis', 'backend') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
