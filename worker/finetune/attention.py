"""Segment attention: causal SDPA per packed example instead of one block-diagonal mask per row.

A packed row holds several examples whose `position_ids` restart at 0. transformers 5 keeps them apart with
a (rows, 1, len, len) block-diagonal mask, so SDPA computes every block of every row and cannot use its
mask-free causal kernel. `segment_sdpa` instead cuts the batch where a new example starts and runs causal
SDPA on each example alone (`is_causal=True`, no mask tensor; on CPU the flash kernel), and the registered
mask function skips building the mask. Same outputs, loss and gradients as the mask
(`tests/unit/test_batching.py`); on CPU it makes a packed step ~7% faster (docs/benchmarks.md).

Only a plain causal request is served this way: whenever transformers would build anything else (a padding
mask, a cache offset, sliding windows, bidirectional or custom mask functions) the mask function builds
SDPA's mask and the attention function runs `sdpa`'s. `use_segment_attention` switches it on only for
text-only causal models using `sdpa` without sliding windows, soft-capping or attention sinks.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

SEGMENT_ATTENTION = "studio_segments"


def example_starts(position_ids: Any, batch: int) -> Any:
    """Flat indices (into batch*len) where an example starts: each row's first token, and every token whose
    position does not follow its left neighbour's (transformers' `find_packed_sequence_indices` rule)."""
    import torch

    positions = position_ids.expand(batch, -1)
    new = torch.ones_like(positions, dtype=torch.bool)
    new[:, 1:] = positions[:, 1:] - positions[:, :-1] != 1
    return new.reshape(-1).nonzero().flatten()


def segment_sdpa(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
                 scaling: float | None = None, is_causal: bool | None = None, position_ids: Any = None,
                 **kwargs: Any) -> tuple[Any, None]:
    """An `AttentionInterface` function: query (B, H, S, D), key/value (B, H_kv, S, D) -> (B, S, H, D).

    The batch is viewed as one (H, B*S, D) stream (a view: q/k/v are (B, S, H, D) in memory) and cut with
    `torch.split` at every example start, so the backward is one `cat`, not a zero-filled tensor per slice.
    """
    import torch
    import torch.nn.functional as F
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    for name in ("sliding_window", "softcap", "s_aux"):
        if kwargs.get(name) is not None:
            raise ValueError(f"segment attention does not implement {name}; use attn_implementation='sdpa'")
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    if attention_mask is not None or not causal or query.shape[2] != key.shape[2]:
        # transformers built a mask (padding, cache offsets, ...) or this is not causal self-attention: plain sdpa
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    if position_ids is None:
        raise ValueError("segment attention needs position_ids in the attention call to keep packed examples "
                         "apart; this model does not pass them: use attn_implementation='sdpa'")
    batch, heads, length, dim = query.shape
    gqa = {"enable_gqa": True} if key.shape[1] != heads else {}
    starts = example_starts(position_ids, batch)
    if starts.numel() == batch:  # one example per row (unpacked, right-padded): one causal call
        out = F.scaled_dot_product_attention(query, key, value, dropout_p=dropout, is_causal=True, scale=scaling,
                                             **gqa)
        return out.transpose(1, 2), None
    sizes = torch.diff(starts, append=starts.new_tensor([batch * length])).tolist()
    flat = [t.transpose(0, 1).reshape(t.shape[1], batch * length, dim) for t in (query, key, value)]
    parts = [F.scaled_dot_product_attention(q[None], k[None], v[None], dropout_p=dropout, is_causal=True,
                                            scale=scaling, **gqa)[0]  # 4-D: the CPU flash kernel
             for q, k, v in zip(*(t.split(sizes, dim=1) for t in flat), strict=True)]
    out = torch.cat(parts, dim=1).view(heads, batch, length, dim).permute(1, 2, 0, 3)
    return out, None


def segment_mask(**kwargs: Any) -> Any:
    """An `AttentionMaskInterface` function: no mask for a plain causal request (`segment_sdpa` reads the
    example boundaries from `position_ids`), SDPA's mask for anything else."""
    from transformers.masking_utils import sdpa_mask

    plain_causal = (kwargs.get("attention_mask") is None and not kwargs.get("use_vmap")
                    and kwargs.get("local_size") is None and "allow_is_bidirectional_skip" not in kwargs
                    and kwargs.get("q_length") == kwargs.get("kv_length")
                    and _is_zero(kwargs.get("q_offset", 0)) and _is_zero(kwargs.get("kv_offset", 0)))
    return None if plain_causal else sdpa_mask(**kwargs)


def _is_zero(value: Any) -> bool:
    return isinstance(value, int) and value == 0


def register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(SEGMENT_ATTENTION, segment_sdpa)
    AttentionMaskInterface.register(SEGMENT_ATTENTION, segment_mask)


def unsupported(model: Any) -> str | None:
    """Why segment attention cannot replace this model's attention, or None if it can."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = base.config
    if config._attn_implementation != "sdpa":
        return f"the model uses {config._attn_implementation} attention, not sdpa"
    if config.sub_configs:
        return "a composite (multimodal) model"
    if not getattr(config, "is_causal", True):
        return "not a causal model"
    if getattr(config, "sliding_window", None) is not None or \
            any(kind != "full_attention" for kind in getattr(config, "layer_types", None) or ()):
        return "sliding-window or hybrid attention layers"
    if getattr(config, "attn_logit_softcapping", None) is not None:
        return "soft-capped attention"
    if any(hasattr(module, "sinks") for module in base.modules()):
        return "attention sinks"
    return None


def use_segment_attention(model: Any) -> bool:
    """Switch a supported model to segment attention; True if it is on."""
    if unsupported(model) is not None:
        return False
    register()
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.set_attn_implementation(SEGMENT_ATTENTION)  # only warns for models not built on AttentionInterface
    if base.config._attn_implementation != SEGMENT_ATTENTION:
        base.set_attn_implementation("sdpa")
        return False
    return True


@contextmanager
def segment_attention(model: Any, *, enabled: bool = True) -> Iterator[bool]:
    """Segment attention inside the block if `enabled` and supported (yields whether it is on); the model
    goes back to `sdpa` afterwards, so saved configs and later generation see the usual implementation."""
    on = enabled and use_segment_attention(model)
    try:
        yield on
    finally:
        if on:
            base = model.get_base_model() if hasattr(model, "get_base_model") else model
            base.set_attn_implementation("sdpa")


__all__ = ["SEGMENT_ATTENTION", "segment_sdpa", "segment_mask", "segment_attention", "use_segment_attention",
           "unsupported"]
