"""Streaming multipart reader: the upload goes to a temp file under the data dir, capped in size.

Starlette's own form parser spools every file completely (to the system temp dir) before a route sees
it, so a size limit could only be checked afterwards. Here the file part is written chunk by chunk
to `tmp_dir/upload-<random>` (never a client-chosen name) and the request is refused with 413 as soon
as it passes the limit.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from backend.api.errors import APIError

MAX_FIELD_BYTES = 64 * 1024
FORM_OVERHEAD_BYTES = 1024 * 1024  # headers, boundaries and small fields around the file


@dataclass
class ReceivedForm:
    """The small text fields and at most one file (kept at `file_path`)."""

    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    file_path: Path | None = None
    file_bytes: int = 0

    def discard(self) -> None:
        """Delete the temp file if it is still there."""
        if self.file_path is not None:
            self.file_path.unlink(missing_ok=True)


def too_large(max_bytes: int) -> APIError:
    mib = max_bytes / (1024 * 1024)
    return APIError(413, f"The file is too large: the limit is {mib:g} MiB ({max_bytes} bytes); "
                         "set STUDIO_MAX_UPLOAD_BYTES to change it.", param="file", code="file_too_large")


class _Reader:
    """python-multipart callbacks that write the file part to disk and keep text fields in memory."""

    def __init__(self, form: ReceivedForm, *, file_field: str, tmp_dir: Path, max_bytes: int):
        self.form, self.file_field, self.tmp_dir, self.max_bytes = form, file_field, tmp_dir, max_bytes
        self.header_name, self.header_value = b"", b""
        self.disposition = b""
        self.name: str | None = None
        self.buffer = bytearray()
        self.sink: BinaryIO | None = None
        self.skip = False

    def callbacks(self) -> dict:
        return {"on_part_begin": self.on_part_begin, "on_header_field": self.on_header_field,
                "on_header_value": self.on_header_value, "on_header_end": self.on_header_end,
                "on_headers_finished": self.on_headers_finished, "on_part_data": self.on_part_data,
                "on_part_end": self.on_part_end}

    def on_part_begin(self) -> None:
        self.disposition, self.name, self.skip = b"", None, False
        self.buffer.clear()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        if self.header_name.strip().lower() == b"content-disposition":
            self.disposition = self.header_value
        self.header_name, self.header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        if b"name" not in options:
            raise APIError(400, "Invalid multipart body: a part has no field name.", code="invalid_multipart")
        self.name = options[b"name"].decode("utf-8", "replace")
        if b"filename" not in options:
            return
        if self.name != self.file_field or self.form.file_path is not None:
            self.skip = True  # other or repeated file fields are ignored
            return
        self.form.filename = options[b"filename"].decode("utf-8", "replace")
        self.form.file_path = self.tmp_dir / f"upload-{secrets.token_hex(16)}"
        self.sink = open(self.form.file_path, "wb")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.skip:
            return
        if self.sink is not None:
            self.form.file_bytes += end - start
            if self.form.file_bytes > self.max_bytes:
                raise too_large(self.max_bytes)
            self.sink.write(data[start:end])  # local disk, one chunk: cheap enough for the event loop
            return
        self.buffer += data[start:end]
        if len(self.buffer) > MAX_FIELD_BYTES:
            raise APIError(400, f"Form field '{self.name}' is too long.", param=self.name, code="invalid_value")

    def on_part_end(self) -> None:
        if self.sink is not None:
            self.sink.close()
            self.sink = None
        elif not self.skip and self.name is not None:
            self.form.fields[self.name] = self.buffer.decode("utf-8", "replace")

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()
            self.sink = None


async def receive_form(request: Request, *, tmp_dir: Path, max_bytes: int, file_field: str = "file") -> ReceivedForm:
    """Read a multipart/form-data body; the file part named `file_field` is streamed to `tmp_dir`."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or not params.get(b"boundary"):
        raise APIError(400, f"Send a multipart/form-data body with a '{file_field}' field.",
                       param=file_field, code="invalid_content_type")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes + FORM_OVERHEAD_BYTES:
        raise too_large(max_bytes)
    await run_in_threadpool(tmp_dir.mkdir, parents=True, exist_ok=True)
    form = ReceivedForm()
    reader = _Reader(form, file_field=file_field, tmp_dir=tmp_dir, max_bytes=max_bytes)
    parser = MultipartParser(params[b"boundary"], reader.callbacks())
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes + FORM_OVERHEAD_BYTES:
                raise too_large(max_bytes)
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        form.discard()
        raise APIError(400, f"Invalid multipart body ({exc}).", code="invalid_multipart") from exc
    except BaseException:
        form.discard()
        raise
    finally:
        reader.close()
    return form
