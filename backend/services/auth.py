"""Team mode: API keys, who is calling (`Principal`), and what each caller may see.

A key is `sk-studio-<43 url-safe characters>` (256 random bits). It is shown once, when it is created;
the database keeps only its sha256 (`api_keys.key_hash`) and its first characters (`prefix`) so that a
person can tell keys apart in `studio keys list`. A request's key is hashed and looked up; a revoked or
unknown key is refused (401).

Roles: an admin sees and may change everything; a member sees their own team's files, jobs and adapters,
and nothing else exists for them (another team's objects answer 404, and lists leave them out). With
`STUDIO_AUTH=off` every request is `LOCAL`, an admin without a team.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, select
from sqlalchemy.orm import Session

from backend.db.ids import new_id
from backend.db.models import ApiKey, now

KEY_PREFIX = "sk-studio-"
SHOWN_CHARS = 16  # `prefix` column: "sk-studio-" + 6 characters of the secret
USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")
# No dots in team names: a team's adapters are named `<team>.<name>`, so the first dot ends the team.
TEAM_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


class KeyRefused(ValueError):
    """A key could not be created or revoked (bad user or team name, unknown key id)."""


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a user, their team (None for a team-less admin), whether they are admin, and
    the id of the key that said so (None with auth off), so that long requests can look again."""

    user: str
    team: str | None = None
    is_admin: bool = False
    key_id: str | None = None

    def sees(self, team: str | None) -> bool:
        """May this caller see an object that belongs to `team`?"""
        return self.is_admin or (self.team is not None and team == self.team)


LOCAL = Principal(user="local", team=None, is_admin=True)  # every request when auth is off


def visible(principal: Principal | None, team_column) -> ColumnElement[bool] | None:
    """A WHERE clause keeping the rows `principal` may see (None: no filter, for admins and internal calls)."""
    if principal is None or principal.is_admin:
        return None
    if principal.team is None:
        return false()
    return team_column == principal.team


def can_see(principal: Principal | None, team: str | None) -> bool:
    """The row-level twin of `visible` (None = an internal call, which sees everything)."""
    return principal is None or principal.sees(team)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(*, session: Session, user: str, team: str | None = None, is_admin: bool = False) -> tuple[ApiKey, str]:
    """Store a new key for `user` (in `team`) and return (row, the key in clear, to show once).

    A member key needs a team (a member sees only their team's objects); an admin key may have one, which
    then stamps what the admin creates."""
    if not USER_NAME.fullmatch(user or ""):
        raise KeyRefused(f"Invalid user name {user!r}: use up to 128 letters, digits, '.', '_', '@', '+' or '-'.")
    if team is not None and not TEAM_NAME.fullmatch(team):
        raise KeyRefused(f"Invalid team name {team!r}: use up to 63 lower-case letters, digits, '_' or '-' "
                        "(no dots).")
    if team is None and not is_admin:
        raise KeyRefused("A member key needs a team (--team T); only admin keys may have none.")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(id=new_id("key"), prefix=key[:SHOWN_CHARS], key_hash=hash_key(key), user=user, team=team,
                 is_admin=is_admin, created_at=now())
    session.add(row)
    session.commit()
    return row, key


def list_keys(*, session: Session, include_revoked: bool = False) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return list(session.scalars(query))


def revoke_key(*, session: Session, key_id: str) -> ApiKey:
    """Revoke a key by its id (`key-…`) or its shown prefix (when that names one live key)."""
    row = session.get(ApiKey, key_id)
    if row is None:
        matches = list(session.scalars(select(ApiKey).where(ApiKey.prefix == key_id, ApiKey.revoked_at.is_(None))))
        if len(matches) > 1:
            raise KeyRefused(f"The prefix {key_id!r} names {len(matches)} keys; revoke by id (studio keys list).")
        row = matches[0] if matches else None
    if row is None:
        raise KeyRefused(f"No such key: {key_id!r} (see studio keys list).")
    if row.revoked_at is None:
        row.revoked_at = now()
        session.commit()
    return row


def authenticate(*, session: Session, key: str) -> Principal | None:
    """The principal of a live key, or None (unknown or revoked)."""
    if not key.startswith(KEY_PREFIX):
        return None
    row = session.scalars(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).first()
    if row is None or row.revoked_at is not None:
        return None
    return Principal(user=row.user, team=row.team, is_admin=row.is_admin, key_id=row.id)


def key_revoked(*, session: Session, principal: Principal) -> bool:
    """Has the key `principal` authenticated with been revoked since (an open event stream asks this)?"""
    if principal.key_id is None:
        return False
    row = session.get(ApiKey, principal.key_id)
    return row is None or row.revoked_at is not None
