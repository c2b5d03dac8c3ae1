"""`after` cursors of the list endpoints must be ids of the listed kind.

`pagination.newest_first` pages with `WHERE id < :after`, which takes any text: another kind's id
(`file-…` on the jobs list) sorts before every job and listed nothing, a typo sorted after and listed
from the start. A deleted id of the right kind still pages (ids sort by creation time).
"""

from __future__ import annotations

import re

from backend.api.errors import APIError

_BODY = r"[0-9A-HJKMNP-TV-Z]{26}"  # Crockford base32 ULID body (backend/db/ids.py)


def check_cursor(after: str | None, prefix: str, kind: str) -> None:
    if after is not None and not re.fullmatch(rf"{prefix}-{_BODY}", after):
        shown = after if len(after) <= 80 else after[:80] + "…"
        raise APIError(400, f"'{shown}' is not a {kind} id: `after` takes the last id of the previous page "
                            f"({prefix}-…).", param="after", code="invalid_value")
