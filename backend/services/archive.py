"""Stream a folder as a .tar.gz or .zip without holding it in memory or writing it to disk.

The archive is written by a thread into a bounded queue and the response iterates the queue, so a
multi-gigabyte merged model streams with a few MiB of memory and the client sees bytes at once.
"""

from __future__ import annotations

import io
import queue
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

CHUNK_LIMIT = 16  # queued chunks (each up to one write from tarfile/zipfile, typically ≤ 1 MiB)
MEDIA_TYPES = {"tar.gz": "application/gzip", "zip": "application/zip"}
_DONE = object()


class _QueueWriter:
    """A write-only, non-seekable file object that hands every write to the consumer."""

    def __init__(self, out: queue.Queue, stop: threading.Event):
        self.out, self.stop, self.closed = out, stop, False

    def write(self, data: bytes) -> int:
        while data:
            if self.stop.is_set():  # the client went away: abandon the archive
                raise BrokenPipeError("download cancelled")
            try:
                self.out.put(bytes(data), timeout=1)
                break
            except queue.Full:
                continue
        return len(data)

    def flush(self) -> None:
        pass

    def tell(self) -> int:  # zipfile asks; an unseekable stream answers with an error it handles
        raise OSError("unseekable")

    def seekable(self) -> bool:
        return False


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _write(folder: Path, root: str, fmt: str, sink: _QueueWriter, replace: dict[str, bytes]) -> None:
    if fmt == "zip":
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in _files(folder):
                name = path.relative_to(folder).as_posix()
                if name in replace:
                    archive.writestr(f"{root}/{name}", replace[name])
                else:
                    archive.write(path, f"{root}/{name}")
    else:
        with tarfile.open(fileobj=sink, mode="w|gz") as archive:
            for path in _files(folder):
                name = path.relative_to(folder).as_posix()
                if name in replace:
                    info = archive.gettarinfo(str(path), f"{root}/{name}")
                    info.size = len(replace[name])
                    archive.addfile(info, io.BytesIO(replace[name]))
                else:
                    archive.add(path, f"{root}/{name}", recursive=False)


def stream_folder(folder: Path, *, root: str, fmt: str = "tar.gz",
                  replace: dict[str, bytes] | None = None) -> Iterator[bytes]:
    """Yield the archive of `folder` (entries under `root/`) chunk by chunk; `replace` gives other contents
    for some of its files (relative names), e.g. the registry's view of `studio.json`."""
    out: queue.Queue = queue.Queue(maxsize=CHUNK_LIMIT)
    stop = threading.Event()
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            _write(folder, root, fmt, _QueueWriter(out, stop), replace or {})
        except BaseException as exc:  # noqa: BLE001 — surfaced to the consumer below
            errors.append(exc)
        finally:
            while not stop.is_set():
                try:
                    out.put(_DONE, timeout=1)
                    break
                except queue.Full:
                    continue

    threading.Thread(target=produce, name="archive-writer", daemon=True).start()
    try:
        while (chunk := out.get()) is not _DONE:
            yield chunk
    finally:
        stop.set()
    if errors:
        raise errors[0]
