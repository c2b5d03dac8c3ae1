"""Problems found in a training file: one `DataIssue` each, raised together as `DataValidationError`."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class DataIssue:
    """One problem in a training file. ``unit`` is "line" (JSONL, CSV, text) or "row" (JSON array, Parquet)."""

    line: int | None
    field: str | None
    message: str
    unit: str = "line"

    def __str__(self) -> str:
        parts = []
        if self.line is not None:
            parts.append(f"{self.unit} {self.line}")
        if self.field:
            parts.append(f"field '{self.field}'")
        return f"{', '.join(parts)}: {self.message}" if parts else self.message


class DataValidationError(ValueError):
    """The training file is invalid. ``issues`` holds the first problems in file order;
    ``total`` counts all problems found (it can exceed ``len(issues)``)."""

    def __init__(self, issues: list[DataIssue], total: int | None = None):
        self.issues = list(issues)
        self.total = max(total or 0, len(self.issues))
        more = self.total - 1
        suffix = f" (and {more} more problem{'s' if more != 1 else ''})" if more > 0 else ""
        first = str(self.issues[0]) if self.issues else "unknown problem"
        super().__init__(f"training file is invalid: {first}{suffix}")


class DataLimitError(DataValidationError):
    """The file passes a size cap (`limit` names the `DataLimits` field); reading stopped there."""

    def __init__(self, limit: str, message: str, line: int | None = None, unit: str = "line"):
        self.limit = limit
        super().__init__([DataIssue(line, None, message, unit)])


class Issues:
    """Collects the first ``cap`` issues and counts all of them."""

    def __init__(self, cap: int):
        self.cap, self.items, self.total = max(1, cap), [], 0

    def add(self, line: int | None, field_: str | None, message: str, unit: str = "line") -> None:
        self.total += 1
        if len(self.items) < self.cap:
            self.items.append(DataIssue(line, field_, message, unit))

    def raise_if_any(self) -> None:
        if self.items:
            raise DataValidationError(self.items, self.total)


def json_error_text(e: json.JSONDecodeError) -> str:
    """`e.msg` at its column: Python's "Unterminated string starting at" already ends with "at"."""
    where = f"column {e.colno}" if e.msg.endswith(" at") else f"at column {e.colno}"
    return f"{e.msg} {where}"
