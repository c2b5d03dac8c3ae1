"""Resource ids: a prefix plus a ULID-style body, so ids sort in creation order.

`file-01J9Z3…` — 48 bits of milliseconds then 80 random bits in Crockford base32 (26 characters).
Within one process ids are strictly increasing even inside the same millisecond, which lets list
endpoints paginate on the id alone (`WHERE id < :after ORDER BY id DESC`), even across deletions.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
_last = 0


def _encode(value: int, length: int = 26) -> str:
    out = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        out.append(_ALPHABET[rem])
    return "".join(reversed(out))


def new_id(prefix: str) -> str:
    """A new id like `file-01J9Z3Q4T8…`; `prefix` is given without the dash."""
    global _last
    with _lock:
        value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
        if value <= _last:  # same millisecond (or a clock step back): keep strictly increasing
            value = _last + 1
        _last = value
    return f"{prefix}-{_encode(value)}"


def event_id(job_id: str, seq: int) -> str:
    """The public id of a job's `seq`-th event: deterministic, so re-persisting an event is a no-op.

    `ftevent-<job body>-<seq, zero-padded>` sorts in emission order within a job and is what
    `after=` and the SSE `Last-Event-ID` carry; `event_seq` reads the seq back.
    """
    return f"ftevent-{job_id.removeprefix('ftjob-')}-{seq:09d}"


def event_seq(event_id_: str) -> int | None:
    """The seq encoded in an event id, or None when the id is not one of ours."""
    head, _, tail = event_id_.rpartition("-")
    if not head.startswith("ftevent-") or not (tail.isascii() and tail.isdigit()):  # int() refuses "²"
        return None
    return int(tail)
