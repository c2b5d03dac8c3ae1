"""The divergence rule on loss curves (the real runs are in test_train.py)."""

from __future__ import annotations

from worker.finetune.divergence import DivergenceWatch


def flagged(curve: list[float]) -> list[int]:
    watch = DivergenceWatch(learning_rate=1e-3)
    return [step for step, loss in enumerate(curve, 1) if watch.observe(step, loss)]


def test_a_falling_or_noisy_curve_is_not_flagged():
    assert flagged([2.0, 1.8, 1.5, 1.6, 1.2, 1.0, 0.9]) == []
    assert flagged([2.0, 1.9, 7.5, 1.8, 1.7, 1.6]) == []  # one bad batch: the window's mean stays under 3x
    assert flagged([0.01, 0.02, 0.03, 0.04, 0.03]) == []  # 4x a tiny loss, but within the 1.0 margin


def test_a_climbing_curve_is_flagged_once():
    assert flagged([9.0, 30.0, 60.0, 90.0, 150.0, 204.6]) == [3]


def test_nan_or_inf_is_flagged_at_once():
    assert flagged([2.0, float("nan"), 0.0, 0.0]) == [2]
    watch = DivergenceWatch(learning_rate=0.5)
    warning = watch.observe(1, float("inf"))
    assert warning["code"] == "loss_diverged" and "0.5" in warning["message"] and set(warning) == {"code", "message"}
