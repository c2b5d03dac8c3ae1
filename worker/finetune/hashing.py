"""The one file-sha256 of the studio: dataset digests, artifact lineage and the registry's checks of it.

Plain `hashlib`, no torch, so the API and the workers import the same function and their digests of one
file always agree.
"""

from __future__ import annotations

import hashlib
import os


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in `chunk`-sized blocks so a large file never sits in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
