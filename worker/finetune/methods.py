"""One registry of tuning methods: each maps our spec onto peft (or our bottleneck module).

Adding a method = one builder, one `register(...)` line, one row in the test matrix. PEFT does the adapter
maths; the builders only translate `spec.tuning` into peft configs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .spec import ALL_LINEAR

if TYPE_CHECKING:
    from torch import nn

# Which kind of artifact a method produces decides how it is saved and reloaded.
PEFT, BOTTLENECK, FULL = "peft", "bottleneck", "full"


class MethodError(ValueError):
    """The tuning spec does not fit this model (e.g. an unknown target module)."""


@dataclass(frozen=True)
class BuildContext:
    """What a builder may need besides the model: the run length and the base model's location."""

    total_steps: int = 1000
    base_model_path: str | None = None
    gradient_checkpointing: bool = False


Builder = Callable[["nn.Module", Any, BuildContext], "nn.Module"]


@dataclass(frozen=True)
class Method:
    name: str
    build: Builder
    artifact: str  # PEFT | BOTTLENECK | FULL
    mergeable: bool


METHODS: dict[str, Method] = {}


def register(name: str, *, artifact: str, mergeable: bool) -> Callable[[Builder], Builder]:
    def decorator(build: Builder) -> Builder:
        METHODS[name] = Method(name=name, build=build, artifact=artifact, mergeable=mergeable)
        return build

    return decorator


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise MethodError(f"unknown tuning type {name!r}; expected one of: {', '.join(METHODS)}") from None


def apply_method(model: nn.Module, tuning: Any, *, total_steps: int | None = None,
                 context: BuildContext | None = None) -> nn.Module:
    """Make `model` trainable the way `tuning` says; only the method's parameters require grad."""
    ctx = context or BuildContext()
    if total_steps is not None:
        ctx = BuildContext(total_steps, ctx.base_model_path, ctx.gradient_checkpointing)
    return get_method(tuning.type).build(model, tuning, ctx)


# ---------------------------------------------------------------------------------------------------
# Target modules


def linear_module_names(model: nn.Module) -> list[str]:
    """Leaf names of the model's linear layers (what `target_modules` may name), lm_head excluded."""
    from torch import nn

    names: set[str] = set()
    for full_name, module in model.named_modules():
        leaf = full_name.rsplit(".", 1)[-1]
        if leaf in ("lm_head", "score", "classifier") or not full_name:
            continue
        if isinstance(module, nn.Linear) or type(module).__name__ in {"Linear4bit", "Linear8bitLt", "Conv1D"}:
            names.add(leaf)
    return sorted(names)


def resolve_target_modules(model: nn.Module, targets: list[str] | str | None,
                           default: list[str] | None = None) -> list[str]:
    """Expand 'all-linear' and check every name against the model's real modules."""
    valid = linear_module_names(model)
    if targets is None:
        targets = default if default is not None else ALL_LINEAR
    if targets == ALL_LINEAR:
        return valid
    all_leaves = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules() if name}
    unknown = [t for t in targets if t not in all_leaves and not _suffix_match(model, t)]
    if unknown:
        raise MethodError(
            f"unknown target module(s) {', '.join(unknown)}; this model's linear modules are: "
            f"{', '.join(valid)} (or use '{ALL_LINEAR}')"
        )
    return list(targets)


def _suffix_match(model: nn.Module, target: str) -> bool:
    return "." in target and any(name.endswith("." + target) for name, _ in model.named_modules())


# ---------------------------------------------------------------------------------------------------
# Builders: LoRA family


def _peft(model: nn.Module, config: Any) -> nn.Module:
    from peft import get_peft_model

    return get_peft_model(model, config)


def _prepare_quantized(model: nn.Module, ctx: BuildContext) -> nn.Module:
    """QLoRA's recipe: fp32 norms/head, input grads on, checkpointing as asked (Dettmers et al.)."""
    from peft import prepare_model_for_kbit_training

    if getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False):
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=ctx.gradient_checkpointing)
    return model


def _lora_config(model: nn.Module, tuning: Any, *, use_dora: bool) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        task_type="CAUSAL_LM", r=tuning.r, lora_alpha=tuning.alpha, lora_dropout=tuning.dropout,
        target_modules=resolve_target_modules(model, tuning.target_modules), use_dora=use_dora,
        use_rslora=tuning.use_rslora, modules_to_save=tuning.modules_to_save,
    )


def _build_lora_family(use_dora: bool) -> Builder:
    """lora, dora and qlora differ only in DoRA and in the base's quantization (set at load time)."""

    def build(model: nn.Module, tuning: Any, ctx: BuildContext) -> nn.Module:
        model = _prepare_quantized(model, ctx)
        return _peft(model, _lora_config(model, tuning, use_dora=use_dora))

    return build


for _name, _dora in (("lora", False), ("dora", True), ("qlora", False)):
    register(_name, artifact=PEFT, mergeable=True)(_build_lora_family(_dora))


@register("adalora", artifact=PEFT, mergeable=True)
def build_adalora(model: nn.Module, tuning: Any, ctx: BuildContext) -> nn.Module:
    """The rank budget schedule is tied to the run: warm up, prune cubically, then fine-tune at `r`."""
    from peft import AdaLoraConfig

    total = max(ctx.total_steps, 3)
    tinit = int(total * tuning.tinit_ratio)
    tfinal = int(total * tuning.tfinal_ratio)
    if total - tinit - tfinal < 1:
        tinit, tfinal = 0, 0
    model = _prepare_quantized(model, ctx)
    config = AdaLoraConfig(
        task_type="CAUSAL_LM", target_r=tuning.r, init_r=tuning.init_r, lora_alpha=tuning.alpha,
        lora_dropout=tuning.dropout, target_modules=resolve_target_modules(model, tuning.target_modules),
        tinit=tinit, tfinal=tfinal, deltaT=tuning.delta_t, total_step=total, orth_reg_weight=tuning.orth_reg_weight,
    )
    return _peft(model, config)


def _lycoris_kwargs(model: nn.Module, tuning: Any) -> dict[str, Any]:
    return {"task_type": "CAUSAL_LM", "r": tuning.r, "alpha": tuning.alpha, "rank_dropout": tuning.rank_dropout,
            "module_dropout": tuning.module_dropout,
            "target_modules": resolve_target_modules(model, tuning.target_modules)}


@register("loha", artifact=PEFT, mergeable=True)
def build_loha(model: nn.Module, tuning: Any, ctx: BuildContext) -> nn.Module:
    from peft import LoHaConfig

    return _peft(model, LoHaConfig(**_lycoris_kwargs(model, tuning)))


@register("lokr", artifact=PEFT, mergeable=True)
def build_lokr(model: nn.Module, tuning: Any, ctx: BuildContext) -> nn.Module:
    from peft import LoKrConfig

    return _peft(model, LoKrConfig(**_lycoris_kwargs(model, tuning), decompose_both=tuning.decompose_both))


@register("ia3", artifact=PEFT, mergeable=True)
def build_ia3(model: nn.Module, tuning: Any, ctx: BuildContext) -> nn.Module:
    """IA3 rescales keys, values and the feed-forward input; defaults follow peft's per-family map."""
    from peft import IA3Config
    from peft.utils.constants import (
        TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as FF_MAP,
    )
    from peft.utils.constants import (
        TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as TARGET_MAP,
    )

    family = getattr(getattr(model, "config", None), "model_type", None)
    default_targets = TARGET_MAP.get(family)
    if tuning.target_modules is None and default_targets is None:
        raise MethodError(f"ia3 has no default target modules for model type {family!r}; set target_modules")
    targets = resolve_target_modules(model, tuning.target_modules, default=default_targets)
    feedforward = tuning.feedforward_modules
    if feedforward is None:
        feedforward = [t for t in targets if t in (FF_MAP.get(family) or [])]
    model = _prepare_quantized(model, ctx)
    return _peft(model, IA3Config(task_type="CAUSAL_LM", target_modules=targets, feedforward_modules=feedforward))


# ---------------------------------------------------------------------------------------------------
# Builders: virtual tokens


@register("prefix_tuning", artifact=PEFT, mergeable=False)
def build_prefix(model: nn.Module, tuning: Any, ctx: BuildContext) -> nn.Module:
    from peft import PrefixTuningConfig

    return _peft(model, PrefixTuningConfig(
        task_type="CAUSAL_LM", num_virtual_tokens=tuning.num_virtual_tokens, prefix_projection=True,
        encoder_hidden_size=tuning.encoder_hidden_size,
    ))


@register("p_tuning_v2", artifact=PEFT, mergeable=False)
def build_p_tuning_v2(model: nn.Module, tuning: Any, ctx: BuildContext) -> nn.Module:
    from peft import PrefixTuningConfig

    return _peft(model, PrefixTuningConfig(
        task_type="CAUSAL_LM", num_virtual_tokens=tuning.num_virtual_tokens, prefix_projection=False,
    ))


@register("prompt_tuning", artifact=PEFT, mergeable=False)
def build_prompt_tuning(model: nn.Module, tuning: Any, ctx: BuildContext) -> nn.Module:
    from peft import PromptTuningConfig, PromptTuningInit

    text_init = tuning.init_text is not None
    if text_init and not ctx.base_model_path:
        raise MethodError("prompt_tuning init_text needs the base model's tokenizer path")
    return _peft(model, PromptTuningConfig(
        task_type="CAUSAL_LM", num_virtual_tokens=tuning.num_virtual_tokens,
        prompt_tuning_init=PromptTuningInit.TEXT if text_init else PromptTuningInit.RANDOM,
        prompt_tuning_init_text=tuning.init_text, tokenizer_name_or_path=ctx.base_model_path if text_init else None,
    ))


@register("p_tuning", artifact=PEFT, mergeable=False)
def build_p_tuning(model: nn.Module, tuning: Any, ctx: BuildContext) -> nn.Module:
    from peft import PromptEncoderConfig

    return _peft(model, PromptEncoderConfig(
        task_type="CAUSAL_LM", num_virtual_tokens=tuning.num_virtual_tokens,
        encoder_hidden_size=tuning.encoder_hidden_size, encoder_reparameterization_type=tuning.encoder_type,
    ))


# ---------------------------------------------------------------------------------------------------
# Builders: bottleneck adapter, freeze, full


@register("adapter", artifact=BOTTLENECK, mergeable=False)
def build_adapter(model: nn.Module, tuning: Any, ctx: BuildContext) -> nn.Module:
    from .bottleneck import BottleneckConfig, add_bottleneck_adapters

    targets = tuning.target_modules or ["o_proj", "down_proj"]
    leaves = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules() if name}
    unknown = [t for t in targets if t not in leaves]
    if unknown:
        raise MethodError(
            f"unknown target module(s) {', '.join(unknown)}; this model's linear modules are: "
            f"{', '.join(linear_module_names(model))}"
        )
    config = BottleneckConfig(
        bottleneck_size=tuning.bottleneck_size, non_linearity=tuning.non_linearity, target_modules=list(targets),
        dropout=tuning.dropout, base_model_name_or_path=ctx.base_model_path,
    )
    return add_bottleneck_adapters(model, config)


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks: the longest ModuleList in the model."""
    from torch import nn

    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList)]
    if not lists:
        raise MethodError("freeze needs a model with a stack of transformer blocks; none was found")
    return max(lists, key=len)


@register("freeze", artifact=FULL, mergeable=False)
def build_freeze(model: nn.Module, tuning: Any, ctx: BuildContext) -> nn.Module:
    layers = decoder_layers(model)
    if tuning.trainable_layers > len(layers):
        raise MethodError(f"freeze trainable_layers={tuning.trainable_layers} but the model has {len(layers)} blocks")
    model.requires_grad_(False)
    for block in list(layers)[-tuning.trainable_layers:]:
        block.requires_grad_(True)
    if tuning.train_embeddings:
        model.get_input_embeddings().requires_grad_(True)
    if ctx.gradient_checkpointing and hasattr(model, "enable_input_require_grads"):
        model.enable_input_require_grads()
    return model


@register("full", artifact=FULL, mergeable=False)
def build_full(model: nn.Module, tuning: Any, ctx: BuildContext) -> nn.Module:
    return model.requires_grad_(True)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameter counts; 4-bit weights count by their real element count."""
    total = trainable = 0
    for param in model.parameters():
        n = param.numel()
        if type(param).__name__ == "Params4bit":
            n = int(param.quant_state.shape.numel()) if getattr(param, "quant_state", None) else n * 2
        total += n
        if param.requires_grad:
            trainable += n
    return total, trainable
