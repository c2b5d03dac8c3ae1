"""The rule behind the `loss_diverged` warning: when a run's training loss has blown up.

A run has diverged when one optimizer step's loss is NaN or infinite, or when the mean loss of the last
`WINDOW` steps exceeds both `FACTOR` x and `MARGIN` + the first step's loss (the model before any update).

- The first rule catches what transformers' log hides: its nan/inf filter logs a NaN step as the average of
  the steps before it (0.0 once NaN persists), so the steps' own losses are watched, not the log.
- The second catches what a too-high learning rate does (a full fine-tune at lr 1: 9.0 -> 204.6), while the
  window keeps one bad batch from tripping it and the margin keeps an already tiny loss (0.01 -> 0.03) quiet.

Flagged once per run, as a warning; training goes on (the person decides what the artifact is worth).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

WINDOW = 5
FACTOR = 3.0
MARGIN = 1.0
CODE = "loss_diverged"


@dataclass
class DivergenceWatch:
    """Fed one loss per optimizer step; `observe` returns the warning the first time the rule trips."""

    learning_rate: float | None = None
    first: float | None = None
    recent: deque = field(default_factory=lambda: deque(maxlen=WINDOW))
    warning: dict[str, str] | None = None

    def observe(self, step: int, loss: float) -> dict[str, str] | None:
        if self.warning is not None:
            return None
        if not math.isfinite(loss):
            return self._flag(f"The training loss was {loss} at step {step}: the weights no longer hold numbers.")
        if self.first is None:
            self.first = loss
        self.recent.append(loss)
        smoothed = sum(self.recent) / len(self.recent)
        if smoothed > max(FACTOR * self.first, self.first + MARGIN):
            times = f"{smoothed / self.first:.1f}x" if self.first > 0 else "above"
            return self._flag(f"The training loss diverged at step {step}: its mean over the last {len(self.recent)} "
                              f"steps, {smoothed:.4g}, is {times} the first step's {self.first:.4g}.")
        return None

    def _flag(self, what: str) -> dict[str, str]:
        rate = f" (it is {self.learning_rate:g})" if self.learning_rate else ""
        self.warning = {"code": CODE, "message": f"{what} Lower the learning rate{rate} or add warmup; "
                                                 "the artifact was kept but is likely not useful."}
        return self.warning
