"""What a member may see of a server path: the studio's own names, never the server's folders.

Workers speak in absolute paths (a checkpoint folder, the output folder, a missing training file); events
and job errors carry them to every member of the job's team. On the way out a path under the data dir
keeps its studio-relative tail (`jobs/<id>/checkpoints/checkpoint-3`, or just `file-….jsonl` for a stored
dataset) and any other absolute path keeps only its last component. Hand-written (a regular expression):
no library rewrites paths inside free text, and it must not touch URLs or fractions such as `1/400`.
"""

from __future__ import annotations

import re
from typing import Any

# An absolute path of two or more components, not inside a URL (`https://a/b`) nor a word (`1/400`).
_PATH = re.compile(r"(?<![\w.~:/-])/(?:[^\s/'\"(),;]+/)+[^\s/'\"(),;]*")
_STUDIO_TAILS = (("/jobs/ftjob-", 1), ("/files/file-", len("/files/")))


def _public(match: re.Match[str]) -> str:
    path = match.group(0)
    for marker, skip in _STUDIO_TAILS:
        at = path.rfind(marker)
        if at >= 0:
            return path[at + skip:]
    return path.rstrip("/").rsplit("/", 1)[-1] or "/"


def public_text(text: str) -> str:
    return _PATH.sub(_public, text) if "/" in text else text


def without_server_paths(value: Any) -> Any:
    """`value` (an event's data: dicts, lists, strings) with every string through `public_text`."""
    if isinstance(value, str):
        return public_text(value)
    if isinstance(value, dict):
        return {key: without_server_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_server_paths(item) for item in value]
    return value
