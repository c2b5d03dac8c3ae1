"""Checks `pending` registry versions on a thread of its own, so the relay never waits on a hash.

Checking a version hashes every file of its artifact: milliseconds for a LoRA, minutes for a large full
fine-tune. The relay only pokes this thread after it commits a `succeeded` status, then goes back to
relaying every other job's events. Each check runs with no database session open (a short one lists the
pending versions, another stores each outcome), and a periodic sweep settles versions left pending by an
API restart. A plain thread rather than an asyncio task: hashing is blocking file I/O and CPU work.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import select

from backend.db.models import AdapterVersion
from backend.db.session import Database
from backend.services.registry import apply_check, check_artifact
from backend.settings import Settings

log = logging.getLogger("studio.verifier")
SWEEP_SECONDS = 30.0


def verify_pending(*, db: Database, settings: Settings) -> int:
    """Check every pending version once; returns how many were settled."""
    with db.session() as session:
        pending = list(session.execute(select(AdapterVersion.id, AdapterVersion.path)
                                       .where(AdapterVersion.status == "pending")))
    settled = 0
    for version_id, path in pending:
        check = check_artifact(settings, path)  # the slow part: no session held
        with db.session() as session:
            row = session.get(AdapterVersion, version_id)
            if row is None or row.status != "pending":  # deleted, or a request checked it meanwhile
                continue
            apply_check(session=session, version=row, check=check)
            session.commit()
            settled += 1
    return settled


class VersionVerifier:
    """`start()` in the lifespan, `poke()` when a version may have been registered, `stop()` on shutdown."""

    def __init__(self, *, db: Database, settings: Settings, sweep_seconds: float = SWEEP_SECONDS):
        self.db, self.settings, self.sweep_seconds = db, settings, sweep_seconds
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def poke(self, *_args) -> None:
        """Ask for a check soon; returns at once (the relay calls this with its session, unused)."""
        self._wake.set()

    def start(self) -> None:
        self._wake.set()  # settle what an earlier run left pending
        self._thread = threading.Thread(target=self._loop, name="studio-verifier", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)  # a hash in progress finishes on its daemon thread

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.sweep_seconds)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                verify_pending(db=self.db, settings=self.settings)
            except Exception:  # the DB away: the next poke or sweep retries
                log.exception("verifier: cannot check pending versions (retrying)")
