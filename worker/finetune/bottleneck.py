"""Houlsby bottleneck adapters, written here because `adapters` (AdapterHub) cannot import beside transformers 5.

Houlsby et al. 2019, "Parameter-Efficient Transfer Learning for NLP": a small
down-projection -> nonlinearity -> up-projection with a residual connection, inserted after
the attention sublayer and after the feed-forward sublayer of every transformer block,
before the block's own residual add. For Llama-style models that is the OUTPUT of
``self_attn.o_proj`` and ``mlp.down_proj`` (the default ``target_modules``).

The up-projection is zero-initialised, so right after insertion the model computes exactly
what the base model computes; training only moves the adapter weights (the base is frozen).

The adapted model is a plain ``nn.Module``: it works with ``transformers.Trainer`` and with
gradient checkpointing. Do NOT use ``model.save_pretrained`` for it; save and reload with
this module, which writes only the adapter weights plus their config:

    save_bottleneck_adapters(model, "path/to/artifact")
    # -> bottleneck_config.json + bottleneck_model.safetensors

Reloading is one call on a plain base model::

    cfg = json.load(open("path/to/artifact/bottleneck_config.json"))
    model = AutoModelForCausalLM.from_pretrained(cfg["base_model_name_or_path"])
    model = load_bottleneck_adapters(model, "path/to/artifact")
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)

CONFIG_NAME = "bottleneck_config.json"
WEIGHTS_NAME = "bottleneck_model.safetensors"

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}


@dataclass
class BottleneckConfig:
    """Everything needed to rebuild the adapter layout on a base model."""

    bottleneck_size: int = 64
    non_linearity: str = "gelu"
    target_modules: list[str] = field(default_factory=lambda: ["o_proj", "down_proj"])
    dropout: float = 0.0
    base_model_name_or_path: str | None = None

    def __post_init__(self) -> None:
        # Validate early so a bad spec fails before any model is touched.
        if isinstance(self.bottleneck_size, bool) or not isinstance(self.bottleneck_size, int):
            raise ValueError(f"bottleneck_size must be an int, got {self.bottleneck_size!r}")
        if self.bottleneck_size < 1:
            raise ValueError(f"bottleneck_size must be >= 1, got {self.bottleneck_size}")
        if self.non_linearity not in _ACTIVATIONS:
            raise ValueError(
                f"non_linearity must be one of {sorted(_ACTIVATIONS)}, got {self.non_linearity!r}"
            )
        if isinstance(self.target_modules, str):
            self.target_modules = [self.target_modules]
        self.target_modules = list(self.target_modules)
        if not self.target_modules or not all(isinstance(t, str) and t for t in self.target_modules):
            raise ValueError(f"target_modules must be a non-empty list of names, got {self.target_modules!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BottleneckConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown bottleneck config keys {sorted(unknown)}; expected a subset of {sorted(known)}")
        return cls(**data)


class BottleneckAdapter(nn.Module):
    """``y + up(dropout(act(down(y))))``; ``up`` starts at zero so the adapter starts as identity."""

    def __init__(self, hidden_size: int, config: BottleneckConfig) -> None:
        super().__init__()
        self.down = nn.Linear(hidden_size, config.bottleneck_size)
        self.act = _ACTIVATIONS[config.non_linearity]()
        self.dropout = nn.Dropout(config.dropout)
        self.up = nn.Linear(config.bottleneck_size, hidden_size)
        # Houlsby: near-identity start. Small-std down projection, exactly-zero up projection.
        nn.init.trunc_normal_(self.down.weight, std=1e-2, a=-2e-2, b=2e-2)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y + self.up(self.dropout(self.act(self.down(y))))


class AdapterWrapped(nn.Module):
    """Runs the original layer, then the adapter on its output (keys: ``base_layer.*``, ``adapter.*``)."""

    def __init__(self, base_layer: nn.Module, adapter: BottleneckAdapter) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.adapter = adapter

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.adapter(self.base_layer(*args, **kwargs))


def _output_features(module: nn.Module, name: str) -> int:
    """Width of the layer's output, which is the adapter's input and output width."""
    out = getattr(module, "out_features", None)
    if isinstance(out, int):
        return out
    raise ValueError(f"cannot infer the output size of {name!r} ({type(module).__name__}); target nn.Linear-like modules")


def _placement(module: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device and float dtype of the layer, so the adapter sits beside it (quantized weights fall back)."""
    device, dtype = torch.device("cpu"), None
    for p in module.parameters():
        device = p.device
        if p.is_floating_point():
            dtype = p.dtype
            break
    if dtype is None:
        dtype = getattr(module, "compute_dtype", None) or torch.float32
    return device, dtype


def _matches(name: str, targets: list[str]) -> bool:
    return any(name == t or name.endswith("." + t) for t in targets)


def _leaf_names(model: nn.Module) -> list[str]:
    return sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if n and not list(m.children())})


def has_bottleneck_adapters(model: nn.Module) -> bool:
    return any(isinstance(m, AdapterWrapped) for m in model.modules())


def add_bottleneck_adapters(model: nn.Module, config: BottleneckConfig) -> nn.Module:
    """Insert adapters after every targeted module, freeze the base and keep only adapters trainable."""
    if has_bottleneck_adapters(model):
        raise ValueError("model already has bottleneck adapters")
    targets = [(n, m) for n, m in model.named_modules() if n and _matches(n, config.target_modules)]
    if not targets:
        raise ValueError(
            f"target_modules {config.target_modules} matched no module; valid leaf module names are: {_leaf_names(model)}"
        )
    unmatched = [t for t in config.target_modules if not any(_matches(n, [t]) for n, _ in targets)]
    if unmatched:
        raise ValueError(
            f"target_modules {unmatched} matched no module; valid leaf module names are: {_leaf_names(model)}"
        )

    for p in model.parameters():
        p.requires_grad_(False)

    for name, module in targets:
        device, dtype = _placement(module)
        adapter = BottleneckAdapter(_output_features(module, name), config).to(device=device, dtype=dtype)
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, AdapterWrapped(module, adapter))

    if config.base_model_name_or_path is None:
        config.base_model_name_or_path = getattr(model, "name_or_path", None) or None
    model.bottleneck_config = config
    # With a frozen base, reentrant gradient checkpointing needs inputs that require grad.
    if hasattr(model, "enable_input_require_grads"):
        try:
            model.enable_input_require_grads()
        except NotImplementedError:  # models without input embeddings
            pass
    return model


def bottleneck_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Adapter weights only, keyed like ``model.layers.0.self_attn.o_proj.adapter.down.weight``."""
    state: dict[str, torch.Tensor] = {}
    for name, module in model.named_modules():
        if isinstance(module, AdapterWrapped):
            prefix = f"{name}.adapter." if name else "adapter."
            for key, tensor in module.adapter.state_dict().items():
                state[prefix + key] = tensor
    return state


def count_bottleneck_parameters(model: nn.Module) -> int:
    return sum(t.numel() for t in bottleneck_state_dict(model).values())


def save_bottleneck_adapters(model: nn.Module, directory: str | os.PathLike[str]) -> None:
    """Write ``bottleneck_config.json`` and ``bottleneck_model.safetensors`` (adapter weights only)."""
    from safetensors.torch import save_file

    config = getattr(model, "bottleneck_config", None)
    if config is None or not has_bottleneck_adapters(model):
        raise ValueError("model has no bottleneck adapters; call add_bottleneck_adapters first")
    os.makedirs(directory, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in bottleneck_state_dict(model).items()}
    save_file(state, os.path.join(directory, WEIGHTS_NAME), metadata={"format": "pt"})
    with open(os.path.join(directory, CONFIG_NAME), "w", encoding="utf-8") as f:
        json.dump(config.to_dict(), f, indent=2)


def load_bottleneck_config(directory: str | os.PathLike[str]) -> BottleneckConfig:
    with open(os.path.join(directory, CONFIG_NAME), encoding="utf-8") as f:
        return BottleneckConfig.from_dict(json.load(f))


def load_bottleneck_adapters(model: nn.Module, directory: str | os.PathLike[str]) -> nn.Module:
    """Insert adapters into a plain base model per the saved config and load their weights strictly."""
    from safetensors.torch import load_file

    config = load_bottleneck_config(directory)
    name_or_path = getattr(model, "name_or_path", None)
    if config.base_model_name_or_path and name_or_path and name_or_path != config.base_model_name_or_path:
        logger.warning(
            "bottleneck adapters were trained on %r but are being loaded into %r",
            config.base_model_name_or_path,
            name_or_path,
        )
    model = add_bottleneck_adapters(model, config)
    saved = load_file(os.path.join(directory, WEIGHTS_NAME))
    expected = bottleneck_state_dict(model)

    missing = sorted(set(expected) - set(saved))
    unexpected = sorted(set(saved) - set(expected))
    wrong_shape = sorted(
        f"{k}: saved {tuple(saved[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(saved) & set(expected)
        if saved[k].shape != expected[k].shape
    )
    if missing or unexpected or wrong_shape:
        raise ValueError(
            f"bottleneck weights in {os.fspath(directory)!r} do not fit this model/config: "
            f"missing={missing[:5]}{'...' if len(missing) > 5 else ''} "
            f"unexpected={unexpected[:5]}{'...' if len(unexpected) > 5 else ''} "
            f"shape_mismatch={wrong_shape[:5]}{'...' if len(wrong_shape) > 5 else ''}"
        )
    with torch.no_grad():
        for key, tensor in saved.items():
            expected[key].copy_(tensor)
    return model
