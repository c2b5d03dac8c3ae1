"""Reading a training file: stream its rows, map columns, detect the format, validate, normalise.

`scan_dataset` keeps no rows (the API validates uploads with it); `read_dataset` keeps them (training).
Both hold memory bounded by `DataLimits`, and stop with `DataLimitError` once a cap is passed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..hashing import file_sha256
from . import containers
from .errors import DataIssue, DataLimitError, DataValidationError, Issues, json_error_text
from .formats import (
    STAGE_FORMATS,
    STAGE_NEEDS,
    DataFormat,
    apply_mapping,
    detect_format,
    detect_mapping,
    unknown_shape,
)
from .limits import DataLimits
from .validate import Row, example_chars, normalise, type_name

# Columns that hold JSON text in CSV (chat messages, OpenAI's preference shape).
_CSV_STRUCTURED = ("messages", "preferred_output", "non_preferred_output")
SIDECAR_SUFFIX = ".columns.json"


@dataclass
class DatasetRecord:
    line: int
    data: dict


@dataclass
class DatasetSummary:
    """What a scan learns about a file without keeping its rows."""

    path: str
    file_format: str
    format: DataFormat
    num_examples: int
    sha256: str
    num_bytes: int
    column_mapping: dict[str, str] | None = None
    lengths: list[int] = field(default_factory=list)  # characters per example


@dataclass
class LoadedDataset:
    path: str
    file_format: str
    format: DataFormat
    records: list[DatasetRecord]
    sha256: str
    num_bytes: int
    column_mapping: dict[str, str] | None = None

    @property
    def num_examples(self) -> int:
        return len(self.records)


def mapping_sidecar(path: str | os.PathLike) -> Path:
    """Where a stored file's column mapping lives: beside it, so whoever reads the file applies it."""
    return Path(os.fspath(path) + SIDECAR_SUFFIX)


def write_mapping_sidecar(path: str | os.PathLike, mapping: dict[str, str] | None) -> None:
    if mapping:
        mapping_sidecar(path).write_text(json.dumps(mapping), encoding="utf-8")


def _read_sidecar(path: str | os.PathLike) -> dict[str, str] | None:
    try:
        return json.loads(mapping_sidecar(path).read_text(encoding="utf-8")) or None
    except FileNotFoundError:
        return None


class _Mapper:
    """Decides the file's column mapping once (explicit, or detected from the first row / CSV header)."""

    def __init__(self, explicit: dict[str, str] | None, issues: Issues, unit: str):
        self.explicit, self.issues, self.unit = explicit, issues, unit
        self.mapping: dict[str, str] | None = dict(explicit) if explicit else None
        self.reported: set[str] = set()  # mapped columns already reported missing

    def decide(self, keys: list[str], line: int, what: str = "field") -> bool:
        if self.mapping is not None:
            missing = [(c, s) for c, s in self.mapping.items() if s not in keys]
            if self.explicit and missing:
                canonical, source = missing[0]
                if source in self.reported:  # said once; the other rows only count
                    self.issues.total += 1
                    return False
                self.reported.add(source)
                self.issues.add(line, source, f"column '{source}' (mapped to '{canonical}') is not in the file; "
                                              f"{what}s present: {', '.join(keys) or 'none'}", self.unit)
                return False
            return True
        mapping = detect_mapping(keys)
        if mapping is None:
            missing_key, msg = unknown_shape(keys, what)
            self.issues.add(line, missing_key, msg, self.unit)
            return False
        self.mapping = mapping
        return True


def _rows(path: str, fh, file_format: str, issues: Issues, limits: DataLimits, mapper: _Mapper,
          chars_cap: int) -> Iterator[tuple[int, Any]]:
    if file_format == "parquet":
        return containers.iter_parquet(fh, issues, limits, chars_cap)
    if file_format == "json":
        return containers.iter_json(fh, issues, limits)
    if file_format == "jsonl":
        return containers.iter_jsonl(fh, issues, limits)
    if file_format == "txt":
        return containers.iter_text(fh, issues, limits)
    return containers.iter_csv(fh, issues, limits, lambda header: mapper.decide(header, 1, "column"))


def _decode_csv_json(row: dict, r: Row) -> dict | None:
    structured = [*_CSV_STRUCTURED, *(["input"] if "preferred_output" in row else [])]
    for key in structured:
        if isinstance(row.get(key), str) and row[key].strip():
            try:
                row[key] = json.loads(row[key])
            except json.JSONDecodeError as e:
                r.fail(r.names.get(key, key), f"column holds invalid JSON ({json_error_text(e)})")
                return None
            except RecursionError:
                r.fail(r.names.get(key, key), "column holds JSON nested too deeply")
                return None
    return row


def _scan(path: str | os.PathLike, *, stage: str | None, column_mapping: dict[str, str] | None, max_errors: int,
          limits: DataLimits, on_record: Callable[[int, dict], None]) -> DatasetSummary:
    if stage is not None and stage not in STAGE_FORMATS:
        raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGE_FORMATS)}")
    num_bytes = os.path.getsize(path)
    issues = Issues(max_errors)
    if column_mapping is None:
        column_mapping = _read_sidecar(path)
    with open(path, "rb") as fh:
        head = fh.read(64)
        fh.seek(0)
        file_format = containers.detect_file_format(path, head)
        if not head.removeprefix(containers.BOM).strip() and num_bytes < 1 << 20 and not fh.read().strip():
            raise DataValidationError([DataIssue(None, None, "file is empty")])
        fh.seek(0)
        if file_format == "json" and not containers.json_is_array(fh):
            file_format = "jsonl"  # a .json file holding one object per line
        unit = containers.UNITS.get(file_format, "line")
        if file_format == "txt" and column_mapping:
            raise DataValidationError([DataIssue(None, None, "a column mapping applies to JSONL, JSON, CSV and "
                                                             "Parquet files; a text file has no columns")])
        mapper = _Mapper(column_mapping, issues, unit)
        chars_cap = limits.chars_cap(num_bytes, compressed=file_format == "parquet")
        fmt: DataFormat | None = None
        count = rows_seen = chars = 0
        lengths: list[int] = []
        for line, row in _rows(os.fspath(path), fh, file_format, issues, limits, mapper, chars_cap):
            rows_seen += 1
            if rows_seen > limits.max_rows:
                raise DataLimitError("max_dataset_rows", f"the file has more than {limits.max_rows} rows, the "
                                                         "limit per dataset", line, unit)
            r = Row(line, unit, issues)
            if not isinstance(row, dict):
                r.fail(None, f"expected a JSON object, got {type_name(row)}")
                continue
            if file_format != "csv" and fmt is None and not mapper.decide(list(row), line):
                continue
            r.names = {c: s for c, s in (mapper.mapping or {}).items()}
            row = apply_mapping(row, mapper.mapping or {})
            if file_format == "csv" and (row := _decode_csv_json(row, r)) is None:
                continue
            row_fmt = detect_format(row)
            if row_fmt is None:
                missing, msg = unknown_shape(list(row))
                r.fail(r.names.get(missing or "", missing), msg)
                continue
            if fmt is None:
                fmt = row_fmt
                if stage is not None and fmt not in STAGE_FORMATS[stage]:
                    raise DataValidationError([DataIssue(None, None, (
                        f"training file has format '{fmt.value}' but stage '{stage}' needs {STAGE_NEEDS[stage]}"))])
            elif row_fmt is not fmt:
                r.fail(None, f"row looks like '{row_fmt.value}' but the file's first row is '{fmt.value}'; "
                             "use one format per file")
                continue
            data = normalise(fmt, row, r)
            if not r.ok:
                continue
            size = example_chars(data)
            chars += size
            if chars > chars_cap:
                raise DataLimitError("max_dataset_chars", (
                    f"the examples' text passes {chars_cap} characters, the limit for this file"
                    + (f" (at most {limits.max_expansion}x a Parquet file's size)" if file_format == "parquet" else "")),
                    line, unit)
            count += 1
            lengths.append(size)
            on_record(line, data)
    issues.raise_if_any()
    if fmt is None or not count:
        raise DataValidationError([DataIssue(None, None, "file is empty (no data rows found)")])
    return DatasetSummary(path=os.fspath(path), file_format=file_format, format=fmt, num_examples=count,
                          sha256=file_sha256(path), num_bytes=num_bytes, column_mapping=mapper.mapping or None,
                          lengths=lengths)


def scan_dataset(path: str | os.PathLike, *, stage: str | None = None, column_mapping: dict[str, str] | None = None,
                 max_errors: int = 20, limits: DataLimits | None = None,
                 on_example: Callable[[dict], None] | None = None) -> DatasetSummary:
    """Validate a file without keeping its rows; `on_example` sees each normalised example."""
    return _scan(path, stage=stage, column_mapping=column_mapping, max_errors=max_errors,
                 limits=limits or DataLimits.from_env(), on_record=(lambda _line, data: on_example(data)) if on_example else (lambda _line, _data: None))


def read_dataset(path: str | os.PathLike, *, stage: str | None = None, column_mapping: dict[str, str] | None = None,
                 max_errors: int = 20, limits: DataLimits | None = None) -> LoadedDataset:
    """Read, detect, validate and normalise a training file.

    The column mapping is `column_mapping`, else the one stored beside the file (`mapping_sidecar`), else
    detected from common column names. Raises DataValidationError with the first ``max_errors`` problems
    (in file order) if any row is invalid, or when ``stage`` is given and the file's format does not fit it.
    """
    records: list[DatasetRecord] = []
    summary = _scan(path, stage=stage, column_mapping=column_mapping, max_errors=max_errors,
                    limits=limits or DataLimits.from_env(),
                    on_record=lambda line, data: records.append(DatasetRecord(line, data)))
    return LoadedDataset(path=summary.path, file_format=summary.file_format, format=summary.format, records=records,
                         sha256=summary.sha256, num_bytes=summary.num_bytes, column_mapping=summary.column_mapping)
