"""QLoRA on a real GPU: 4-bit NF4 base + paged AdamW trains, and peaks below bf16 LoRA's memory.

Skips cleanly without CUDA (CI and the 2-core machines have none); run it where a GPU is lent.
"""

from __future__ import annotations

import pytest
import torch

from tests.conftest import EXAMPLES
from tests.helpers import job
from worker.finetune.spec import parse_spec
from worker.finetune.train import run

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)"),
]


def peak_memory(tuning: dict, tmp_path) -> tuple[int, str]:
    torch.cuda.reset_peak_memory_stats()
    spec = parse_spec(job("studio-tiny-llama", str(EXAMPLES / "chat.jsonl"), tuning=tuning,
                          training={"max_steps": 10, "precision": "bf16", "max_seq_length": 256}))
    result = run(spec, output_dir=tmp_path / tuning["type"])
    assert result.status == "succeeded"
    return torch.cuda.max_memory_allocated(), result.plan.optimizer


def test_qlora_trains_on_gpu_with_less_memory_than_bf16_lora(tmp_path):
    lora_peak, _ = peak_memory({"type": "lora", "r": 16}, tmp_path)
    qlora_peak, optimizer = peak_memory({"type": "qlora", "r": 16}, tmp_path)
    print(f"peak GPU memory: bf16 LoRA {lora_peak / 2**20:.1f} MiB, QLoRA {qlora_peak / 2**20:.1f} MiB")
    assert optimizer == "paged_adamw_32bit"
    assert qlora_peak < lora_peak
