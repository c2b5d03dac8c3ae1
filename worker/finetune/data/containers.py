"""Streaming readers, one per container: each yields ``(line or row number, row)`` from an open binary
file and records problems on ``issues``. Memory stays bounded by `DataLimits.max_row_bytes` (plus
one Parquet batch), never by the file's size.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import BinaryIO

from .errors import DataLimitError, Issues, json_error_text
from .limits import DataLimits

EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv",
              ".parquet": "parquet", ".pq": "parquet", ".txt": "txt", ".md": "txt", ".markdown": "txt"}
UNITS = {"json": "row", "parquet": "row"}  # everything else counts lines
BOM = b"\xef\xbb\xbf"
PARQUET_BATCH_ROWS = 64
PARQUET_BATCH_BYTES = 16 * 1024 * 1024  # a batch this small is materialised at once, a larger one row by row


def detect_file_format(path: str | os.PathLike, head: bytes) -> str:
    """Container format from the extension, or by sniffing ``head`` when the extension is unknown."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext in EXTENSIONS:
        return EXTENSIONS[ext]
    if head.startswith(b"PAR1"):
        return "parquet"
    stripped = head.removeprefix(BOM).lstrip()
    if stripped.startswith(b"["):
        return "json"
    if stripped.startswith(b"{"):
        return "jsonl"
    return "csv"


def _too_long(limits: DataLimits) -> str:
    return f"is longer than the limit of {limits.max_row_bytes} bytes per example"


def _lines(fh: BinaryIO, issues: Issues, limits: DataLimits) -> Iterator[tuple[int, str]]:
    """Decoded lines (without the newline), each at most `max_row_bytes`; longer ones are reported."""
    number = 0
    while True:
        raw = fh.readline(limits.max_row_bytes + 1)
        if not raw:
            return
        number += 1
        if len(raw) > limits.max_row_bytes and not raw.endswith(b"\n"):
            issues.add(number, None, f"line {_too_long(limits)}")
            while raw and not raw.endswith(b"\n"):  # skip the rest of it in bounded chunks
                raw = fh.readline(1 << 20)
            continue
        if number == 1:
            raw = raw.removeprefix(BOM)
        try:
            yield number, raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as e:
            issues.add(number, None, f"line is not valid UTF-8 (byte {e.start + 1} of the line: {e.reason}); "
                                     "save the file as UTF-8")


def iter_jsonl(fh: BinaryIO, issues: Issues, limits: DataLimits) -> Iterator[tuple[int, object]]:
    last_error: int | None = None
    for number, line in _lines(fh, issues, limits):
        if not line.strip():
            continue
        last_error = None
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as e:
            issues.add(number, None, f"invalid JSON ({json_error_text(e)})")
            last_error = number
        except RecursionError:
            issues.add(number, None, "JSON is nested too deeply")
        except ValueError:  # not a JSONDecodeError: Python refuses ints of more than 4300 digits
            issues.add(number, None, "invalid JSON (a number is too long: integers may have at most "
                                     f"{sys.get_int_max_str_digits()} digits)")
    if last_error is not None and issues.items and issues.items[-1].line == last_error:
        issue = issues.items[-1]  # the failing line was the last one: say what probably happened
        issues.items[-1] = type(issue)(issue.line, issue.field, issue.message + "; the file may be truncated",
                                       issue.unit)


class _CountingReader:
    """A file wrapper that counts the bytes handed to ijson (the parser reads in chunks)."""

    def __init__(self, fh: BinaryIO):
        self.fh, self.count = fh, 0

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        if self.count == 0:
            data = data.removeprefix(BOM)
        self.count += len(data)
        return data


def iter_json(fh: BinaryIO, issues: Issues, limits: DataLimits) -> Iterator[tuple[int, object]]:
    """A JSON array, one item at a time (ijson's event stream, so depth and item size stay bounded)."""
    import ijson

    reader = _CountingReader(fh)
    depth, number, builder, start = 0, 0, None, 0
    try:
        for event, value in ijson.basic_parse(reader, use_float=True):
            if depth == 0 and event != "start_array":
                issues.add(None, None, "expected a JSON array of objects; for one object per line use a .jsonl file")
                return
            if event in ("start_map", "start_array"):
                depth += 1
                if depth > limits.max_depth:
                    issues.add(max(number, 1), None, f"JSON is nested too deeply (more than {limits.max_depth} levels)",
                               "row")
                    return
            elif event in ("end_map", "end_array"):
                depth -= 1
            if depth == 1 and event == "start_array":
                continue
            if depth == 0:  # the closing bracket
                continue
            if builder is None:
                number, start = number + 1, reader.count
                builder = ijson.ObjectBuilder()
            builder.event(event, value)
            if reader.count - start > limits.max_row_bytes + (1 << 16):
                issues.add(number, None, f"item {_too_long(limits)}", "row")
                return
            if depth == 1:  # the item is complete
                yield number, builder.value
                builder = None
    except ijson.common.IncompleteJSONError as e:
        issues.add(max(number, 1), None, f"invalid JSON ({str(e).strip() or 'unexpected end of file'})", "row")
    except UnicodeDecodeError as e:
        issues.add(max(number, 1), None, f"file is not valid UTF-8 ({e.reason}); save it as UTF-8", "row")


def json_is_array(fh: BinaryIO) -> bool:
    """Whether a .json file holds an array (else it is read as one object per line)."""
    head = fh.read(4096)
    fh.seek(0)
    return head.removeprefix(BOM).lstrip().startswith(b"[")


def iter_csv(fh: BinaryIO, issues: Issues, limits: DataLimits,
             check_header: Callable[[list[str]], bool]) -> Iterator[tuple[int, object]]:
    """Rows as dicts keyed by the header; `check_header` reports an unusable header (and stops)."""
    csv.field_size_limit(max(limits.max_row_bytes, 131072))  # process-wide, but only ever raised
    text = io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    start = 1
    try:
        try:
            header = next(reader)
        except StopIteration:
            return
        header = [h.strip() for h in header]
        if not check_header(header):
            return
        start = reader.line_num + 1
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not cells or cells == [""]:
                continue
            if len(cells) != len(header):
                issues.add(line, None, f"row has {len(cells)} cells but the header has {len(header)} columns")
                continue
            if sum(len(c) for c in cells) > limits.max_row_bytes:
                issues.add(line, None, f"row {_too_long(limits)}")
                continue
            yield line, dict(zip(header, cells, strict=True))
    except csv.Error as e:
        issues.add(start, None, f"invalid CSV ({e})")
    except UnicodeDecodeError as e:
        issues.add(start, None, f"file is not valid UTF-8 ({e.reason}); save it as UTF-8")
    finally:
        text.detach()


def iter_text(fh: BinaryIO, issues: Issues, limits: DataLimits) -> Iterator[tuple[int, object]]:
    """Plain text: one example per paragraph (lines up to a blank line), numbered by its first line."""
    para: list[str] = []
    first, size = 0, 0
    for number, line in _lines(fh, issues, limits):
        if line.strip():
            if not para:
                first, size = number, 0
            para.append(line)
            size += len(line) + 1
            if size > limits.max_row_bytes:
                issues.add(first, None, f"paragraph {_too_long(limits)}; split it with blank lines")
                para, size = [], 0
            continue
        if para:
            yield first, {"text": "\n".join(para)}
            para = []
    if para:
        yield first, {"text": "\n".join(para)}


def _row_sizes(batch) -> list[int]:
    """Bytes of text each row of a record batch expands to, computed in Arrow before any Python objects."""
    import pyarrow as pa
    import pyarrow.compute as pc

    total = None
    for column in batch.columns:
        if pa.types.is_dictionary(column.type) and (pa.types.is_string(column.type.value_type)
                                                    or pa.types.is_large_string(column.type.value_type)):
            lengths = pc.take(pc.binary_length(column.dictionary), column.indices)
        elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            lengths = pc.binary_length(column)
        else:  # nested columns are already expanded in the batch: share their buffers out evenly
            share = column.get_total_buffer_size() // max(1, len(column))
            lengths = pa.array([share] * len(column), pa.int64())
        lengths = pc.fill_null(lengths.cast(pa.int64()), 0)
        total = lengths if total is None else pc.add(total, lengths)
    return total.to_pylist() if total is not None else [0] * batch.num_rows


def iter_parquet(fh: BinaryIO, issues: Issues, limits: DataLimits, chars_cap: int) -> Iterator[tuple[int, object]]:
    """Row by row through record batches. String columns stay dictionary-encoded until a row is
    materialised, so a file of a few repeated values (a decompression bomb) costs one batch of memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(fh).metadata
        schema = pq.read_schema(fh)
        fh.seek(0)
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            for c in range(group.num_columns):
                if group.column(c).total_uncompressed_size > chars_cap:
                    raise DataLimitError("max_dataset_chars", (
                        f"a Parquet column chunk decompresses to {group.column(c).total_uncompressed_size} bytes, "
                        f"over the limit of {chars_cap} characters of text for this file"), unit="row")
        strings = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
        batches = pq.ParquetFile(fh, read_dictionary=strings).iter_batches(batch_size=PARQUET_BATCH_ROWS)
    except DataLimitError:
        raise
    except (OSError, ValueError, pa.ArrowException) as e:  # pyarrow's several error types for corrupt files
        issues.add(None, None, f"cannot read Parquet file ({e})", "row")
        return
    number = 0
    try:
        for batch in batches:
            sizes = _row_sizes(batch)
            rows = batch.to_pylist() if sum(sizes) <= PARQUET_BATCH_BYTES else None
            for i, size in enumerate(sizes):
                number += 1
                if size > limits.max_row_bytes:
                    issues.add(number, None, f"row {_too_long(limits)}", "row")
                    continue
                yield number, rows[i] if rows is not None else batch.slice(i, 1).to_pylist()[0]
    except DataLimitError:
        raise
    except (OSError, ValueError, pa.ArrowException) as e:
        issues.add(number + 1, None, f"cannot read Parquet file ({e})", "row")
