import { useRef, useState, type DragEvent } from "react";
import { ApiError, type FileObject } from "@/api/client";
import { useUploadFile } from "../api/hooks";
import { needsMapping } from "../mapping";
import { ColumnMappingForm } from "./ColumnMappingForm";
import { ValidationReport } from "./ValidationReport";

const ACCEPT = ".jsonl,.ndjson,.json,.csv,.parquet,.txt,.md";

/** Drop a dataset (or choose one); it is validated by the server and reported line by line. */
export function UploadDropZone({ onUploaded, compact }: { onUploaded?: (file: FileObject) => void; compact?: boolean }) {
  const input = useRef<HTMLInputElement>(null);
  const [over, setOver] = useState(false);
  const [name, setName] = useState<string>();
  const [last, setLast] = useState<File>();
  const upload = useUploadFile();

  const send = (file: File | undefined, columnMapping?: Record<string, string>) => {
    if (!file) return;
    setName(file.name);
    setLast(file);
    upload.mutate({ file, columnMapping }, { onSuccess: (stored) => onUploaded?.(stored) });
  };
  const mappable = upload.error instanceof ApiError && upload.error.code === "invalid_training_file"
    && needsMapping(upload.error.message);
  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    setOver(false);
    send(event.dataTransfer.files[0]);
  };

  return (
    <div className="upload">
      <div
        className={`dropzone${over ? " over" : ""}${compact ? " compact" : ""}`}
        data-testid="dropzone"
        onDragOver={(e) => { e.preventDefault(); setOver(true); }}
        onDragLeave={() => setOver(false)}
        onDrop={onDrop}
      >
        <p>
          <strong>Drop a dataset here</strong> or{" "}
          <button type="button" className="link" onClick={() => input.current?.click()}>choose a file</button>
        </p>
        {!compact && (
          <p className="muted">
            JSONL, JSON, CSV or Parquet: chat <code>messages</code> (or ShareGPT <code>conversations</code>),
            {" "}<code>prompt</code>/<code>completion</code>, alpaca, raw <code>text</code>, or
            {" "}<code>prompt</code>/<code>chosen</code>/<code>rejected</code> for DPO; other column names can be mapped.
            Plain <code>.txt</code>/<code>.md</code>: one pretraining example per paragraph (split on blank lines).
          </p>
        )}
        <input ref={input} type="file" accept={ACCEPT} hidden aria-label="Dataset file"
               onChange={(e) => { send(e.target.files?.[0]); e.target.value = ""; }} />
        {upload.isPending && <p className="muted">Uploading and validating {name}…</p>}
        {upload.isSuccess && (
          <p className="ok-text">
            {upload.data.filename}: {upload.data.num_examples} examples, format {upload.data.format}
            {upload.data.column_mapping ? `, columns read as ${describeMapping(upload.data.column_mapping)}` : ""}.
          </p>
        )}
      </div>
      {upload.isError && <ValidationReport error={upload.error} filename={name} />}
      {mappable && upload.error && (
        <ColumnMappingForm message={upload.error.message} pending={upload.isPending}
                           onSubmit={(mapping) => send(last, mapping)} />
      )}
    </div>
  );
}

/** `{prompt: "question"}` as "question → prompt". */
export function describeMapping(mapping: Record<string, string>): string {
  return Object.entries(mapping).map(([field, column]) => `${column} → ${field}`).join(", ");
}
