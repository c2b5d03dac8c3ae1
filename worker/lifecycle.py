"""The job lifecycle, written once: states, events, and the table (state × event → state, who causes it).

Torch-free and free of web/queue/DB imports so that the backend (API, relay, scheduler) and the workers
consult the same table. In the spirit of Prefect's orchestration rules, each rule names its FROM states
beside its TO state; a (state, event) pair no rule lists is refused. docs/lifecycle.md holds a copy of
`table_markdown()`, checked by tests/unit/test_lifecycle.py.
"""

from __future__ import annotations

from dataclasses import dataclass

# DESIGN's statuses, in the order a job usually meets them.
STATES = ("validating_files", "queued", "running", "paused", "cancelling", "succeeded", "failed", "cancelled")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
ACTIVE = tuple(state for state in STATES if state not in TERMINAL)
CREATED = "queued"  # `create` (by the user) stores a validated job here; nothing comes before it


USER, SCHEDULER, WORKER = "user", "scheduler", "worker"


@dataclass(frozen=True)
class Rule:
    """`event` moves a job from any of `from_states` to `to_state`; `by` may cause it."""

    event: str
    by: tuple[str, ...]
    from_states: tuple[str, ...]
    to_state: str
    why: str


RULES: tuple[Rule, ...] = (
    Rule("dispatch", (SCHEDULER,), ("queued", "validating_files"), "queued",
         "a free GPU slot takes the job; the status stays until the worker reports running"),
    Rule("dispatch_failed", (SCHEDULER,), ("queued",), "failed",
         "the job cannot be sent (a file of it was deleted)"),
    Rule("start", (WORKER,), ("queued", "validating_files"), "running", "the worker began the run"),
    Rule("pause_requested", (USER,), ("running",), "running",
         "a flag for the worker; the job stays running until the worker checkpoints and reports paused"),
    Rule("paused", (WORKER,), ("queued", "validating_files", "running", "paused"), "paused",
         "the worker checkpointed and stopped"),
    Rule("paused", (WORKER,), ("cancelling",), "cancelled",
         "a cancel that arrived while the worker was pausing wins: nothing will resume it"),
    Rule("resume", (USER,), ("paused",), "queued", "attempt + 1, dispatched again from the newest checkpoint"),
    Rule("cancel_requested", (USER,), ("queued", "validating_files", "paused"), "cancelled",
         "no worker runs it (or its task stops at its first step): cancelled at once"),
    Rule("cancel_requested", (USER,), ("running",), "cancelling", "the worker stops at its next step"),
    Rule("cancel_requested", (USER,), ("cancelling",), "cancelling", "asked again: nothing changes"),
    Rule("cancelled", (WORKER,), ACTIVE, "cancelled", "the worker stopped on the cancel flag"),
    Rule("succeeded", (WORKER,), ACTIVE, "succeeded", "the run finished; the adapter is registered"),
    Rule("failed", (WORKER,), ACTIVE, "failed", "the run failed for a reason of the job itself"),
    Rule("worker_lost", (WORKER, SCHEDULER), ("queued", "validating_files", "running", "paused"), "queued",
         "the run was lost, not the job (lease expired, worker shut down): queued again, attempt + 1"),
    Rule("worker_lost", (WORKER, SCHEDULER), ("cancelling",), "cancelled",
         "the run was lost while cancelling: the cancel completes"),
    Rule("attempts_exhausted", (WORKER, SCHEDULER), ACTIVE, "failed",
         "the run was lost STUDIO_MAX_JOB_ATTEMPTS times: failed with worker_lost"),
)

EVENTS = tuple(dict.fromkeys(rule.event for rule in RULES))

# (state, event) → Rule; built once, checked for overlaps (one pair, one outcome).
TABLE: dict[tuple[str, str], Rule] = {}
for _rule in RULES:
    for _state in _rule.from_states:
        if (_state, _rule.event) in TABLE:
            raise ValueError(f"two rules for {_rule.event} from {_state}")
        TABLE[(_state, _rule.event)] = _rule


def next_state(state: str, event: str) -> str | None:
    """The state `event` moves a job in `state` to, or None when the table refuses it."""
    rule = TABLE.get((state, event))
    return rule.to_state if rule else None


def sources(event: str) -> tuple[str, ...]:
    """The states `event` is allowed from, in STATES order (what a refusal message lists)."""
    return tuple(state for state in STATES if (state, event) in TABLE)


def table_markdown() -> str:
    """The table as markdown: one row per rule (docs/lifecycle.md holds a copy)."""
    rows = ["| event | caused by | from | to | why |", "|---|---|---|---|---|"]
    rows += [f"| `{r.event}` | {', '.join(r.by)} | {', '.join(r.from_states)} | **{r.to_state}** | {r.why} |"
             for r in RULES]
    return "\n".join(rows) + "\n"
