"""The fair queue: which waiting job runs next, and every queued job's honest place in line (docs/queue.md).

A queued job is either *waiting* (in the DB only, `dispatched_at IS NULL`) or *dispatched* (handed to
Celery for a GPU worker that had a free slot; it starts within moments). Waiting jobs are ordered by:

1. `priority`, higher first — strictly;
2. fair share across users (`jobs.owner`; jobs without an owner are one anonymous user): a job's *round*
   is how many jobs its user already has in flight (dispatched, running or cancelling) plus how many of the
   user's own waiting jobs come before it (the user's own order is priority, then age). Lower rounds go
   first, so users with waiting work take turns — round robin — and a user who already holds GPUs waits
   behind one who holds none;
3. equal priority and round (so: different users) → the user whose latest dispatch is oldest (never
   served counts as oldest): the round robin remembers whose turn it was after jobs end;
4. FIFO: then the job created first (then the lower id).

`queue_position` counts dispatched jobs first (by dispatch time), then waiting jobs in that order. Limits
(`STUDIO_MAX_RUNNING_PER_USER`, `STUDIO_TEAM_QUOTAS`) do not change the order: the dispatcher passes over a
job whose user or team is at its limit and takes the next one that fits; the skipped job keeps its place.
The order is one SQL query (window functions, SQLite and PostgreSQL alike) shared by the scheduler and
`queue_position`, so what the API reports is what the scheduler does.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import Select, and_, func, literal_column, or_, select
from sqlalchemy.orm import Session

from backend.db.models import Job

IN_FLIGHT_STATUSES = ("running", "cancelling")
ANONYMOUS = ""  # the owner key of jobs without an owner (one user for fairness)


def in_flight_clause():
    """Jobs holding (or about to hold) a GPU slot: running, cancelling, or queued and dispatched."""
    return or_(Job.status.in_(IN_FLIGHT_STATUSES), and_(Job.status == "queued", Job.dispatched_at.is_not(None)))


def waiting_clause():
    return and_(Job.status == "queued", Job.dispatched_at.is_(None))


def _owner(column=Job.owner):
    # A literal, not a bound parameter: PostgreSQL must see GROUP BY and SELECT use the same expression.
    return func.coalesce(column, literal_column("''"))


def ranked_waiting() -> Select:
    """Every waiting job as (id, owner, team, priority, round, position), `position` 1-based by the rule,
    ordered by it."""
    flight = (select(_owner().label("owner"), func.count().label("n")).where(in_flight_clause())
              .group_by(_owner()).subquery("flight"))
    own_order = (Job.priority.desc(), Job.created_at, Job.id)
    waiting = (select(Job.id, _owner().label("owner"), Job.team, Job.priority, Job.created_at,
                      (func.row_number().over(partition_by=_owner(), order_by=own_order) - 1).label("idx"))
               .where(waiting_clause()).subquery("waiting"))
    # Each user's latest dispatch (ms; jobs keep it after they end): in a tie, who was served longest ago
    # goes first — the round robin's memory. Grouped on the raw column so the (owner, dispatched_at) index
    # serves it.
    served = (select(Job.owner.label("owner"), func.max(Job.dispatched_at).label("last"))
              .where(Job.dispatched_at.is_not(None)).group_by(Job.owner).subquery("served"))
    rounds = (select(waiting.c.id, waiting.c.owner, waiting.c.team, waiting.c.priority, waiting.c.created_at,
                     (waiting.c.idx + func.coalesce(flight.c.n, 0)).label("round"),
                     func.coalesce(served.c.last, 0).label("served"))
              .select_from(waiting.outerjoin(flight, flight.c.owner == waiting.c.owner)
                           .outerjoin(served, _owner(served.c.owner) == waiting.c.owner)).subquery("rounds"))
    order = (rounds.c.priority.desc(), rounds.c.round, rounds.c.served, rounds.c.created_at, rounds.c.id)
    return (select(rounds.c.id, rounds.c.owner, rounds.c.team, rounds.c.priority, rounds.c.round,
                   func.row_number().over(order_by=order).label("position")).order_by(*order))


def queue_positions(*, session: Session, job_ids: list[str]) -> dict[str, int]:
    """1-based place of the given queued jobs: dispatched ones first (by dispatch time), then the waiting
    ones by the rule. Jobs that are not queued are left out."""
    if not job_ids:
        return {}
    dispatched = (select(Job.id, func.row_number().over(order_by=(Job.dispatched_at, Job.id)).label("position"))
                  .where(Job.status == "queued", Job.dispatched_at.is_not(None)).subquery())
    out = {job_id: int(pos) for job_id, pos in
           session.execute(select(dispatched.c.id, dispatched.c.position).where(dispatched.c.id.in_(job_ids)))}
    waiting_ids = [j for j in job_ids if j not in out]
    if waiting_ids:
        ahead = session.scalar(select(func.count()).select_from(Job)
                               .where(Job.status == "queued", Job.dispatched_at.is_not(None))) or 0
        positions = waiting_positions(session)
        out.update({job_id: ahead + positions[job_id] for job_id in waiting_ids if job_id in positions})
    return out


_positions: dict[str, tuple[tuple, float, dict[str, int]]] = {}  # database url -> (fingerprint, when, positions)
_positions_lock = threading.Lock()
POSITIONS_MAX_AGE_SECONDS = 2.0


def forget_positions() -> None:
    """Drop the cached positions (for tests and tools that edit a job's owner or priority in place; the API
    never does: both are fixed when a job is created)."""
    with _positions_lock:
        _positions.clear()


def waiting_positions(session: Session) -> dict[str, int]:
    """Every waiting job's place by the rule. Ranking 10,000 waiting jobs takes tens of ms, so the result is
    kept while the queue is unchanged — same waiting set (count, id range, sum of creation times) and same
    jobs in flight per user — for at most `POSITIONS_MAX_AGE_SECONDS`; a page of jobs then costs two small
    aggregate queries."""
    waiting = session.execute(select(func.count(), func.min(Job.id), func.max(Job.id), func.sum(Job.created_at))
                              .where(waiting_clause())).one()
    flight = session.execute(select(_owner(), func.count()).where(in_flight_clause()).group_by(_owner())).all()
    fingerprint = (tuple(waiting), tuple(sorted(map(tuple, flight))))
    key = str(session.get_bind().url)
    with _positions_lock:
        cached = _positions.get(key)
    if cached and cached[0] == fingerprint and time.monotonic() - cached[1] < POSITIONS_MAX_AGE_SECONDS:
        return cached[2]
    positions = {row.id: int(row.position) for row in session.execute(ranked_waiting())}
    with _positions_lock:
        _positions[key] = (fingerprint, time.monotonic(), positions)
    return positions


# ---------------------------------------------------------------------------------------------------
# Limits


@dataclass(frozen=True)
class Limits:
    """`per_user`: in-flight jobs per user (0 = no limit); `team_quotas`: per team, `*` for unlisted teams.
    Jobs without a team have no team quota."""

    per_user: int = 0
    team_quotas: dict[str, int] = field(default_factory=dict)

    def team_limit(self, team: str | None) -> int | None:
        if team is None:
            return None
        return self.team_quotas.get(team, self.team_quotas.get("*"))


@dataclass
class InFlight:
    """What holds GPU slots now, counted per user and per team."""

    total: int = 0
    by_owner: Counter = field(default_factory=Counter)
    by_team: Counter = field(default_factory=Counter)

    def add(self, owner: str, team: str | None) -> None:
        self.total += 1
        self.by_owner[owner] += 1
        if team is not None:
            self.by_team[team] += 1

    def allows(self, limits: Limits, owner: str, team: str | None) -> bool:
        if limits.per_user and self.by_owner[owner] >= limits.per_user:
            return False
        quota = limits.team_limit(team)
        return quota is None or self.by_team[team] < quota


def in_flight(session: Session) -> InFlight:
    flight = InFlight()
    for owner, team in session.execute(select(_owner(), Job.team).where(in_flight_clause())):
        flight.add(owner, team)
    return flight


def next_jobs(session: Session, *, free: int, limits: Limits, flight: InFlight | None = None) -> list[str]:
    """Up to `free` waiting job ids, in dispatch order, that the limits allow now (`flight` is updated as
    if they were dispatched)."""
    flight = flight if flight is not None else in_flight(session)
    chosen: list[str] = []
    if free <= 0:
        return chosen
    for row in session.execute(ranked_waiting()):
        if flight.allows(limits, row.owner, row.team):
            chosen.append(row.id)
            flight.add(row.owner, row.team)
            if len(chosen) >= free:
                break
    return chosen
