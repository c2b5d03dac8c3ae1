"""The job lifecycle table (worker/lifecycle.py): every (state, event) pair, the terminal states, and the
copy of the table in docs/lifecycle.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker import lifecycle

DOC = Path(__file__).resolve().parents[2] / "docs" / "lifecycle.md"
PAIRS = [(state, event) for state in lifecycle.STATES for event in lifecycle.EVENTS]


def _expected(state: str, event: str) -> str | None:
    """What the rules say, read rule by rule (not through the lookup table under test)."""
    hits = [rule.to_state for rule in lifecycle.RULES if rule.event == event and state in rule.from_states]
    assert len(hits) <= 1, f"{len(hits)} rules for {event} from {state}"
    return hits[0] if hits else None


@pytest.mark.parametrize(("state", "event"), PAIRS)
def test_every_pair_is_allowed_to_the_rules_state_or_refused(state, event):
    assert lifecycle.next_state(state, event) == _expected(state, event)
    assert (state in lifecycle.sources(event)) == (_expected(state, event) is not None)


def test_terminal_states_have_no_way_out():
    for state in lifecycle.TERMINAL:
        assert [event for event in lifecycle.EVENTS if lifecycle.next_state(state, event)] == []


def test_every_active_state_can_end_and_every_state_is_reached():
    reached = {lifecycle.CREATED} | {rule.to_state for rule in lifecycle.RULES}
    assert set(lifecycle.STATES) - {"validating_files"} <= reached
    for state in lifecycle.ACTIVE:
        assert {lifecycle.next_state(state, e) for e in ("succeeded", "failed", "cancelled")} == lifecycle.TERMINAL


def test_user_actions_are_the_users():
    by_event = {rule.event: rule.by for rule in lifecycle.RULES}
    assert all(by_event[e] == (lifecycle.USER,) for e in ("cancel_requested", "pause_requested", "resume"))
    assert all(set(rule.by) <= {lifecycle.USER, lifecycle.SCHEDULER, lifecycle.WORKER} for rule in lifecycle.RULES)


def test_the_doc_holds_the_table_generated_from_the_code():
    assert lifecycle.table_markdown() in DOC.read_text()


def test_the_api_schema_lists_the_tables_states():
    from backend.schemas.jobs import JOB_STATUSES, TERMINAL_STATUSES

    assert set(JOB_STATUSES) == set(lifecycle.STATES) and TERMINAL_STATUSES == lifecycle.TERMINAL
