"""Caps that keep reading a file bounded in memory and time, whatever its size or compression."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True)
class DataLimits:
    """`max_dataset_chars` counts the characters of all examples' text once decoded; for compressed
    containers (Parquet) it is also held to `max_expansion` times the file's size (at least
    `expansion_floor_chars`), which is what refuses a decompression bomb early."""

    max_rows: int = 2_000_000
    max_row_bytes: int = 8 * MiB  # one JSONL/CSV/text line, JSON array item or Parquet row
    max_dataset_chars: int = 4 * 1024 * MiB
    max_expansion: int = 50
    expansion_floor_chars: int = 64 * MiB
    max_depth: int = 64  # JSON nesting

    def chars_cap(self, file_bytes: int, compressed: bool) -> int:
        if not compressed:
            return self.max_dataset_chars
        return min(self.max_dataset_chars, max(self.expansion_floor_chars, self.max_expansion * file_bytes))


    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DataLimits:
        """The caps the API was given (`STUDIO_MAX_DATASET_ROWS`, …), so a worker accepts what it accepted."""
        env = os.environ if env is None else env
        names = {"max_rows": "STUDIO_MAX_DATASET_ROWS", "max_dataset_chars": "STUDIO_MAX_DATASET_CHARS",
                 "max_row_bytes": "STUDIO_MAX_ROW_BYTES", "max_expansion": "STUDIO_MAX_DATASET_EXPANSION"}
        return cls(**{f: int(env[name]) for f, name in names.items() if env.get(name, "").strip().isdigit()})


DEFAULT_LIMITS = DataLimits()
