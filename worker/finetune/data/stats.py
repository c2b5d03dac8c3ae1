"""Length statistics of a dataset (characters here; the API counts tokens with the same summary)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from .validate import example_chars


def _percentile(sorted_values: Sequence[int], pct: float) -> int:
    """Nearest-rank percentile of an ascending sequence."""
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return int(sorted_values[rank - 1])


def token_stats(lengths: Sequence[int], *, bins: int = 20) -> dict:
    """Summary of per-example lengths. Percentiles use the nearest-rank method; the histogram has
    ``bins`` equal integer-width bins starting at the minimum (the last bin includes its right edge)."""
    values = sorted(int(v) for v in lengths)
    if not values:
        return {"count": 0, "total": 0, "mean": 0.0, "p50": 0, "p95": 0, "max": 0, "min": 0,
                "histogram": {"edges": [], "counts": []}}
    bins = max(1, bins)
    lo, hi = values[0], values[-1]
    width = max(1, math.ceil((hi - lo + 1) / bins))
    counts = [0] * bins
    for v in values:
        counts[min((v - lo) // width, bins - 1)] += 1
    total = sum(values)
    return {"count": len(values), "total": total, "mean": total / len(values),
            "p50": _percentile(values, 50), "p95": _percentile(values, 95), "max": hi, "min": lo,
            "histogram": {"edges": [lo + i * width for i in range(bins + 1)], "counts": counts}}


def char_stats(dataset) -> dict:
    """Tokenizer-free length stats (characters per example), same shape as token_stats.
    Takes a `LoadedDataset` or a `DatasetSummary` (which carries the lengths already)."""
    if getattr(dataset, "records", None) is not None:
        return token_stats([example_chars(rec.data) for rec in dataset.records])
    return token_stats(dataset.lengths)
