"""Reading, format detection, validation and normalisation of training datasets.

Files may be JSONL (``.jsonl``/``.ndjson``), JSON (an array of objects; a ``.json`` file holding
one object per line is read as JSONL), CSV (with a header), Parquet, or plain text (``.txt``/``.md``:
one example per paragraph, paragraphs separated by blank lines). Every container is read as a stream
with memory bounded by `DataLimits`. Rows are validated and normalised so that later stages
(tokenisation, chat templates, packing) see one shape per format:

* ``CHAT``: ``{"messages": [{"role": ..., "content": str, "weight"?: 0|1}, ...]}`` -- roles are
  system/user/assistant/tool, other message keys are dropped, ``weight`` is kept on assistant
  messages when present (OpenAI fine-tuning format). ShareGPT rows (``conversations`` of
  ``{"from", "value"}``) become chat messages.
* ``PROMPT_COMPLETION``: ``{"prompt": str, "completion": str}``.
* ``ALPACA``: ``{"prompt": instruction + "\\n\\n" + input (if any), "completion": output}`` plus
  ``"system"`` when the row has one. ``LoadedDataset.format`` stays ``ALPACA``.
* ``TEXT``: ``{"text": str}``.
* ``PREFERENCE``: ``{"prompt": str | list[message], "chosen": str, "rejected": str}``.

Other column names are read through a column mapping (detected for common names, or given).
The package stays importable without torch/transformers: pyarrow and ijson are imported lazily.
Modules: formats (formats, detection, mappings), containers (streaming readers), validate (rows),
reader (scan/read), limits (caps), stats, errors.
"""

from .containers import EXTENSIONS as FILE_EXTENSIONS
from .containers import detect_file_format
from .errors import DataIssue, DataLimitError, DataValidationError
from .formats import (
    CANONICAL_FIELDS,
    STAGE_FORMATS,
    DataFormat,
    apply_mapping,
    detect_format,
    detect_mapping,
    parse_column_mapping,
)
from .limits import DEFAULT_LIMITS, DataLimits
from .reader import (
    DatasetRecord,
    DatasetSummary,
    LoadedDataset,
    mapping_sidecar,
    read_dataset,
    scan_dataset,
    write_mapping_sidecar,
)
from .stats import char_stats, token_stats
from .validate import ROLES, example_chars, example_text

__all__ = [
    "CANONICAL_FIELDS", "DEFAULT_LIMITS", "FILE_EXTENSIONS", "ROLES", "STAGE_FORMATS", "DataFormat", "DataIssue", "DataLimitError",
    "DataLimits", "DataValidationError", "DatasetRecord", "DatasetSummary", "LoadedDataset", "apply_mapping",
    "char_stats", "detect_file_format", "detect_format", "detect_mapping", "example_chars", "example_text",
    "mapping_sidecar", "parse_column_mapping", "read_dataset", "scan_dataset", "token_stats",
    "write_mapping_sidecar",
]
